//! Signatures both ways: Meta's `X-Hub-Signature-256` on what comes in, and
//! Standard Webhooks' `webhook-signature` on what we send out.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Checks `sha256=<hex>` against HMAC-SHA256(body, app secret), in constant time.
pub fn verify_meta(
    body: &[u8],
    header: Option<&str>,
    app_secret: &str,
) -> Result<(), &'static str> {
    let header = header.ok_or("missing X-Hub-Signature-256 header")?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or("X-Hub-Signature-256 must look like sha256=<hex>")?;
    let expected = decode_hex(hex_sig).ok_or("X-Hub-Signature-256 is not hex")?;
    let mut mac =
        HmacSha256::new_from_slice(app_secret.as_bytes()).map_err(|_| "unusable app secret")?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| "X-Hub-Signature-256 does not match the body and the app secret")
}

/// What Meta would send for this body: used by tests, the simulator and benchmarks.
pub fn sign_meta(body: &[u8], app_secret: &str) -> String {
    let mut mac =
        HmacSha256::new_from_slice(app_secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", super::ids::hex(&mac.finalize().into_bytes()))
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` where the secret is `whsec_<base64 key>`.
pub fn standard_webhooks_signature(
    secret: &str,
    webhook_id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<String, &'static str> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "listener secret is not base64")?;
    let mut mac = HmacSha256::new_from_slice(&key).map_err(|_| "unusable listener secret")?;
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_signature_round_trip() {
        let sig = sign_meta(b"{}", "s3cret");
        assert!(verify_meta(b"{}", Some(&sig), "s3cret").is_ok());
        assert!(verify_meta(b"{ }", Some(&sig), "s3cret").is_err());
        assert!(verify_meta(b"{}", Some(&sig), "other").is_err());
        assert!(verify_meta(b"{}", None, "s3cret").is_err());
        assert!(verify_meta(b"{}", Some("sha1=00"), "s3cret").is_err());
        assert!(verify_meta(b"{}", Some("sha256=zz"), "s3cret").is_err());
        assert!(verify_meta(b"{}", Some("sha256=ü0"), "s3cret").is_err());
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification's reference libraries.
        let sig = standard_webhooks_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
