use std::os::unix::fs::MetadataExt;

use redb::WriteTransaction;

use super::rotate::{pending_path, rotate_with};
use super::*;
use crate::domain::model::{Account, AccountStatus, FlowsEndpoint, Listener, Settings};
use crate::store::secrets::Resealed;
use crate::store::{rotate_key, Store};

pub const APP_SECRET: &str = "app-secret-5f0c9e";
pub const TOKEN: &str = "EAAGm0PX4ZCpsBAtoken";
pub const LISTENER_SECRET: &str = "whsec_c2lnbmluZy1zZWNyZXQtb2YtbHN0";
pub const FLOWS_SECRET: &str = "whsec_Zmxvd3Mtc2lnbmluZy1zZWNyZXQ";
pub const FLOWS_PRIVATE_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEflowsprivatekeyofthetest\n-----END PRIVATE KEY-----\n";

pub fn flows_endpoint() -> FlowsEndpoint {
    FlowsEndpoint {
        phone_number_id: "P1".into(),
        account_id: "acc_1".into(),
        waba_id: "W1".into(),
        url: "https://flow.example.com/data".into(),
        secret: FLOWS_SECRET.into(),
        private_key: FLOWS_PRIVATE_KEY.into(),
        public_key: "-----BEGIN PUBLIC KEY-----\n…".into(),
        key_uploaded: true,
        created_at: 1,
    }
}

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
        sandbox: None,
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

/// A store in a fresh dir holding every kind of secret.
async fn stocked() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wabridge.redb");
    let store = Store::open_beside(&path).unwrap();
    store.put_settings(settings()).await.unwrap();
    store.insert_account(account(), Vec::new()).await.unwrap();
    store.insert_listener(listener()).await.unwrap();
    store.put_flows_endpoint(flows_endpoint()).await.unwrap();
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
    let endpoint = store.flows_endpoint("P1").unwrap().unwrap();
    assert_eq!(endpoint.secret, FLOWS_SECRET);
    assert_eq!(endpoint.private_key, FLOWS_PRIVATE_KEY);
    store.close();
}

#[tokio::test]
async fn the_file_holds_no_secret_and_the_key_beside_it_opens_them() {
    let (dir, path) = stocked().await;
    let raw = fs::read(&path).unwrap();
    for secret in [
        APP_SECRET,
        TOKEN,
        LISTENER_SECRET,
        FLOWS_SECRET,
        "MIIEflowsprivatekey",
    ] {
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
            listeners: 1,
            flows_endpoints: 1,
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
