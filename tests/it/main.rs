//! Black-box tests: the real binary on loopback, a fake Meta, fake flow webhooks.

#[path = "../support/mod.rs"]
mod support;

mod backoffice;
mod smoke;
