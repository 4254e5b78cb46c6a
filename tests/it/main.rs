//! Black-box tests: the real binary on loopback, a fake Meta, fake flow webhooks.

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod crash;
mod delivery;
mod routing;
mod smoke;
mod webhook;
