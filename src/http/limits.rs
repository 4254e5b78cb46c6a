//! What one client may hold at the edge, without any secret: connections,
//! time to send a request head or a body, and memory for webhook bodies.
//! Every limit here is counted before authentication, because Meta's webhook
//! and the signup pages must stay reachable by anyone.

use std::collections::HashMap;
use std::net::IpAddr;
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
    /// Connections open at once from one client address (an IPv6 /64).
    pub max_connections_per_address: usize,
    /// Bytes of webhook bodies being received at once, over all connections.
    pub webhook_body_budget: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_address: 256,
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
/// clients instead of using up the file descriptors, and no one address can
/// hold them all with requests it never finishes.
pub struct Connections {
    cap: usize,
    per_address: usize,
    epoch: Instant,
    next_id: AtomicU64,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    /// Each connection, and the source it is counted under (none for a
    /// trusted proxy).
    conns: HashMap<u64, (Option<Source>, Arc<Conn>)>,
    per_source: HashMap<Source, usize>,
}

/// Where connections are counted: the peer's address, an IPv6 /64 as one
/// (one host is usually given a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(bits.into()))
            }
            v4 => Source(v4),
        }
    }
}

/// What became of a new connection.
pub enum Admission {
    Admitted(ConnHandle),
    /// Admitted after closing the connection idle the longest.
    MadeRoom(ConnHandle),
    /// Every connection is busy: refused.
    Full,
    /// That address holds its share already: refused.
    AddressFull,
}

/// One connection's state, as the edge sees it.
pub struct Conn {
    in_flight: AtomicUsize,
    /// When it last became idle, in ms since `Connections::epoch`.
    idle_since_ms: AtomicU64,
    /// Answers being written, and when one last moved (ms since the epoch).
    writing: AtomicUsize,
    last_write_ms: AtomicU64,
    epoch: Instant,
    /// Fired to close it from outside (shed to make room).
    pub close: CancellationToken,
}

