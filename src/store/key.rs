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

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, WriteTransaction};

use super::secrets::{self, Resealed, Sealer, KEY_CHECK};
use super::tables::SETTINGS;
use crate::domain::ids::random_bytes;
use crate::error::Error;
use crate::files;

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

/// What a rotation did, and what it left for the next start to finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub resealed: Resealed,
    /// Where the new key is now: in place, or still at `<key>.new`.
    pub key_at: PathBuf,
    /// Steps after the commit that failed: the rotation is done, and the next
    /// start (or the next `rotate-key`) finishes them. One sentence each.
    pub unfinished: Vec<String>,
}

/// Re-encrypts every secret of `db` under a new key in one transaction, then
/// puts the new key in place of the old one. The new key is written first, to
/// `<key>.new`, and its dir flushed; until the transaction commits the old key
/// stays the one that works, and a crash between the commit and the rename is
/// finished by the next start (`finish_rotation`). So at every moment one of
/// the two files opens the database, and `.new` is removed only when the
/// commit was never tried.
pub(super) fn rotate(db: &Database, old: &Sealer, key: &KeyLocation) -> Result<Rotated, Error> {
    rotate_with(db, old, key, |tx| Ok(tx.commit()?), put_in_place)
}

/// `rotate`, with the commit and the rename given, so that tests can make
/// them fail.
fn rotate_with(
    db: &Database,
    old: &Sealer,
    key: &KeyLocation,
    commit: impl FnOnce(WriteTransaction) -> Result<(), Error>,
    place: impl FnOnce(&Path, &Path) -> Result<(), Error>,
) -> Result<Rotated, Error> {
    if key.origin == KeyOrigin::Credential {
        return Err(Error::Startup(format!(
            "the secrets key comes from the systemd credential {}, which only systemd can replace: run the rotation with --secrets-key naming the credential's source file, then encrypt it again for systemd (docs/security.md)",
            key.path.display()
        )));
    }
    let pending = pending_path(&key.path);
    // A leftover did not open the database, or `unlock` would have used it.
    match fs::remove_file(&pending) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(write_error(&pending, e));
        }
        _ => {}
    }
    let fresh = SecretKey::generate();
    let file =
        files::write_new_private(&pending, fresh.bytes()).map_err(|e| write_error(&pending, e))?;
    let prepared = (|| -> Result<(WriteTransaction, Resealed), Error> {
        // `write_new_private` flushed `.new` and its dir entry: it is
        // findable after a crash that follows the commit.
        same_owner(&file, &key.path, &pending)?;
        let new = Sealer::new(&fresh);
        let tx = db.begin_write()?;
        let done = secrets::reseal(&tx, old, &new)?;
        // Freed pages still hold the secrets under the old key.
        super::rewrite::mark(&tx)?;
        Ok((tx, done))
    })();
    let (tx, resealed) = match prepared {
        Ok(ready) => ready,
        Err(e) => {
            // Nothing was committed: the old key is still the only one.
            let _ = fs::remove_file(&pending);
            return Err(Error::Startup(format!(
                "{e}. Nothing was changed: the old key {} still opens the database",
                key.path.display()
            )));
        }
    };
    if let Err(e) = commit(tx) {
        // The commit may or may not be on disk: both keys stay, and the next
        // start uses whichever opens the database.
        return Err(Error::Startup(format!(
            "the commit of the re-encrypted secrets failed ({e}), so whether they are now under the new key is not known: keep both {} and {}; the next start (or rotate-key again) uses the one that opens the database",
            key.path.display(),
            pending.display()
        )));
    }
    let mut unfinished = Vec::new();
    let mut key_at = key.path.clone();
    if let Err(e) = place(&pending, &key.path) {
        key_at = pending.clone();
        unfinished.push(format!(
            "rotation done, but the new key is still at {} ({e}); it will be put in place of {} at the next start, or move it there yourself. Do not delete it: it is the only key that opens the database now",
            pending.display(),
            key.path.display()
        ));
    }
    Ok(Rotated {
        resealed,
        key_at,
        unfinished,
    })
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

