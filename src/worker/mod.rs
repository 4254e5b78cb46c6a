//! Background work. Delivery: take due outbox rows, POST them to flow webhooks,
//! record the outcome. Tokens: keep connected accounts' Meta tokens alive.
//! Retention: remove what is older than the retention period. Facts and
//! traffic: persist what the webhook and the counters keep in memory.

mod dispatcher;
mod facts;
mod janitor;
mod sender;
mod tokens;
mod traffic;

pub use dispatcher::Dispatcher;
pub use facts::FactsFlusher;
pub use janitor::Janitor;
pub use sender::Sender;
pub use tokens::TokenKeeper;
pub use traffic::TrafficFlusher;
