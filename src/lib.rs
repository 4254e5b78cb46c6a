//! wabridge: a self-hosted gateway between Meta's WhatsApp Business Cloud API and
//! the flow tools a business already runs.
//!
//! Data flows one way: `http` (the edge: JSON API and backoffice) → `usecase`
//! (what the gateway does) → `store` (redb) and `meta` (Graph API), with
//! `domain` (pure rules) used by all; webhook ingest → durable outbox →
//! `worker` (delivery). docs/architecture.md has the map.

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod files;
pub mod http;
pub mod meta;
pub mod metrics;
#[cfg(test)]
mod rooms;
pub mod store;
pub mod usecase;
pub mod worker;

pub use error::Error;

/// The crate version and, when built from a git checkout, the commit (see build.rs).
pub const VERSION: &str = env!("BUILT_WABRIDGE_VERSION");
