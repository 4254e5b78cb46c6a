//! The rules of wabridge, in plain Rust: no sockets, no files.

pub mod accounts;
pub mod connect;
pub mod delivery;
pub mod disk;
pub mod events;
pub mod flows;
pub mod ids;
pub mod media;
pub mod model;
pub mod outbound;
pub mod password;
pub mod paths;
pub mod recipient;
pub mod sandbox;
pub mod signature;
pub mod statuses;
pub mod subscription;
pub mod templates;
pub mod test_event;
pub mod time;
pub mod tokens;
pub mod traffic;
pub mod urlguard;
pub mod webhook;
pub mod webhook_health;
pub mod window;
