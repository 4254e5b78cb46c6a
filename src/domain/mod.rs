//! The rules of wabridge, in plain Rust: no sockets, no files.

pub mod accounts;
pub mod connect;
pub mod delivery;
pub mod ids;
pub mod model;
pub mod password;
pub mod signature;
pub mod statuses;
pub mod time;
pub mod tokens;
pub mod urlguard;
pub mod webhook;
pub mod webhook_health;
