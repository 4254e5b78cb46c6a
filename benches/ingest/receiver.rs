//! The flow webhooks of the benchmark: lean hyper servers that only count what
//! the gateway delivers, and how long after its POST started each event
//! arrived. A receiver can start with its gate closed: it takes each delivery's
//! request and holds the answer until the gate opens, so the gateway has all its
//! attempts in flight, none failing, and queues every new event in its outbox.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::sync::{oneshot, watch};

use crate::{now_us, MARK};

/// The receivers' threads, whose CPU time the outbox table shows.
pub const THREAD: &str = "bench-receiver";

/// A flow webhook that only counts: arrival time minus the send time in the text.
pub struct CountingReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    gate: watch::Sender<bool>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the receiver's connections share.
struct Shared {
    arrivals: Mutex<Arrivals>,
    /// Open: answer at once. Closed: hold every request until it opens.
    gate: watch::Receiver<bool>,
    /// Requests waiting at the closed gate.
    waiting: AtomicU64,
}

#[derive(Default)]
pub struct Arrivals {
    /// End-to-end latency of each first delivery, µs.
    pub e2e_us: Vec<u32>,
    /// Which sequence numbers arrived (a redelivery is counted once).
    seen: Vec<bool>,
    pub duplicates: u64,
    pub unreadable: u64,
    pub last_at_us: u64,
}

impl Arrivals {
    fn record(&mut self, at: u64, mark: Option<(u64, u64)>) {
        self.last_at_us = at;
        let Some((seq, sent)) = mark else {
            self.unreadable += 1;
            return;
        };
        let seq = seq as usize;
        if self.seen.len() <= seq {
            self.seen.resize(seq + 1, false);
        }
        if self.seen[seq] {
            self.duplicates += 1;
        } else {
            self.seen[seq] = true;
            self.e2e_us
                .push(at.saturating_sub(sent).min(u32::MAX as u64) as u32);
        }
    }
}

impl CountingReceiver {
    /// Answers every delivery `200` as soon as its body is read.
    pub fn start() -> CountingReceiver {
        Self::with_gate(true)
    }

    /// Holds every delivery until [`release`](Self::release).
    pub fn held() -> CountingReceiver {
        Self::with_gate(false)
    }

    fn with_gate(open: bool) -> CountingReceiver {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("the receiver cannot bind");
        listener.set_nonblocking(true).expect("non-blocking socket");
        let addr = listener.local_addr().expect("bound address");
        let (gate, gate_rx) = watch::channel(open);
        let shared = Arc::new(Shared {
            arrivals: Mutex::new(Arrivals::default()),
            gate: gate_rx,
            waiting: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(THREAD.into())
            .spawn(move || serve(listener, s, stop_rx))
            .expect("cannot start the receiver");
        CountingReceiver {
            addr,
            shared,
            gate,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Opens the gate: held deliveries are answered, new ones are not held.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// Deliveries waiting at the closed gate now.
    pub fn waiting(&self) -> u64 {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// Distinct events delivered so far.
    pub fn delivered(&self) -> u64 {
        self.arrivals(|a| a.e2e_us.len() as u64)
    }

    /// Reads what arrived so far.
    pub fn arrivals<R>(&self, read: impl FnOnce(&Arrivals) -> R) -> R {
        read(&self.shared.arrivals.lock().unwrap())
    }
}

impl Drop for CountingReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The receiver's own runtime: two workers, as the tests' receivers have.
fn serve(listener: std::net::TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREAD)
        .enable_all()
        .build()
        .expect("cannot start the receiver's runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let builder = Builder::new(TokioExecutor::new());
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(_) => continue,
                },
                _ = &mut stop => break,
            };
            let _ = stream.set_nodelay(true);
            let (builder, shared) = (builder.clone(), shared.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| arrive(req, shared.clone()));
                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    // Dropping the runtime closes every open connection, held ones too.
    runtime.shutdown_timeout(Duration::from_millis(100));
}

/// Reads the delivery, waits at the gate if it is closed, records it, answers `200`.
async fn arrive(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut gate = shared.gate.clone();
    if !*gate.borrow_and_update() {
        shared.waiting.fetch_add(1, Ordering::Relaxed);
        let _ = gate.wait_for(|open| *open).await;
        shared.waiting.fetch_sub(1, Ordering::Relaxed);
    }
    let mark = parse_mark(&body);
    shared.arrivals.lock().unwrap().record(now_us(), mark);
    Ok(Response::new(Full::new(Bytes::new())))
}

/// `(seq, sent µs)` from `…bench:<seq>:<sent>;…` in a delivery body.
fn parse_mark(body: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let (seq, rest) = rest.split_once(':')?;
    let (sent, _) = rest.split_once(';')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}
