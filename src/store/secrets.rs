//! Secrets at rest: the Meta App secret (`clientSecret`), every account's Meta
//! access token, every listener's signing secret and every Flows endpoint's
//! signing secret and RSA private key are sealed with
//! ChaCha20-Poly1305 under a key kept outside the database (see `key`), so the
//! database file or a backup alone reveals none of them.
//!
//! A sealed secret is text in the record's JSON, in place of the secret:
//! `wbs1:` + base64(96-bit random nonce ‖ ciphertext ‖ tag). The record's
//! identity (`account:<id>:accessToken`, …) is the associated data, so a
//! sealed value copied into another record does not open.
//!
//! Records are opened here, when they leave the store for domain/ and http/,
//! which only ever see plain strings. Code inside the store that reads a record
//! only to route, pause or stop it keeps the sealed text as it is.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::codec::{dec, enc};
use super::key::SecretKey;
use super::settings::APP;
use super::tables::{ACCOUNTS, FLOWS_ENDPOINTS, LISTENERS, SETTINGS};
use crate::domain::ids::random_bytes;
use crate::domain::model::{Account, FlowsEndpoint, Listener, Settings};
use crate::error::Error;

const PREFIX: &str = "wbs1:";
const NONCE_BYTES: usize = 12;
/// A value sealed under the key, kept beside the secrets: a start with another
/// key fails on it at once, also when no secret is stored yet.
pub(super) const KEY_CHECK: &str = "secrets_key_check";
const KEY_CHECK_PLAIN: &str = "wabridge secrets key";
const KEY_CHECK_AD: &str = "key-check";
const SETTINGS_AD: &str = "settings:clientSecret";

fn account_ad(id: &str) -> String {
    format!("account:{id}:accessToken")
}

fn listener_ad(id: &str) -> String {
    format!("listener:{id}:secret")
}

fn flows_secret_ad(phone_number_id: &str) -> String {
    format!("flows:{phone_number_id}:secret")
}

fn flows_key_ad(phone_number_id: &str) -> String {
    format!("flows:{phone_number_id}:privateKey")
}

