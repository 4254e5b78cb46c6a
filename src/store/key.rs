//! The secrets key: 32 random bytes in a file of their own, never in the
//! database, so that the database or a backup alone opens none of the secrets
//! (see `secrets`).
//!
//! Where it is read from, the first that applies: `--secrets-key FILE`
//! (`WABRIDGE_SECRETS_KEY`); the systemd credential `wabridge-secrets-key`
//! when `$CREDENTIALS_DIRECTORY` holds one (`LoadCredential=`,
//! `LoadCredentialEncrypted=`); `<data-dir>/secrets.key`. A database without
//! sealed secrets (a fresh install, or one written before schema 7) gets a new
//! key there; one with sealed secrets and no key, or another key, is refused:
//! a new key could never open what is stored.

mod rotate;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase};

use super::secrets::{Sealer, KEY_CHECK};
use super::tables::SETTINGS;
use crate::domain::ids::random_bytes;
use crate::error::Error;
use crate::files;
use rotate::finish_rotation;

pub(super) use rotate::rotate;
pub use rotate::Rotated;

/// The key file's name in the data dir.
pub const FILE_NAME: &str = "secrets.key";
/// The name of the systemd credential that holds the key.
pub const CREDENTIAL: &str = "wabridge-secrets-key";
const KEY_BYTES: usize = 32;

/// The 256-bit key of ChaCha20-Poly1305. Its `Debug` shows no byte of it.
pub struct SecretKey([u8; KEY_BYTES]);

impl SecretKey {
    fn generate() -> SecretKey {
        let mut key = [0u8; KEY_BYTES];
        key.copy_from_slice(&random_bytes(KEY_BYTES));
        SecretKey(key)
    }

    #[cfg(test)]
    pub(super) fn from_bytes(bytes: [u8; KEY_BYTES]) -> SecretKey {
        SecretKey(bytes)
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Who said where the key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `--secrets-key`, `WABRIDGE_SECRETS_KEY` or the config file.
    Setting,
    /// A systemd credential: a read-only file that systemd owns.
    Credential,
    /// The default, beside the database.
    DataDir,
}

impl KeyOrigin {
    pub fn describe(self) -> &'static str {
        match self {
            KeyOrigin::Setting => "--secrets-key",
            KeyOrigin::Credential => "systemd credential",
            KeyOrigin::DataDir => "default, beside the database",
        }
    }
}

/// Where the secrets key is, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLocation {
    pub path: PathBuf,
    pub origin: KeyOrigin,
}

impl KeyLocation {
    /// The default: `<data-dir>/secrets.key`.
    pub fn in_data_dir(data_dir: &Path) -> KeyLocation {
        KeyLocation {
            path: data_dir.join(FILE_NAME),
            origin: KeyOrigin::DataDir,
        }
    }
}

/// Where `serve` finds the key, given the data dir and `--secrets-key`.
pub fn locate_key(data_dir: &Path, setting: Option<&Path>) -> KeyLocation {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    locate_in(data_dir, setting, credentials.as_deref())
}

fn locate_in(data_dir: &Path, setting: Option<&Path>, credentials: Option<&Path>) -> KeyLocation {
    if let Some(path) = setting {
        return KeyLocation {
            path: path.to_path_buf(),
            origin: KeyOrigin::Setting,
        };
    }
    if let Some(path) = credentials
        .map(|dir| dir.join(CREDENTIAL))
        .filter(|p| p.exists())
    {
        return KeyLocation {
            path,
            origin: KeyOrigin::Credential,
        };
    }
    KeyLocation::in_data_dir(data_dir)
}

/// The key in `path`; `None` when there is no such file.
pub fn read_key(path: &Path) -> Result<Option<SecretKey>, Error> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Startup(format!(
                "cannot read the secrets key {}: {e}",
                path.display()
            )))
        }
    };
    let key: [u8; KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
        Error::Startup(format!(
            "the secrets key {} holds {} bytes, not {KEY_BYTES}: it is not a key wabridge wrote (restore the right file)",
            path.display(),
            bytes.len()
        ))
    })?;
    Ok(Some(SecretKey(key)))
}

/// Whether `key` opens what a database stored as its key check (see `Summary`).
pub fn key_opens(key: &SecretKey, key_check: &str) -> bool {
    Sealer::new(key).opens_key_check(key_check)
}

/// The sealer for `db`: with the key its secrets were sealed with, or with a
/// new key when it has none sealed yet.
pub(super) fn unlock(db: &Database, db_path: &Path, key: &KeyLocation) -> Result<Sealer, Error> {
    let check = stored_key_check(db)?;
    if key.origin != KeyOrigin::Credential {
        files::private_file(&key.path)?;
    }
    let Some(check) = check else {
        let found = match read_key(&key.path)? {
            Some(found) => found,
            None => create(&key.path)?,
        };
        return Ok(Sealer::new(&found));
    };
    if let Some(found) = read_key(&key.path)? {
        let sealer = Sealer::new(&found);
        if sealer.opens_key_check(&check) {
            return Ok(sealer);
        }
    }
    if let Some(sealer) = finish_rotation(&key.path, &check)? {
        return Ok(sealer);
    }
    let (db_path, key_path) = (db_path.display(), key.path.display());
    Err(Error::Startup(if key.path.exists() {
        format!(
            "the secrets key {key_path} is not the key the secrets in {db_path} were encrypted with: put the right key file there, or point --secrets-key (WABRIDGE_SECRETS_KEY) at it (docs/security.md)"
        )
    } else {
        format!(
            "the database {db_path} holds secrets encrypted with a key that is missing: put the key file back at {key_path} (from where you keep it with your backups), or point --secrets-key (WABRIDGE_SECRETS_KEY) at it. A new key could not open them, so none is made (docs/security.md)"
        )
    }))
}

/// The key check stored in `db`, if any: `None` means no secret is sealed.
fn stored_key_check(db: &Database) -> Result<Option<String>, Error> {
    let tx = db.begin_read()?;
    let table = match tx.open_table(SETTINGS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let check = table.get(KEY_CHECK)?;
    Ok(check.map(|v| String::from_utf8_lossy(v.value()).into_owned()))
}

/// A fresh key at `path`, 0600, on disk before any secret is sealed with it.
fn create(path: &Path) -> Result<SecretKey, Error> {
    let key = SecretKey::generate();
    files::write_new_private(path, key.bytes()).map_err(|e| write_error(path, e))?;
    files::sync_dir(files::parent_dir(path)).map_err(|e| write_error(path, e))?;
    // Debug only: a start that fails later must say one thing on stderr; the
    // ready line names the key.
    tracing::debug!(path = %path.display(), "generated the secrets key");
    Ok(key)
}

fn write_error(path: &Path, e: io::Error) -> Error {
    Error::Startup(format!(
        "cannot write the secrets key {}: {e}",
        path.display()
    ))
}

#[cfg(test)]
pub(super) mod tests;
