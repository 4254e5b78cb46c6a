//! Background work: delivery (take due outbox rows, POST them to flow webhooks,
//! record the outcome) and retention.

mod dispatcher;
mod janitor;
mod sender;

pub use dispatcher::Dispatcher;
pub use janitor::Janitor;
pub use sender::Sender;