/// A rotation that committed but did not rename its key: the new key is
/// still at `<key>.new`. Puts it in place when it is the one that opens.
fn finish_rotation(path: &Path, check: &str) -> Result<Option<Sealer>, Error> {
    let pending = pending_path(path);
    let Some(found) = read_key(&pending)? else {
        return Ok(None);
    };
    let sealer = Sealer::new(&found);
    if !sealer.opens_key_check(check) {
        return Ok(None);
    }
    put_in_place(&pending, path)?;
    tracing::warn!(path = %path.display(), "finished a key rotation that was interrupted");
    Ok(Some(sealer))
}

fn put_in_place(pending: &Path, path: &Path) -> Result<(), Error> {
    fs::rename(pending, path).map_err(|e| write_error(path, e))?;
    files::sync_dir(files::parent_dir(path)).map_err(|e| write_error(path, e))
}

/// The new key belongs to whoever owned the old one: a rotation run as root
/// must leave a key the service's user can still read.
fn same_owner(file: &fs::File, old: &Path, pending: &Path) -> Result<(), Error> {
    let Ok(was) = fs::metadata(old) else {
        return Ok(());
    };
    let now = file.metadata().map_err(|e| write_error(pending, e))?;
    if (now.uid(), now.gid()) == (was.uid(), was.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(was.uid()), Some(was.gid()))
        .and_then(|()| file.sync_all())
        .map_err(|e| write_error(pending, e))
}

fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".new");
    PathBuf::from(name)
}

