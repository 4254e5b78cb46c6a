//! What one client may hold at the edge, without any secret: connections,
//! time to send a request head or a body, and memory for webhook bodies.
//! Every limit here is counted before authentication, because Meta's webhook
//! and the signup pages must stay reachable by anyone.

mod budget;
mod connections;

use std::sync::OnceLock;
use std::time::Duration;

pub use budget::{BodyBudget, Draw};
pub use connections::{
    Admission, Conn, ConnHandle, Connections, Expiry, RequestGuard, Source, WriteGuard,
};

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
#[cfg(test)]
mod tests;