/// Why a connection was closed by the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No request head within the head deadline.
    Idle,
    /// An answer the client did not take for the write deadline (it stopped
    /// reading, or gave HTTP/2 no window).
    Stalled,
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

    /// Marks an answer being written, until the guard is dropped.
    pub fn writing(self: &Arc<Self>) -> WriteGuard {
        self.wrote();
        self.writing.fetch_add(1, Ordering::AcqRel);
        WriteGuard(self.clone())
    }

    /// An answer moved: the client is taking it.
    pub fn wrote(&self) {
        self.last_write_ms.store(self.now_ms(), Ordering::Release);
    }

    /// How long the answers being written have not moved, if any is.
    fn stalled_for(&self) -> Option<Duration> {
        if self.writing.load(Ordering::Acquire) == 0 {
            return None;
        }
        let since = self.last_write_ms.load(Ordering::Acquire);
        Some(Duration::from_millis(self.now_ms().saturating_sub(since)))
    }

    /// Resolves when the connection has been idle for `idle`, or an answer
    /// has not moved for `write`. A handler still working (a slow Graph
    /// call) is neither: it is bounded by its own timeouts.
    pub async fn expired(&self, idle: Duration, write: Duration) -> Expiry {
        loop {
            let idle_left = match self.idle_for() {
                Some(i) if i >= idle => return Expiry::Idle,
                Some(i) => idle - i,
                None => idle,
            };
            let write_left = match self.stalled_for() {
                Some(s) if s >= write => return Expiry::Stalled,
                Some(s) => write - s,
                None => write,
            };
            tokio::time::sleep(idle_left.min(write_left)).await;
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

/// An answer being written on a connection.
pub struct WriteGuard(Arc<Conn>);

impl WriteGuard {
    pub fn wrote(&self) {
        self.0.wrote();
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        self.0.writing.fetch_sub(1, Ordering::AcqRel);
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
            live.remove(self.id);
        }
    }
}

impl Live {
    /// Closes the connection idle the longest among those `of` picks by
    /// source; false when none of them is idle.
    fn shed_idlest(&mut self, of: impl Fn(Option<Source>) -> bool) -> bool {
        let idlest = self
            .conns
            .iter()
            .filter(|(_, (source, _))| of(*source))
            .filter_map(|(id, (_, c))| c.idle_for().map(|idle| (idle, *id)))
            .max();
        match idlest.and_then(|(_, id)| self.remove(id)) {
            Some(shed) => {
                shed.close.cancel();
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let (source, conn) = self.conns.remove(&id)?;
        if let Some(source) = source {
            if let Some(n) = self.per_source.get_mut(&source) {
                *n -= 1;
                if *n == 0 {
                    self.per_source.remove(&source);
                }
            }
        }
        Some(conn)
    }
}

impl Connections {
    pub fn new(cap: usize, per_address: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            per_address: per_address.max(1),
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            live: Mutex::new(Live::default()),
        })
    }

    pub fn open(&self) -> usize {
        self.live.lock().map(|l| l.conns.len()).unwrap_or(0)
    }

    /// Registers a new connection from `peer`. An address past its share is
    /// refused (`counted: false` exempts a trusted reverse proxy, which speaks
    /// for many clients). At the cap, the connection idle the longest is
    /// closed to make room; when every one is busy, the new one is refused.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, counted: bool) -> Admission {
        let Ok(mut live) = self.live.lock() else {
            return Admission::Full;
        };
        let source = Source::of(peer);
        let mut made_room = false;
        // An address at its share makes room among its own connections only.
        if counted && live.per_source.get(&source).copied().unwrap_or(0) >= self.per_address {
            if !live.shed_idlest(|s| s == Some(source)) {
                return Admission::AddressFull;
            }
            made_room = true;
        } else if live.conns.len() >= self.cap {
            if !live.shed_idlest(|_| true) {
                return Admission::Full;
            }
            made_room = true;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(now),
            writing: AtomicUsize::new(0),
            last_write_ms: AtomicU64::new(now),
            epoch: self.epoch,
            close: CancellationToken::new(),
        });
        let counted = counted.then_some(source);
        live.conns.insert(id, (counted, conn.clone()));
        if let Some(source) = counted {
            *live.per_source.entry(source).or_insert(0) += 1;
        }
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

    /// A draw for one body, empty until it grows.
    pub fn draw(&self) -> Draw<'_> {
        Draw {
            budget: self,
            permit: None,
            bytes: 0,
            kib: 0,
        }
    }

    pub fn available(&self) -> usize {
        self.bytes.available_permits() * 1024
    }
}

/// What one body holds of the budget: its size rounded up to KiB once, not
/// per frame (a body sent a byte at a time costs its size, not 1 KiB a byte).
/// Given back when dropped.
pub struct Draw<'a> {
    budget: &'a BodyBudget,
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
    kib: u32,
}

