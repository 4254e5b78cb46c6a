//! Checks delivered webhooks with the Standard Webhooks reference library (Python).

use std::io::Write;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::server::Recorded;

/// Panics unless every delivery verifies with `secret` in the `standardwebhooks` library.
pub fn assert_verified(deliveries: &[Recorded], secret: &str) {
    let items: Vec<_> = deliveries
        .iter()
        .map(|d| {
            json!({
                "secret": secret,
                "headers": {
                    "webhook-id": d.header("webhook-id").unwrap_or_default(),
                    "webhook-timestamp": d.header("webhook-timestamp").unwrap_or_default(),
                    "webhook-signature": d.header("webhook-signature").unwrap_or_default(),
                },
                "body": String::from_utf8(d.body.clone()).expect("delivery body is UTF-8"),
            })
        })
        .collect();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/verify_standard_webhooks.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed to verify Standard Webhooks signatures");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&items).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks refused a delivery: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// POSTs `body` to a flow tool's webhook `url` as a delivery with id
/// `webhook_id`, signed with the listener's `secret` (`whsec_…`), or, with
/// `None`, with a signature no secret made; returns the status it got.
pub fn post_delivery(url: &str, webhook_id: &str, body: &str, secret: Option<&str>) -> u16 {
    let timestamp = super::fake_meta::now_secs().to_string();
    let signature = match secret {
        Some(secret) => {
            let key = STANDARD
                .decode(secret.trim_start_matches("whsec_"))
                .expect("a whsec_ secret");
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            mac.update(format!("{webhook_id}.{timestamp}.{body}").as_bytes());
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        }
        None => "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
    };
    super::gateway::client()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", &timestamp)
        .header("webhook-signature", &signature)
        .send(body)
        .unwrap()
        .status()
        .as_u16()
}
