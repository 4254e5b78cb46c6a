//! Black-box tests: the real binary on loopback, a fake Meta, fake flow webhooks.

#[path = "../support/mod.rs"]
mod support;

mod api;
mod backoffice;
mod backup;
mod charts;
mod cli;
mod config_check;
mod connect;
mod crash;
mod delivery;
mod disk;
mod fields;
mod flow;
mod flows;
mod hostile;
mod n8n;
mod node_red;
mod openapi;
mod ops;
mod routing;
mod sandbox;
mod secrets;
mod signup_page;
mod simulate;
mod smoke;
mod tokens;
mod webhook;
