//! Delivery: take due outbox rows, POST them to flow webhooks, record the outcome.

mod dispatcher;
mod sender;

pub use dispatcher::Dispatcher;
pub use sender::Sender;
