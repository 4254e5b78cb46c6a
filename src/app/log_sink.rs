//! Where log lines go: a buffer that a thread of its own writes out in
//! batches, a few milliseconds after the first line of each batch.
//!
//! A channel with a line per message (what tracing-appender does) woke the
//! writing thread for nearly every line under load: a futex call on the
//! request's thread and a thread switch and `write` on the other, about a
//! tenth of the ingest rate at one line per request. Here a line is a copy
//! into a shared buffer; only the first line of a batch wakes the writer.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer waits after a batch's first line for more lines: a
/// journald timestamp is at most this late.
pub const LINGER: Duration = Duration::from_millis(10);
/// Lines held before a logger waits for the writer (a stalled journald):
/// waiting, not dropping, keeps every line.
pub const CAPACITY: usize = 4 << 20;

struct Shared {
    pending: Mutex<Pending>,
    has_lines: Condvar,
    has_room: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A logger that panicked mid-copy left whole lines behind it: keep going.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the log subscriber writes to; cheap to share.
#[derive(Clone)]
pub struct Sink(Arc<Shared>);

/// Dropping it writes what is pending and stops the writer thread.
pub struct Flush {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread for `out`.
pub fn start<W: Write + Send + 'static>(
    out: W,
    linger: Duration,
    capacity: usize,
) -> io::Result<(Sink, Flush)> {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        has_lines: Condvar::new(),
        has_room: Condvar::new(),
        capacity,
    });
    let worker = shared.clone();
    let thread = std::thread::Builder::new()
        .name("wabridge-log".into())
        .spawn(move || write_batches(&worker, out, linger))?;
    Ok((
        Sink(shared.clone()),
        Flush {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_batches<W: Write>(shared: &Shared, mut out: W, linger: Duration) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.bytes.is_empty() && !pending.closed {
            pending = shared
                .has_lines
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        if pending.bytes.is_empty() {
            return;
        }
        // More lines come meanwhile; the end of the process does not wait.
        pending = shared
            .has_lines
            .wait_timeout_while(pending, linger, |p| !p.closed)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        std::mem::swap(&mut batch, &mut pending.bytes);
        drop(pending);
        shared.has_room.notify_all();
        // Nowhere to report a failed write of the log itself.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        // One burst must not hold its size for the rest of the process.
        batch.shrink_to(64 << 10);
    }
}

impl Write for &Sink {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &self.0;
        let mut pending = shared.lock();
        while pending.bytes.len() >= shared.capacity && !pending.closed {
            pending = shared
                .has_room
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        let first = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(line);
        drop(pending);
        if first {
            shared.has_lines.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = &'a Sink;

    fn make_writer(&'a self) -> &'a Sink {
        self
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.has_lines.notify_one();
        self.shared.has_room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test reads back; it can hold the writer thread up.
    #[derive(Clone, Default)]
    struct Out {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Out {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let _held = self.gate.lock().unwrap();
            self.bytes.lock().unwrap().extend_from_slice(b);
            *self.writes.lock().unwrap() += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log(sink: &Sink, thread: usize, n: usize) {
        for i in 0..n {
            let mut w = sink.make_writer();
            w.write_all(format!("t{thread} line {i}\n").as_bytes())
                .unwrap();
        }
    }

    fn lines_of(out: &Out, thread: usize) -> Vec<String> {
        let text = String::from_utf8(out.bytes.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|l| l.starts_with(&format!("t{thread} ")))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_line_of_every_thread_is_written_whole_in_its_order_and_in_batches() {
        let out = Out::default();
        let (sink, flush) = start(out.clone(), Duration::from_millis(5), CAPACITY).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let sink = &sink;
                s.spawn(move || log(sink, t, 2_000));
            }
        });
        drop(flush);
        for t in 0..4 {
            let expected: Vec<String> = (0..2_000).map(|i| format!("t{t} line {i}")).collect();
            assert_eq!(lines_of(&out, t), expected);
        }
        let writes = *out.writes.lock().unwrap();
        assert!(
            writes < 8_000,
            "{writes} writes for 8,000 lines: not batched"
        );
    }

    #[test]
    fn a_full_buffer_makes_the_logger_wait_for_the_writer_and_loses_nothing() {
        let out = Out::default();
        let held = out.gate.lock().unwrap();
        let (sink, flush) = start(out.clone(), Duration::ZERO, 64).unwrap();
        let logger = {
            let sink = sink.clone();
            std::thread::spawn(move || log(&sink, 0, 50))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !logger.is_finished(),
            "the logger went on past a full buffer while the output was stalled"
        );
        drop(held);
        logger.join().unwrap();
        drop(flush);
        let expected: Vec<String> = (0..50).map(|i| format!("t0 line {i}")).collect();
        assert_eq!(lines_of(&out, 0), expected);
    }

    #[test]
    fn what_is_pending_at_the_end_is_written_without_waiting_out_the_linger() {
        let out = Out::default();
        let (sink, flush) = start(out.clone(), Duration::from_secs(120), CAPACITY).unwrap();
        log(&sink, 0, 3);
        let started = std::time::Instant::now();
        drop(flush);
        assert_eq!(lines_of(&out, 0).len(), 3);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the end waited out the linger"
        );
    }
}