/// Seals and opens secrets under one key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    pub fn new(key: &SecretKey) -> Sealer {
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key.bytes())),
        }
    }

    fn seal(&self, plain: &str, ad: &str) -> Result<String, Error> {
        let nonce = random_bytes(NONCE_BYTES);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: ad.as_bytes(),
                },
            )
            .map_err(|_| Error::bug(format!("cannot encrypt the {ad}")))?;
        let mut out = nonce;
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    fn open(&self, sealed: &str, ad: &str) -> Result<String, Error> {
        let unreadable = |why: &str| {
            Error::storage(
                format!("the stored {ad}"),
                format!("{why}; was the database restored without its secrets key (see docs/security.md)?"),
            )
        };
        let raw = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| unreadable("is not encrypted as it should be"))?;
        let raw = STANDARD.decode(raw).map_err(|_| unreadable("is damaged"))?;
        if raw.len() < NONCE_BYTES {
            return Err(unreadable("is damaged"));
        }
        let (nonce, body) = raw.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: ad.as_bytes(),
                },
            )
            .map_err(|_| unreadable("does not open with this secrets key"))?;
        String::from_utf8(plain).map_err(|_| unreadable("is damaged"))
    }

    /// The key check to store beside secrets sealed by this sealer.
    pub(super) fn key_check(&self) -> Result<String, Error> {
        self.seal(KEY_CHECK_PLAIN, KEY_CHECK_AD)
    }

    /// Whether this sealer's key is the one `check` was made with.
    pub(super) fn opens_key_check(&self, check: &str) -> bool {
        self.open(check, KEY_CHECK_AD)
            .is_ok_and(|p| p == KEY_CHECK_PLAIN)
    }

    pub(super) fn seal_settings(&self, settings: &Settings) -> Result<Vec<u8>, Error> {
        let mut stored = settings.clone();
        stored.client_secret = self.seal_settings_secret(&settings.client_secret)?;
        enc(&stored, "settings")
    }

    pub(super) fn open_settings(&self, bytes: &[u8]) -> Result<Settings, Error> {
        let mut settings: Settings = dec(bytes, "settings")?;
        if !settings.client_secret.is_empty() {
            settings.client_secret = self.open(&settings.client_secret, SETTINGS_AD)?;
        }
        Ok(settings)
    }

    /// No secret set stays empty: `clientSecretSet` and `config check` read that.
    fn seal_settings_secret(&self, plain: &str) -> Result<String, Error> {
        if plain.is_empty() {
            return Ok(String::new());
        }
        self.seal(plain, SETTINGS_AD)
    }

    pub(super) fn seal_account(&self, account: &Account) -> Result<Vec<u8>, Error> {
        let mut stored = account.clone();
        stored.access_token = self.seal(&account.access_token, &account_ad(&account.id))?;
        enc(&stored, "account")
    }

    pub(super) fn open_account(&self, bytes: &[u8]) -> Result<Account, Error> {
        let mut account: Account = dec(bytes, "account")?;
        account.access_token = self.open(&account.access_token, &account_ad(&account.id))?;
        Ok(account)
    }

    pub(super) fn seal_listener(&self, listener: &Listener) -> Result<Vec<u8>, Error> {
        let mut stored = listener.clone();
        stored.secret = self.seal(&listener.secret, &listener_ad(&listener.id))?;
        enc(&stored, "listener")
    }

    pub(super) fn open_listener(&self, bytes: &[u8]) -> Result<Listener, Error> {
        self.open_sealed_listener(dec(bytes, "listener")?)
    }

    /// A listener as stored, already decoded, with its secret opened.
    pub(super) fn open_sealed_listener(&self, mut listener: Listener) -> Result<Listener, Error> {
        listener.secret = self.open_listener_secret(&listener)?;
        Ok(listener)
    }

    pub(super) fn seal_flows_endpoint(&self, endpoint: &FlowsEndpoint) -> Result<Vec<u8>, Error> {
        let mut stored = endpoint.clone();
        let id = &endpoint.phone_number_id;
        stored.secret = self.seal(&endpoint.secret, &flows_secret_ad(id))?;
        stored.private_key = self.seal(&endpoint.private_key, &flows_key_ad(id))?;
        enc(&stored, "flows endpoint")
    }

    pub(super) fn open_flows_endpoint(&self, bytes: &[u8]) -> Result<FlowsEndpoint, Error> {
        let mut endpoint: FlowsEndpoint = dec(bytes, "flows endpoint")?;
        let id = endpoint.phone_number_id.clone();
        endpoint.secret = self.open(&endpoint.secret, &flows_secret_ad(&id))?;
        endpoint.private_key = self.open(&endpoint.private_key, &flows_key_ad(&id))?;
        Ok(endpoint)
    }

    /// The signing secret of a listener as stored.
    pub(super) fn open_listener_secret(&self, listener: &Listener) -> Result<String, Error> {
        self.open(&listener.secret, &listener_ad(&listener.id))
    }
}

/// How many secrets `rewrite_all` went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resealed {
    pub app_secret: bool,
    pub accounts: u64,
    pub listeners: u64,
    pub flows_endpoints: u64,
}

