//! Background work. Delivery: take due outbox rows, POST them to flow webhooks,
//! record the outcome. Tokens: keep connected accounts' Meta tokens alive.
//! Retention: remove what is older than the retention period.

mod dispatcher;
mod facts;
mod janitor;
mod sender;
mod tokens;

pub use dispatcher::Dispatcher;
pub use facts::FactsFlusher;
pub use janitor::Janitor;
pub use sender::Sender;
pub use tokens::TokenKeeper;
