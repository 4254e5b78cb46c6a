//! Connections: how many are open, how many one address holds, and which
//! idle or stalled one makes room for a new client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

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
