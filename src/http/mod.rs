//! The edge: TLS, routing, body limits, who is calling, and the one place
//! where errors become HTTP status codes. Handlers translate a request into
//! a use case's inputs and its result into an answer; the rules live in
//! `usecase` and `domain`.

mod body;
mod client;
mod guards;
pub mod limits;
mod pages;
pub mod password_checks;
pub mod request;
mod response;
mod router;
mod routes;
pub mod server;
mod session;
mod state;
mod throttle;
pub mod tls;
mod web;

pub use routes::backup::SECRETS_KEY_HEADER;
pub use session::Sessions;
pub use state::{AppState, Backoffice};
pub use throttle::Throttle;
