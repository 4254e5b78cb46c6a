//! Background work. Delivery: take due outbox rows, POST them to flow webhooks,
//! record the outcome. Tokens: keep connected accounts' Meta tokens alive.

mod dispatcher;
mod sender;
mod tokens;

pub use dispatcher::Dispatcher;
pub use sender::Sender;
pub use tokens::TokenKeeper;