fn write_error(path: &Path, e: io::Error) -> Error {
    Error::Startup(format!(
        "cannot write the secrets key {}: {e}",
        path.display()
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::model::{Account, AccountStatus, Listener, Settings};
    use crate::store::{rotate_key, Store};

    pub const APP_SECRET: &str = "app-secret-5f0c9e";
    pub const TOKEN: &str = "EAAGm0PX4ZCpsBAtoken";
    pub const LISTENER_SECRET: &str = "whsec_c2lnbmluZy1zZWNyZXQtb2YtbHN0";

    pub fn account() -> Account {
        Account {
            id: "acc_1".into(),
            name: "Shop".into(),
            waba_ids: vec!["W1".into()],
            business_account_id: Some("W1".into()),
            access_token: TOKEN.into(),
            token_expires_at: None,
            meta_user_id: None,
            api_key_hash: "hash".into(),
            created_at: 1,
            status: AccountStatus::Ok,
            status_reason: None,
            token_checked_at: None,
        }
    }

    pub fn listener() -> Listener {
        Listener {
            id: "lst_1".into(),
            account_id: "acc_1".into(),
            waba_id: "W1".into(),
            event: None,
            events: vec!["whatsapp.message.received".into()],
            filters: Default::default(),
            format: Default::default(),
            url: "https://flow.example.com/h".into(),
            secret: LISTENER_SECRET.into(),
            created_at: 1,
            stopped_reason: None,
            paused: false,
        }
    }

    pub fn settings() -> Settings {
        Settings {
            client_id: "123".into(),
            client_secret: APP_SECRET.into(),
            ..Settings::default()
        }
    }

    pub fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    /// Every sealed value written in the raw file.
    fn sealed_values(raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(raw);
        text.split("wbs1:")
            .skip(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "+/=".contains(*c))
                    .collect()
            })
            .collect()
    }

    /// A store in a fresh dir holding the three kinds of secrets.
    async fn stocked() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wabridge.redb");
        let store = Store::open_beside(&path).unwrap();
        store.put_settings(settings()).await.unwrap();
        store.insert_account(account(), Vec::new()).await.unwrap();
        store.insert_listener(listener()).await.unwrap();
        store.close();
        (dir, path)
    }

    fn assert_secrets_open(path: &Path) {
        let store = Store::open_beside(path).unwrap();
        assert_eq!(store.settings().unwrap().client_secret, APP_SECRET);
        assert_eq!(store.account("acc_1").unwrap().unwrap().access_token, TOKEN);
        assert_eq!(
            store.listener("lst_1").unwrap().unwrap().secret,
            LISTENER_SECRET
        );
        store.close();
    }

    #[tokio::test]
    async fn the_file_holds_no_secret_and_the_key_beside_it_opens_them() {
        let (dir, path) = stocked().await;
        let raw = fs::read(&path).unwrap();
        for secret in [APP_SECRET, TOKEN, LISTENER_SECRET] {
            assert!(!contains(&raw, secret), "{secret} is in the file");
        }
        assert!(
            sealed_values(&raw).len() >= 4,
            "three secrets and the key check"
        );
        let key = dir.path().join(FILE_NAME);
        let mode = fs::metadata(&key).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert_eq!(fs::read(&key).unwrap().len(), 32);
        assert_secrets_open(&path);
    }

    #[tokio::test]
    async fn a_sealed_database_without_its_key_or_with_another_is_refused() {
        let (dir, path) = stocked().await;
        let key = dir.path().join(FILE_NAME);
        let kept = fs::read(&key).unwrap();
        fs::remove_file(&key).unwrap();
        let err = Store::open_beside(&path).err().unwrap().to_string();
        assert!(err.contains("missing"), "{err}");
        assert!(err.contains(&key.display().to_string()), "{err}");
        assert!(!key.exists(), "no new key is made for a sealed database");

        fs::write(&key, [0x5a; 32]).unwrap();
        let err = Store::open_beside(&path).err().unwrap().to_string();
        assert!(err.contains("is not the key"), "{err}");

        fs::write(&key, kept).unwrap();
        assert_secrets_open(&path);
    }

    #[tokio::test]
    async fn rotation_re_encrypts_every_secret_and_retires_the_old_key() {
        let (dir, path) = stocked().await;
        let key = KeyLocation::in_data_dir(dir.path());
        let old_key = fs::read(&key.path).unwrap();
        let old_sealed = sealed_values(&fs::read(&path).unwrap());

        let done = rotate_key(&path, &key).unwrap();
        assert!(done.unfinished.is_empty(), "{:?}", done.unfinished);
        assert_eq!(done.key_at, key.path);
        assert_eq!(
            done.resealed,
            Resealed {
                app_secret: true,
                accounts: 1,
                listeners: 1
            }
        );
        assert_ne!(fs::read(&key.path).unwrap(), old_key);
        assert!(!pending_path(&key.path).exists());
        let mode = fs::metadata(&key.path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        // Rewritten: no page keeps a value sealed under the retired key.
        let raw = fs::read(&path).unwrap();
        for sealed in &old_sealed {
            assert!(!contains(&raw, sealed), "{sealed} survived the rotation");
        }
        assert_secrets_open(&path);

        fs::write(&key.path, &old_key).unwrap();
        assert!(
            Store::open_beside(&path).is_err(),
            "the old key opens nothing"
        );
    }

    #[tokio::test]
    async fn a_rotation_cut_off_before_its_rename_is_finished_at_the_next_start() {
        let (dir, path) = stocked().await;
        let key = KeyLocation::in_data_dir(dir.path());
        let old_key = fs::read(&key.path).unwrap();
        rotate_key(&path, &key).unwrap();
        let new_key = fs::read(&key.path).unwrap();
        // As a crash after the commit leaves it: the old key in place, the new beside it.
        fs::write(pending_path(&key.path), &new_key).unwrap();
        fs::write(&key.path, &old_key).unwrap();

        assert_secrets_open(&path);
        assert_eq!(fs::read(&key.path).unwrap(), new_key);
        assert!(!pending_path(&key.path).exists());
    }

    /// Replaces the sealed secret of `lst_1` with one no key opens.
    pub fn damage_listener_secret(path: &Path) {
        let db = Database::create(path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            use redb::ReadableTable;
            let mut table = tx.open_table(crate::store::tables::LISTENERS).unwrap();
            let raw = table.get("lst_1").unwrap().unwrap().value().to_vec();
            let mut record: serde_json::Value = serde_json::from_slice(&raw).unwrap();
            record["secret"] = "wbs1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
            let raw = serde_json::to_vec(&record).unwrap();
            table.insert("lst_1", raw.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }

    /// The rotation's steps with the commit and the rename as given.
    fn rotate_by_hand(
        path: &Path,
        key: &KeyLocation,
        commit: impl FnOnce(WriteTransaction) -> Result<(), Error>,
        place: impl FnOnce(&Path, &Path) -> Result<(), Error>,
    ) -> Result<Rotated, Error> {
        let (db, old) = crate::store::open_unlocked(path, key).unwrap();
        rotate_with(&db, &old, key, commit, place)
    }

    #[tokio::test]
    async fn a_rename_that_fails_after_the_commit_is_a_warning_and_the_next_start_finishes_it() {
        let (dir, path) = stocked().await;
        let key = KeyLocation::in_data_dir(dir.path());
        let old_key = fs::read(&key.path).unwrap();
        let done = rotate_by_hand(
            &path,
            &key,
            |tx| Ok(tx.commit()?),
            |_, _| Err(Error::Startup("rename refused".into())),
        )
        .unwrap();
        assert_eq!(done.key_at, pending_path(&key.path));
        assert_eq!(done.unfinished.len(), 1);
        assert!(
            done.unfinished[0].contains("rotation done"),
            "{:?}",
            done.unfinished
        );
        assert!(
            done.unfinished[0].contains("next start"),
            "{:?}",
            done.unfinished
        );
        assert_eq!(fs::read(&key.path).unwrap(), old_key, "not renamed");

        assert_secrets_open(&path);
        assert_ne!(fs::read(&key.path).unwrap(), old_key);
        assert!(!pending_path(&key.path).exists());
    }

    #[tokio::test]
    async fn a_commit_that_errors_but_took_effect_keeps_the_new_key() {
        let (dir, path) = stocked().await;
        let key = KeyLocation::in_data_dir(dir.path());
        let err = rotate_by_hand(
            &path,
            &key,
            |tx| {
                tx.commit()?;
                Err(Error::storage("commit", "fsync failed"))
            },
            |_, _| panic!("no rename after a failed commit"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not known"), "{err}");
        assert!(pending_path(&key.path).exists(), "the only key that opens");
        assert_secrets_open(&path);
        assert!(!pending_path(&key.path).exists(), "put in place at start");
    }

    #[tokio::test]
    async fn a_commit_that_errors_and_did_not_happen_leaves_the_old_key_working() {
        let (dir, path) = stocked().await;
        let key = KeyLocation::in_data_dir(dir.path());
        let old_key = fs::read(&key.path).unwrap();
        let err = rotate_by_hand(
            &path,
            &key,
            |tx| {
                tx.abort()?;
                Err(Error::storage("commit", "fsync failed"))
            },
            |_, _| panic!("no rename after a failed commit"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("keep both"), "{err}");
        assert!(pending_path(&key.path).exists());
        assert_secrets_open(&path);
        assert_eq!(fs::read(&key.path).unwrap(), old_key);
        // The leftover opens nothing, and a rotation after it works.
        rotate_key(&path, &key).unwrap();
        assert!(!pending_path(&key.path).exists());
        assert_secrets_open(&path);
    }

    #[tokio::test]
    async fn a_rotation_that_fails_before_the_commit_removes_its_new_key() {
        let (dir, path) = stocked().await;
        let key = KeyLocation::in_data_dir(dir.path());
        let old_key = fs::read(&key.path).unwrap();
        damage_listener_secret(&path);
        let err = rotate_key(&path, &key).unwrap_err().to_string();
        assert!(err.contains("Nothing was changed"), "{err}");
        assert!(!pending_path(&key.path).exists());
        assert_eq!(fs::read(&key.path).unwrap(), old_key);
    }

    #[tokio::test]
    async fn rotation_is_refused_while_a_server_holds_the_data_dir_lock() {
        let (dir, path) = stocked().await;
        let key = KeyLocation::in_data_dir(dir.path());
        let old_key = fs::read(&key.path).unwrap();
        let server = fs::File::create(dir.path().join("wabridge.lock")).unwrap();
        server.try_lock().unwrap();
        let err = rotate_key(&path, &key).unwrap_err().to_string();
        assert!(err.contains("in use by a running wabridge"), "{err}");
        assert_eq!(fs::read(&key.path).unwrap(), old_key);
        drop(server);
        rotate_key(&path, &key).unwrap();
    }

    #[tokio::test]
    async fn a_rotation_run_as_root_leaves_the_files_to_their_owner() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root to give files away");
            return;
        }
        let (dir, path) = stocked().await;
        let key = KeyLocation::in_data_dir(dir.path());
        let owner = (4242, 4343);
        for file in [&path, &key.path] {
            std::os::unix::fs::chown(file, Some(owner.0), Some(owner.1)).unwrap();
        }
        rotate_key(&path, &key).unwrap();
        for file in [&path, &key.path, &dir.path().join("wabridge.lock")] {
            let meta = fs::metadata(file).unwrap();
            assert_eq!((meta.uid(), meta.gid()), owner, "{}", file.display());
        }
    }

    #[test]
    fn rotation_needs_a_database_and_no_server_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wabridge.redb");
        let key = KeyLocation::in_data_dir(dir.path());
        let err = rotate_key(&path, &key).unwrap_err().to_string();
        assert!(err.contains("no database"), "{err}");
        let store = Store::open_beside(&path).unwrap();
        let err = rotate_key(&path, &key).unwrap_err().to_string();
        assert!(err.contains("stop it first"), "{err}");
        store.close();
    }

    #[test]
    fn the_setting_wins_then_a_credential_then_the_data_dir() {
        let creds = tempfile::tempdir().unwrap();
        let data = Path::new("/var/lib/wabridge");
        let set = Path::new("/etc/wabridge/secrets.key");
        assert_eq!(
            locate_in(data, Some(set), Some(creds.path())),
            KeyLocation {
                path: set.into(),
                origin: KeyOrigin::Setting
            }
        );
        // A credentials directory without our credential is someone else's.
        assert_eq!(
            locate_in(data, None, Some(creds.path())),
            KeyLocation::in_data_dir(data)
        );
        fs::write(creds.path().join(CREDENTIAL), [7u8; 32]).unwrap();
        assert_eq!(
            locate_in(data, None, Some(creds.path())),
            KeyLocation {
                path: creds.path().join(CREDENTIAL),
                origin: KeyOrigin::Credential
            }
        );
        assert_eq!(
            locate_in(data, None, None).path,
            Path::new("/var/lib/wabridge/secrets.key")
        );
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(read_key(&path).unwrap().is_none());
        fs::write(&path, b"0123456789abcdef0123456789abcdef\n").unwrap();
        let err = read_key(&path).unwrap_err().to_string();
        assert!(err.contains("33 bytes, not 32"), "{err}");
        fs::write(&path, [9u8; 32]).unwrap();
        assert_eq!(read_key(&path).unwrap().unwrap().bytes(), &[9u8; 32]);
    }

    #[test]
    fn debug_shows_no_key_byte() {
        assert_eq!(
            format!("{:?}", SecretKey::from_bytes([0xab; 32])),
            "SecretKey(…)"
        );
    }
}
