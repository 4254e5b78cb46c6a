//! Black-box tests: the real binary on loopback, a fake Meta, fake flow webhooks.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod backup;
mod cli;
mod config_check;
mod crash;
mod delivery;
mod ops;
mod routing;
mod simulate;
mod smoke;
mod webhook;
