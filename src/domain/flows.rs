//! The WhatsApp Flows data endpoint's rules (CONTRACT §4.1, docs/flows.md):
//! the number's RSA key pair, Meta's encrypted request opened, the flow
//! tool's answer sealed for Meta, and what the flow tool receives.
//!
//! Meta wraps a fresh AES-128 key with the number's public key (RSA-OAEP,
//! SHA-256 for the hash and MGF1), encrypts the request with it (AES-GCM,
//! a 16-byte IV, the tag appended) and expects the answer encrypted with the
//! same key and the IV with every bit flipped. Randomness comes in as an
//! argument; no I/O here.

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::{AesGcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::TryCryptoRng;
use rsa::sha2::Sha256 as OaepSha256;
use rsa::{Oaep, PrivateKey};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::ids::random_bytes;
use super::time::rfc3339_ms;
use crate::error::Error;

/// Meta's reference makes 2048-bit keys; RustCrypto refuses fewer than 1024.
pub const KEY_BITS: usize = 2048;
/// The outbound `type` of a request forwarded to the flow tool.
pub const EVENT_TYPE: &str = "whatsapp.flow.data_exchange";
/// The answer to Meta's health check, which the flow tool never sees.
pub const PING_ANSWER: &str = r#"{"data":{"status":"active"}}"#;

/// AES-128-GCM with Meta's 16-byte IV (the standard is 12 bytes).
type FlowCipher = AesGcm<Aes128, U16>;
const AES_KEY_BYTES: usize = 16;
const IV_BYTES: usize = 16;

/// A number's key pair, as PEM: PKCS#8 for the private key (stored sealed),
/// SubjectPublicKeyInfo for the public key (what Meta takes).
pub struct KeyPair {
    pub private_pem: String,
    pub public_pem: String,
}

/// A new RSA key pair from `rng`. A prime search: tens of milliseconds
/// optimised, about half a second in a debug build, so callers run it off
/// the async workers.
pub fn generate_key_pair<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<KeyPair, Error> {
    let key = PrivateKey::new(rng, KEY_BITS)
        .map_err(|e| Error::internal("generating the Flows RSA key pair", e.to_string()))?;
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::internal("encoding the Flows private key", e.to_string()))?
        .to_string();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::internal("encoding the Flows public key", e.to_string()))?;
    Ok(KeyPair {
        private_pem,
        public_pem,
    })
}

/// Meta's request body: three base64 fields.
#[derive(Debug, Deserialize)]
struct EncryptedRequest {
    encrypted_flow_data: String,
    encrypted_aes_key: String,
    initial_vector: String,
}

/// A request opened with the number's private key: the plain JSON, and the
/// key and IV its answer is sealed with.
pub struct Opened {
    pub request: Value,
    key: [u8; AES_KEY_BYTES],
    iv: [u8; IV_BYTES],
}

impl std::fmt::Debug for Opened {
    // The AES key stays out of logs and test output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// Why Meta's request does not open: Meta's `421`, which makes the client
/// fetch the public key again and retry. One answer for every way it fails,
/// so the answer says nothing about the key or the padding.
const NOT_OPENED: &str =
    "the request does not decrypt with this number's key: was it encrypted for another public key?";

/// Opens Meta's request body with `private_pem`. A body without Meta's three
/// fields is a 400; one that does not decrypt a 421 (`Error::FlowKey`).
pub fn open(private_pem: &str, body: &[u8]) -> Result<Opened, Error> {
    let sent: EncryptedRequest = serde_json::from_slice(body).map_err(|e| {
        Error::invalid(
            "body",
            format!(
                "expected Meta's {{encrypted_flow_data, encrypted_aes_key, initial_vector}}: {e}"
            ),
        )
    })?;
    let not_opened = || Error::FlowKey(NOT_OPENED);
    let field = |value: &str| STANDARD.decode(value.trim()).map_err(|_| not_opened());
    let wrapped = field(&sent.encrypted_aes_key)?;
    let data = field(&sent.encrypted_flow_data)?;
    let iv: [u8; IV_BYTES] = field(&sent.initial_vector)?
        .try_into()
        .map_err(|_| not_opened())?;
    let private = PrivateKey::from_pkcs8_pem(private_pem)
        .map_err(|e| Error::internal("reading the stored Flows private key", e.to_string()))?;
    // A key that does not unwrap goes on as a random one, to fail where a
    // wrong body fails: no answer or timing tells the two apart (implicit
    // rejection, as the rsa crate's OAEP documentation advises).
    let unwrapped = private
        .decrypt(Oaep::<OaepSha256>::new(), &wrapped)
        .ok()
        .and_then(|k| <[u8; AES_KEY_BYTES]>::try_from(k).ok());
    let key = unwrapped.unwrap_or_else(random_key);
    let plain = cipher(&key)
        .decrypt(&nonce(&iv), data.as_slice())
        .map_err(|_| not_opened())?;
    let request = serde_json::from_slice(&plain).map_err(|_| not_opened())?;
    Ok(Opened { request, key, iv })
}

fn random_key() -> [u8; AES_KEY_BYTES] {
    let mut key = [0u8; AES_KEY_BYTES];
    key.copy_from_slice(&random_bytes(AES_KEY_BYTES));
    key
}

impl Opened {
    /// Whether this is Meta's health check, which wabridge answers itself.
    pub fn is_ping(&self) -> bool {
        self.request.get("action").and_then(Value::as_str) == Some("ping")
    }