impl Draw<'_> {
    /// Draws `more` bytes; false when the budget is spent.
    pub fn grow(&mut self, more: usize) -> bool {
        let Ok(want) = u32::try_from((self.bytes + more).div_ceil(1024)) else {
            return false;
        };
        if want > self.kib {
            let Ok(extra) = self
                .budget
                .bytes
                .clone()
                .try_acquire_many_owned(want - self.kib)
            else {
                return false;
            };
            match &mut self.permit {
                Some(p) => p.merge(extra),
                None => self.permit = Some(extra),
            }
            self.kib = want;
        }
        self.bytes += more;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(a: Admission) -> ConnHandle {
        match a {
            Admission::Admitted(h) | Admission::MadeRoom(h) => h,
            Admission::Full | Admission::AddressFull => panic!("refused"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn at_the_cap_the_idlest_connection_makes_room_and_busy_ones_stay() {
        let conns = Connections::new(2, 10);
        let a = handle(conns.admit(ip("192.0.2.1"), true));
        std::thread::sleep(Duration::from_millis(5));
        let b = handle(conns.admit(ip("192.0.2.2"), true));
        let _busy_b = b.conn.begin();
        let c = match conns.admit(ip("192.0.2.3"), true) {
            Admission::MadeRoom(c) => c,
            _ => panic!("a is idle: it makes room"),
        };
        assert!(a.conn.close.is_cancelled());
        assert!(!b.conn.close.is_cancelled());
        assert_eq!(conns.open(), 2);
        let _busy_c = c.conn.begin();
        assert!(
            matches!(conns.admit(ip("192.0.2.4"), true), Admission::Full),
            "every connection is busy"
        );
        drop(c);
        assert_eq!(conns.open(), 1);
    }

    #[test]
    fn one_address_holds_at_most_its_share_and_a_v6_64_is_one_address() {
        let conns = Connections::new(100, 2);
        let a = handle(conns.admit(ip("2001:db8:1:2::1"), true));
        let _busy_a = a.conn.begin();
        let b = handle(conns.admit(ip("2001:db8:1:2::ffff"), true));
        let idle_c = handle(conns.admit(ip("192.0.2.9"), true));
        let _busy_b = b.conn.begin();
        assert!(matches!(
            conns.admit(ip("2001:db8:1:2:3::9"), true),
            Admission::AddressFull
        ));
        assert!(
            !idle_c.conn.close.is_cancelled(),
            "another address's idle one stays"
        );
        assert!(matches!(
            conns.admit(ip("2001:db8:1:3::1"), true),
            Admission::Admitted(_)
        ));
        let _proxy = handle(conns.admit(ip("2001:db8:1:2::7"), false));
        drop(b);
        let idle_d = handle(conns.admit(ip("2001:db8:1:2::2"), true));
        assert!(matches!(
            conns.admit(ip("2001:db8:1:2::3"), true),
            Admission::MadeRoom(_)
        ));
        assert!(
            idle_d.conn.close.is_cancelled(),
            "its own idle one made room"
        );
        assert_eq!(
            Source::of(ip("::ffff:192.0.2.1")),
            Source::of(ip("192.0.2.1"))
        );
    }

    #[tokio::test]
    async fn an_answer_the_client_does_not_take_expires_but_a_slow_handler_does_not() {
        let conns = Connections::new(4, 4);
        let h = handle(conns.admit(ip("192.0.2.1"), true));
        let (idle, write) = (Duration::from_millis(100), Duration::from_millis(200));
        let busy = h.conn.begin();
        let slow_handler =
            tokio::time::timeout(Duration::from_millis(600), h.conn.expired(idle, write));
        assert!(slow_handler.await.is_err(), "a handler at work is not cut");
        let writing = h.conn.writing();
        assert_eq!(h.conn.expired(idle, write).await, Expiry::Stalled);
        drop((writing, busy));
        assert_eq!(h.conn.expired(idle, write).await, Expiry::Idle);
    }

    #[test]
    fn a_request_keeps_a_connection_busy_until_its_answer_is_sent() {
        let conns = Connections::new(4, 4);
        let h = handle(conns.admit(ip("192.0.2.1"), true));
        assert!(h.conn.idle_for().is_some());
        let guard = h.conn.begin();
        assert_eq!(h.conn.idle_for(), None);
        drop(guard);
        assert!(h.conn.idle_for().unwrap() < Duration::from_secs(1));
    }

    #[test]
    fn the_body_budget_is_shared_and_given_back() {
        let budget = BodyBudget::new(10 * 1024);
        let mut first = budget.draw();
        assert!(first.grow(6 * 1024));
        let mut second = budget.draw();
        assert!(!second.grow(6 * 1024));
        // A byte at a time costs the bytes, not a KiB each.
        for _ in 0..1024 {
            assert!(second.grow(1));
        }
        assert_eq!(budget.available(), 3 * 1024);
        drop(first);
        drop(second);
        assert_eq!(budget.available(), 10 * 1024);
    }
}
