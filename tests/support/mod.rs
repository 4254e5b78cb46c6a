//! Test doubles and helpers shared by the black-box tests and the benchmarks:
//! a fake Meta, a fake flow webhook, the real gateway started on loopback, and
//! Meta-shaped webhook bodies.
#![allow(dead_code)]

pub mod admin_browser;
pub mod browser;
pub mod fake_meta;
pub mod gateway;
pub mod payloads;
pub mod receiver;
pub mod server;
pub mod standard_webhooks;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `sha256=<hex>` as Meta computes it, written here independently of the gateway's code.
pub fn meta_signature(body: &[u8], secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}