    /// `answer` encrypted for Meta: the request's key, the IV with every bit
    /// flipped, base64 of the ciphertext with its tag.
    pub fn seal(&self, answer: &[u8]) -> Result<String, Error> {
        seal(&self.key, &self.iv, answer)
    }
}

fn seal(key: &[u8; AES_KEY_BYTES], iv: &[u8; IV_BYTES], answer: &[u8]) -> Result<String, Error> {
    let sealed = cipher(key)
        .encrypt(&nonce(&flipped(iv)), answer)
        .map_err(|_| Error::bug("AES-GCM refused to encrypt the Flows answer"))?;
    Ok(STANDARD.encode(sealed))
}

fn cipher(key: &[u8; AES_KEY_BYTES]) -> FlowCipher {
    FlowCipher::new(&(*key).into())
}

fn nonce(iv: &[u8; IV_BYTES]) -> Nonce<U16> {
    (*iv).into()
}

/// The IV of the answer: every bit of the request's IV flipped.
pub fn flipped(iv: &[u8; IV_BYTES]) -> [u8; IV_BYTES] {
    iv.map(|b| !b)
}

/// Checks `flow_token_signature` where the request has one (data API 4.0):
/// a JWT signed HS256 with the App Secret. Its signature must match, its
/// algorithm be HS256, and a `flow_token` claim, where there is one, be the
/// request's `flow_token`. A wrong one is refused as a wrong
/// `X-Hub-Signature-256` is (`432`).
pub fn check_flow_token_signature(request: &Value, app_secret: &str) -> Result<(), Error> {
    let Some(jwt) = request.get("flow_token_signature") else {
        return Ok(());
    };
    let refuse = |why| Err(Error::FlowSignature(why));
    let Some(jwt) = jwt.as_str() else {
        return refuse("flow_token_signature is not a JWT");
    };
    let mut parts = jwt.split('.');
    let (Some(head), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return refuse("flow_token_signature is not a JWT");
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok();
    let header: Option<Value> = decode(head).and_then(|b| serde_json::from_slice(&b).ok());
    if header
        .as_ref()
        .and_then(|h| h.get("alg"))
        .and_then(Value::as_str)
        != Some("HS256")
    {
        return refuse("flow_token_signature is not an HS256 JWT");
    }
    let Some(signature) = decode(signature) else {
        return refuse("flow_token_signature is not a JWT");
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| Error::FlowSignature("unusable app secret"))?;
    mac.update(head.as_bytes());
    mac.update(b".");
    mac.update(claims.as_bytes());
    if mac.verify_slice(&signature).is_err() {
        return refuse("flow_token_signature is not signed with the App Secret");
    }
    let claims: Option<Value> = decode(claims).and_then(|b| serde_json::from_slice(&b).ok());
    let signed_token = claims.as_ref().and_then(|c| c.get("flow_token"));
    match signed_token {
        Some(token) if Some(token) != request.get("flow_token") => {
            refuse("flow_token_signature was made for another flow_token")
        }
        _ => Ok(()),
    }
}

/// What the flow tool receives: the decrypted request plus `phoneNumberId`,
/// in the envelope every delivery has (CONTRACT §5).
pub fn tool_body(request: &Value, phone_number_id: &str, now_ms: u64) -> Value {
    let mut data = match request {
        Value::Object(fields) => fields.clone(),
        other => Map::from_iter([("request".to_string(), other.clone())]),
    };
    data.insert("phoneNumberId".into(), json!(phone_number_id));
    json!({"type": EVENT_TYPE, "timestamp": rfc3339_ms(now_ms), "data": data})
}

#[cfg(test)]
mod tests;
