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

/// Appends a child's stdout and stderr, line by line, to `log`.
pub fn log_output(child: &mut std::process::Child, log: &std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::{BufRead, BufReader};
    let pipes: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as _),
        child.stderr.take().map(|p| Box::new(p) as _),
    ];
    for pipe in pipes.into_iter().flatten() {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
}
