//! Where log lines go: a buffer that a thread of its own writes out in
//! batches, a few milliseconds after the first line of each batch.
//!
//! A channel with a line per message (what tracing-appender does) woke the
//! writing thread for nearly every line under load: a futex call on the
//! request's thread and a thread switch and `write` on the other, 4.9 % of
//! the gateway's CPU under full ingest at one line per request. Here a line
//! is a copy into a shared buffer; only the first line of a batch wakes the
//! writer.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer waits after a batch's first line for more lines: a
/// journald timestamp is at most this late.
pub const LINGER: Duration = Duration::from_millis(10);
/// Lines held before a logger waits for the writer (a stalled journald):
/// waiting, not dropping, keeps every line.
pub const CAPACITY: usize = 4 << 20;
/// How long the end of the process waits for pending lines to be written: a
/// stalled journald must not keep a stopping gateway alive.
pub const FLUSH_WAIT: Duration = Duration::from_secs(1);

struct Shared {
    pending: Mutex<Pending>,
    has_lines: Condvar,
    /// Signalled whenever a batch is taken or written: loggers waiting for
    /// room and a flush waiting for the last write both re-check.
    progress: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// A batch taken from `bytes` is being written.
    writing: bool,
    /// The process is ending: no more lingering.
    ending: bool,
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

/// Dropping it writes what is pending, waiting `FLUSH_WAIT` at most. The
/// writer thread lives on with the process, so a line logged later (a task
/// still stopping) is still written.
pub struct Flush {
    shared: Arc<Shared>,
    wait: Duration,
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
        progress: Condvar::new(),
        capacity,
    });
    let worker = shared.clone();
    std::thread::Builder::new()
        .name("wabridge-log".into())
        .spawn(move || write_batches(&worker, out, linger))?;
    Ok((
        Sink(shared.clone()),
        Flush {
            shared,
            wait: FLUSH_WAIT,
        },
    ))
}

fn write_batches<W: Write>(shared: &Shared, mut out: W, linger: Duration) {
    let mut batch = Vec::new();
    let mut broken = false;
    loop {
        next_batch(shared, linger, &mut batch);
        // A failed write may have left part of a line: the next batch starts
        // on a line of its own. There is nowhere to report the failure.
        if broken {
            let _ = out.write_all(b"\n");
        }
        broken = out.write_all(&batch).and_then(|()| out.flush()).is_err();
        batch.clear();
        // One burst must not hold its size for the rest of the process.
        batch.shrink_to(64 << 10);
        shared.lock().writing = false;
        shared.progress.notify_all();
    }
}

/// Waits for a first line, then up to `linger` for more (not when the buffer
/// is full or the process ending), and takes them all into `batch`.
fn next_batch(shared: &Shared, linger: Duration, batch: &mut Vec<u8>) {
    let mut pending = shared.lock();
    while pending.bytes.is_empty() {
        pending = shared
            .has_lines
            .wait(pending)
            .unwrap_or_else(|p| p.into_inner());
    }
    pending = shared
        .has_lines
        .wait_timeout_while(pending, linger, |p| {
            !p.ending && p.bytes.len() < shared.capacity
        })
        .unwrap_or_else(|p| p.into_inner())
        .0;
    std::mem::swap(batch, &mut pending.bytes);
    pending.writing = true;
    drop(pending);
    shared.progress.notify_all();
}

/// Correct only because the subscriber hands over each event's line in one
/// `write_all`, which is one `write` here: a line is never split or mixed
/// with another. A `BufWriter` in between would break that.
impl Write for &Sink {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &self.0;
        let mut pending = shared.lock();
        while pending.bytes.len() >= shared.capacity {
            pending = shared
                .progress
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        let first = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(line);
        // The first line starts the linger; a full buffer ends it.
        let wake = first || pending.bytes.len() >= shared.capacity;
        drop(pending);
        if wake {
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
        let mut pending = self.shared.lock();
        pending.ending = true;
        self.shared.has_lines.notify_one();
        let _ = self
            .shared
            .progress
            .wait_timeout_while(pending, self.wait, |p| !p.bytes.is_empty() || p.writing);
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

    /// Polls `done` for up to 10 s.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < until {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        done()
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
        // The writer is stuck on the first batch and the buffer has filled:
        // a logger that does not wait finishes its 50 lines meanwhile.
        eventually(|| logger.is_finished() || sink.0.lock().bytes.len() >= 64);
        std::thread::sleep(Duration::from_millis(20));
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
        drop(flush);
        assert_eq!(lines_of(&out, 0).len(), 3);
    }

    #[test]
    fn a_stalled_output_does_not_hold_the_end_and_later_lines_are_still_written() {
        let out = Out::default();
        let held = out.gate.lock().unwrap();
        let (sink, mut flush) = start(out.clone(), LINGER, CAPACITY).unwrap();
        flush.wait = Duration::from_millis(50);
        log(&sink, 0, 3);
        let (ended, end) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(flush);
            let _ = ended.send(());
        });
        assert!(
            end.recv_timeout(Duration::from_secs(10)).is_ok(),
            "the end waited on a stalled output"
        );
        log(&sink, 1, 2);
        drop(held);
        assert!(eventually(|| lines_of(&out, 0).len() == 3));
        assert!(
            eventually(|| lines_of(&out, 1).len() == 2),
            "a line logged after the end was lost"
        );
    }
}
