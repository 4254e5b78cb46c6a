//! The edge: TLS, routing, body limits, authentication, and the one place where
//! errors become HTTP status codes.

mod auth;
mod body;
mod client;
pub mod limits;
mod pages;
pub mod password_checks;
mod query;
mod response;
mod router;
mod routes;
pub mod server;
mod session;
mod throttle;
pub mod tls;

pub use router::{AppState, Backoffice};
pub use routes::backup::SECRETS_KEY_HEADER;
pub use session::Sessions;
pub use throttle::Throttle;
