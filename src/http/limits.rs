//! What one client may hold at the edge, without any secret: connections,
//! time to send a request head or a body, and memory for webhook bodies.
//! Every limit here is counted before authentication, because Meta's webhook
//! and the signup pages must stay reachable by anyone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// The edge's limits, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    /// A connection with no request in progress must send a complete request
    /// head within this long (since it opened, or since its last answer).
    pub header_timeout: Duration,
    /// A request body must arrive in full within this long after its head.
    pub body_timeout: Duration,
    /// Connections open at once; beyond, the longest-idle one is closed.
    pub max_connections: usize,
    /// Bytes of webhook bodies being received at once, over all connections.
    pub webhook_body_budget: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            webhook_body_budget: 64 * 1024 * 1024,
        }
    }
}

/// The body deadline. Body readers are called from every handler with the
/// body alone, so the deadline is process-wide, set once at start.
static BODY_TIMEOUT: OnceLock<Duration> = OnceLock::new();

pub fn set_body_timeout(timeout: Duration) {
    let _ = BODY_TIMEOUT.set(timeout);
}

pub fn body_timeout() -> Duration {
    BODY_TIMEOUT
        .get()
        .copied()
        .unwrap_or(EdgeLimits::default().body_timeout)
}

/// The open connections, so that a flood of idle ones makes room for new
/// clients instead of using up the file descriptors.
pub struct Connections {
    cap: usize,
    epoch: Instant,
    next_id: AtomicU64,
    live: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// What became of a new connection.
pub enum Admission {
    Admitted(ConnHandle),
    /// Admitted after closing the connection idle the longest.
    MadeRoom(ConnHandle),
    /// Every connection is busy: refused.
    Full,
}

/// One connection's state, as the edge sees it.
pub struct Conn {
    in_flight: AtomicUsize,
    /// When it last became idle, in ms since `Connections::epoch`.
    idle_since_ms: AtomicU64,
    epoch: Instant,
    /// Fired to close it from outside (shed to make room).
    pub close: CancellationToken,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// How long it has been idle, or `None` while a request is in progress.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.idle_since_ms.load(Ordering::Acquire);
        Some(Duration::from_millis(self.now_ms().saturating_sub(since)))
    }

    /// Marks a request in progress until the guard (kept by the answer's
    /// body, so a streamed download counts) is dropped.
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }

    /// Resolves when the connection has been idle for `timeout`.
    pub async fn idle_expired(&self, timeout: Duration) {
        loop {
            let wait = match self.idle_for() {
                Some(idle) if idle >= timeout => return,
                Some(idle) => timeout - idle,
                // Busy: the body deadline and the handler bound the request.
                None => timeout,
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request in progress on a connection.
pub struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_since_ms.store(conn.now_ms(), Ordering::Release);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A registered connection; dropping it forgets the connection.
pub struct ConnHandle {
    id: u64,
    pub conn: Arc<Conn>,
    conns: Arc<Connections>,
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        if let Ok(mut live) = self.conns.live.lock() {
            live.remove(&self.id);
        }
    }
}

impl Connections {
    pub fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        })
    }

    pub fn open(&self) -> usize {
        self.live.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Registers a new connection. At the cap, the connection idle the longest
    /// is closed to make room; when every one is busy, the new one is refused.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let Ok(mut live) = self.live.lock() else {
            return Admission::Full;
        };
        let mut made_room = false;
        if live.len() >= self.cap {
            let idlest = live
                .iter()
                .filter_map(|(id, c)| c.idle_for().map(|idle| (idle, *id)))
                .max();
            match idlest.and_then(|(_, id)| live.remove(&id)) {
                Some(shed) => {
                    shed.close.cancel();
                    made_room = true;
                }
                None => return Admission::Full,
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
            epoch: self.epoch,
            close: CancellationToken::new(),
        });
        live.insert(id, conn.clone());
        let handle = ConnHandle {
            id,
            conn,
            conns: self.clone(),
        };
        if made_room {
            Admission::MadeRoom(handle)
        } else {
            Admission::Admitted(handle)
        }
    }
}

/// Memory for webhook bodies being received. Meta's bodies arrive in a few
/// milliseconds; a sender that trickles one holds its share only until the
/// body deadline, and the total never exceeds the budget.
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    pub fn new(total: usize) -> BodyBudget {
        // The semaphore counts in u32-sized permits per acquire; the budget is
        // counted in KiB so a budget of gigabytes still fits.
        BodyBudget {
            bytes: Arc::new(Semaphore::new(total.max(1024) / 1024)),
        }
    }

    /// Takes `bytes` (rounded up to KiB) of the budget, or `None` when it is spent.
    pub fn take(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(1024)).ok()?;
        self.bytes.clone().try_acquire_many_owned(kib).ok()
    }

    pub fn available(&self) -> usize {
        self.bytes.available_permits() * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(a: Admission) -> ConnHandle {
        match a {
            Admission::Admitted(h) | Admission::MadeRoom(h) => h,
            Admission::Full => panic!("refused"),
        }
    }

    #[test]
    fn at_the_cap_the_idlest_connection_makes_room_and_busy_ones_stay() {
        let conns = Connections::new(2);
        let a = handle(conns.admit());
        std::thread::sleep(Duration::from_millis(5));
        let b = handle(conns.admit());
        let _busy_b = b.conn.begin();
        let c = match conns.admit() {
            Admission::MadeRoom(c) => c,
            _ => panic!("a is idle: it makes room"),
        };
        assert!(a.conn.close.is_cancelled());
        assert!(!b.conn.close.is_cancelled());
        assert_eq!(conns.open(), 2);
        let _busy_c = c.conn.begin();
        assert!(
            matches!(conns.admit(), Admission::Full),
            "every connection is busy"
        );
        drop(c);
        assert_eq!(conns.open(), 1);
    }

    #[test]
    fn a_request_keeps_a_connection_busy_until_its_answer_is_sent() {
        let conns = Connections::new(4);
        let h = handle(conns.admit());
        assert!(h.conn.idle_for().is_some());
        let guard = h.conn.begin();
        assert_eq!(h.conn.idle_for(), None);
        drop(guard);
        assert!(h.conn.idle_for().unwrap() < Duration::from_secs(1));
    }

    #[test]
    fn the_body_budget_is_shared_and_given_back() {
        let budget = BodyBudget::new(10 * 1024);
        let first = budget.take(6 * 1024).unwrap();
        assert!(budget.take(6 * 1024).is_none());
        let small = budget.take(1).unwrap();
        assert_eq!(budget.available(), 3 * 1024);
        drop(first);
        drop(small);
        assert_eq!(budget.available(), 10 * 1024);
    }
}
