//! Identifiers and secrets: random, URL-safe, and hashed before they are stored.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // The OS generator failing means the machine cannot make secrets at all;
    // there is no safe fallback, so it is the one place we stop.
    getrandom::fill(&mut buf).expect("the operating system's random generator failed");
    buf
}

/// Uniform in [0, 1): for retry jitter.
pub fn random_unit() -> f64 {
    let b = random_bytes(4);
    f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])) / (f64::from(u32::MAX) + 1.0)
}

/// A random id with a readable prefix, e.g. `lst_3kTq…` (96 bits).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(random_bytes(12)))
}

/// A bearer secret (256 bits) with a prefix that tells what it is when found in a log.
pub fn new_token(prefix: &str) -> String {
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(random_bytes(32)))
}

/// The shortest admin token accepted: 32 characters are ~190 bits as
/// `openssl rand -base64 24` makes them, beyond any guessing, throttled or not.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Why an admin token chosen by the operator is refused, if it is.
pub fn admin_token_problem(token: &str) -> Option<String> {
    let n = token.trim().chars().count();
    (n < MIN_ADMIN_TOKEN_CHARS).then(|| {
        format!(
            "WABRIDGE_ADMIN_TOKEN has {n} characters; it must have at least {MIN_ADMIN_TOKEN_CHARS} (make one with `openssl rand -hex 32`, or unset it and let wabridge generate one)"
        )
    })
}

/// A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(random_bytes(32)))
}

/// How bearer tokens are stored: they are long and random, so a plain SHA-256
/// is enough (a slow password hash buys nothing against 256 bits of entropy).
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Ids that cross from the front-ends into the use cases, typed so that a
/// phone number id cannot be passed where a WABA id is meant. The stored
/// records keep plain strings (their JSON is the same).
macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

typed_id! {
    /// A connected account (`acc_…`).
    AccountId,
    /// A WhatsApp Business Account, Meta's digits.
    WabaId,
    /// A sender phone number, Meta's digits (not the phone number itself).
    PhoneNumberId,
    /// A flow webhook registration (`lst_…`).
    ListenerId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = new_id("lst");
        assert!(a.starts_with("lst_"));
        assert_ne!(a, new_id("lst"));
        assert_eq!(new_token("wbk").len(), 4 + 43);
    }

    #[test]
    fn webhook_secret_decodes_to_32_bytes() {
        let s = new_webhook_secret();
        let key = STANDARD.decode(s.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(key.len(), 32);
    }

    #[test]
    fn hash_and_compare() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