/// Puts every stored secret through `change(associated data, stored text)` in
/// `tx`, and stores `key_check`: encrypting plaintext (the migration to schema
/// 7) or re-encrypting under a new key (rotation), all in the caller's one
/// transaction.
pub(super) fn rewrite_all(
    tx: &WriteTransaction,
    key_check: &str,
    change: impl Fn(&str, &str) -> Result<String, Error>,
) -> Result<Resealed, Error> {
    let mut done = Resealed::default();
    {
        let mut table = tx.open_table(SETTINGS)?;
        let stored: Option<Settings> = match table.get(APP)? {
            Some(v) => Some(dec(v.value(), "settings")?),
            None => None,
        };
        if let Some(mut settings) = stored {
            if !settings.client_secret.is_empty() {
                settings.client_secret = change(SETTINGS_AD, &settings.client_secret)?;
                done.app_secret = true;
            }
            table.insert(APP, enc(&settings, "settings")?.as_slice())?;
        }
        table.insert(KEY_CHECK, key_check.as_bytes())?;
    }
    {
        let mut table = tx.open_table(ACCOUNTS)?;
        let mut accounts: Vec<Account> = Vec::new();
        for row in table.iter()? {
            accounts.push(dec(row?.1.value(), "account")?);
        }
        for mut account in accounts {
            account.access_token = change(&account_ad(&account.id), &account.access_token)?;
            table.insert(account.id.as_str(), enc(&account, "account")?.as_slice())?;
            done.accounts += 1;
        }
    }
    {
        let mut table = tx.open_table(LISTENERS)?;
        let mut listeners: Vec<Listener> = Vec::new();
        for row in table.iter()? {
            listeners.push(dec(row?.1.value(), "listener")?);
        }
        for mut listener in listeners {
            listener.secret = change(&listener_ad(&listener.id), &listener.secret)?;
            table.insert(listener.id.as_str(), enc(&listener, "listener")?.as_slice())?;
            done.listeners += 1;
        }
    }
    // A database older than version 10 has no such table yet; the migration
    // that makes it comes after the one that seals (version 7).
    if tx
        .list_tables()?
        .any(|t| t.name() == FLOWS_ENDPOINTS.name())
    {
        let mut table = tx.open_table(FLOWS_ENDPOINTS)?;
        let mut endpoints: Vec<FlowsEndpoint> = Vec::new();
        for row in table.iter()? {
            endpoints.push(dec(row?.1.value(), "flows endpoint")?);
        }
        for mut endpoint in endpoints {
            let id = endpoint.phone_number_id.clone();
            endpoint.secret = change(&flows_secret_ad(&id), &endpoint.secret)?;
            endpoint.private_key = change(&flows_key_ad(&id), &endpoint.private_key)?;
            table.insert(id.as_str(), enc(&endpoint, "flows endpoint")?.as_slice())?;
            done.flows_endpoints += 1;
        }
    }
    Ok(done)
}

/// Encrypts the plaintext secrets of a database written before schema 7.
pub(super) fn seal_plaintext(tx: &WriteTransaction, sealer: &Sealer) -> Result<Resealed, Error> {
    rewrite_all(tx, &sealer.key_check()?, |ad, plain| sealer.seal(plain, ad))
}

/// Re-encrypts every secret from the key of `from` to the key of `to`.
pub(super) fn reseal(tx: &WriteTransaction, from: &Sealer, to: &Sealer) -> Result<Resealed, Error> {
    rewrite_all(tx, &to.key_check()?, |ad, sealed| {
        to.seal(&from.open(sealed, ad)?, ad)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&SecretKey::from_bytes([byte; 32]))
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_its_record() {
        let s = sealer(1);
        let sealed = s.seal("whsec_abc", "listener:l1:secret").unwrap();
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(s.open(&sealed, "listener:l1:secret").unwrap(), "whsec_abc");
        assert!(
            s.open(&sealed, "listener:l2:secret").is_err(),
            "moved to another record"
        );
        assert!(sealer(2).open(&sealed, "listener:l1:secret").is_err());
        assert!(
            s.open("whsec_abc", "listener:l1:secret").is_err(),
            "plaintext is refused"
        );
        assert!(s.open("wbs1:!!", "listener:l1:secret").is_err());
        assert!(s.open("wbs1:AAAA", "listener:l1:secret").is_err());
    }

    #[test]
    fn each_sealing_takes_a_fresh_nonce() {
        let s = sealer(1);
        assert_ne!(s.seal("x", "a").unwrap(), s.seal("x", "a").unwrap());
    }

    #[test]
    fn the_key_check_tells_the_key() {
        let check = sealer(1).key_check().unwrap();
        assert!(sealer(1).opens_key_check(&check));
        assert!(!sealer(2).opens_key_check(&check));
    }

    #[test]
    fn an_unset_app_secret_stays_unset() {
        let s = sealer(1);
        let bytes = s.seal_settings(&Settings::default()).unwrap();
        let stored: Settings = dec(&bytes, "settings").unwrap();
        assert_eq!(stored.client_secret, "");
        assert_eq!(s.open_settings(&bytes).unwrap().client_secret, "");
        let bytes = s
            .seal_settings(&Settings {
                client_secret: "app-secret".into(),
                ..Settings::default()
            })
            .unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("app-secret"));
        assert_eq!(s.open_settings(&bytes).unwrap().client_secret, "app-secret");
    }
}
