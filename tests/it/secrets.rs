//! Secrets at rest and file permissions (issue 14, items 8 and 9): the
//! database file and its backups hold no secret in plaintext, the key beside
//! them is needed to start, to restore and to rotate, and every file
//! wabridge keeps is its user's alone.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cli::run;
use crate::support::fake_meta::{FakeMeta, APP_ID, APP_SECRET};
use crate::support::gateway::{binary, client, Gateway, Options, ADMIN_TOKEN};
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::standard_webhooks::assert_verified;

const TOKEN: &str = "EAAG-at-rest-token-3f9a1c7e5b";
const WABA: &str = "111";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A gateway with the app secret set, one account and one listener; the
/// listener's secret and API key come back with it.
struct Stocked {
    meta: FakeMeta,
    gw: Gateway,
    receiver: Receiver,
    api_key: String,
    listener_secret: String,
}

fn stocked(options: Options) -> Stocked {
    let meta = FakeMeta::start();
    meta.add_phone_number(WABA, "PN1", "+1 555 0100", true);
    let gw = Gateway::start_with(&meta, options);
    gw.configure();
    // Not `add_account`: its fake Meta user id would carry the token in plaintext.
    meta.add_user_token(TOKEN, "meta-user-1", &[WABA], None);
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&serde_json::json!({"accessToken": TOKEN})),
    );
    assert_eq!(status, 201, "{body}");
    let api_key = body["apiKey"].as_str().unwrap().to_string();
    let receiver = Receiver::start();
    let (_, listener_secret) = gw.add_listener(&api_key, WABA, "messages", &receiver.url("/h"));
    Stocked {
        meta,
        gw,
        receiver,
        api_key,
        listener_secret,
    }
}

impl Stocked {
    /// The three secrets, and the listener's raw key as it would be in base64.
    fn secrets(&self) -> Vec<String> {
        let raw = self
            .listener_secret
            .trim_start_matches("whsec_")
            .to_string();
        vec![
            APP_SECRET.to_string(),
            TOKEN.to_string(),
            self.listener_secret.clone(),
            raw,
        ]
    }

    /// Panics if any secret is in `bytes`; `what` names them in the message.
    fn assert_none_in(&self, bytes: &[u8], what: &str) {
        // The scan reads real content: the App ID and the listener URL are there.
        assert!(contains(bytes, APP_ID), "{what} does not hold the settings");
        assert!(contains(bytes, "/h"), "{what} does not hold the listener");
        for secret in self.secrets() {
            assert!(!contains(bytes, &secret), "{what} holds {secret}");
        }
    }

    /// The gateway verifies Meta's HMAC with the app secret, signs deliveries
    /// with the listener's secret and calls Meta with the account's token.
    fn assert_secrets_work(&self, message_id: &str) {
        let before = self.receiver.delivered().len();
        let body = payloads::single_text(WABA, "PN1", message_id, "after restart");
        let (status, answer) = self.gw.post_webhook(&body);
        assert_eq!(status, 200, "{answer}");
        let got = self.receiver.wait_for(before + 1, Duration::from_secs(10));
        assert_verified(&got[before..], &self.listener_secret);

        let (status, numbers) = self.gw.request(
            "GET",
            &format!("/api/v1/business-accounts/{WABA}/phone-numbers"),
            Some(&self.api_key),
            None,
        );
        assert_eq!(status, 200, "{numbers}");
        let calls = self
            .meta
            .requests_to("GET", &format!("/{WABA}/phone_numbers"));
        let last = calls.last().expect("Meta was called");
        assert_eq!(
            last.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

/// `POST /api/v1/admin/backup`: the copy and the key file the server names.
fn api_backup(gw: &Gateway) -> (Vec<u8>, Option<String>) {
    let mut resp = client()
        .post(gw.url("/api/v1/admin/backup"))
        .header("authorization", &format!("Bearer {}", gw.admin_token))
        .send_empty()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let key = resp
        .headers()
        .get("wabridge-secrets-key")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    (bytes, key)
}

#[test]
fn neither_the_database_file_nor_a_backup_holds_a_secret_and_a_restart_still_uses_them() {
    let mut s = stocked(Options::default());
    s.assert_secrets_work("wamid.REST1");
    let dir = s.gw.data_dir();
    let key_file = dir.join("secrets.key");

    let (copy, named) = api_backup(&s.gw);
    assert_eq!(named, Some(key_file.display().to_string()));
    s.assert_none_in(&copy, "the API's backup");

    // The CLI's backup says what restoring it needs.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("b.redb");
    let data = dir.display().to_string();
    let listen = s.gw.base.rsplit("//").next().unwrap().to_string();
    let args = [
        "backup",
        "--data-dir",
        &data,
        "--listen",
        &listen,
        "--no-tls",
        "--out",
        file.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = run(&args, &[("WABRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)], out.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "restoring it needs the secrets key {}",
            key_file.display()
        )),
        "{stdout}"
    );
    s.assert_none_in(&fs::read(&file).unwrap(), "the CLI's backup");

    assert!(s.gw.terminate().success());
    s.assert_none_in(
        &fs::read(dir.join("wabridge.redb")).unwrap(),
        "the database",
    );
    assert_eq!(fs::read(&key_file).unwrap().len(), 32);
    for name in ["wabridge.redb", "wabridge.lock", "secrets.key"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&dir), 0o700);

    s.gw.restart();
    s.assert_secrets_work("wamid.REST2");

    // The backup restores, with the key beside it (docs/install.md).
    s.gw.offline(|dir| {
        fs::copy(&file, dir.join("wabridge.redb")).unwrap();
    });
    s.assert_secrets_work("wamid.REST3");
}

#[test]
fn without_its_key_the_gateway_refuses_to_start_and_never_makes_a_new_one() {
    let mut s = stocked(Options::default());
    assert!(s.gw.terminate().success());
    let dir = s.gw.data_dir();
    let key_file = dir.join("secrets.key");
    let kept = fs::read(&key_file).unwrap();
    fs::remove_file(&key_file).unwrap();

    let data = dir.display().to_string();
    let serve = [
        "serve",
        "--data-dir",
        &data,
        "--listen",
        "127.0.0.1:0",
        "--no-tls",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(&serve, &[], tmp.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(stderr.contains(&key_file.display().to_string()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!key_file.exists(), "a new key was made");

    // config check sees it too.
    let (code, stdout, _) = run(&["config", "check", "--data-dir", &data], &[], tmp.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "the secrets key {} is missing",
            key_file.display()
        )),
        "{stdout}"
    );

    // Another key does not open them.
    fs::write(&key_file, [0x42u8; 32]).unwrap();
    let (code, _, stderr) = run(&serve, &[], tmp.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not the key"), "{stderr}");

    // Elsewhere, named by WABRIDGE_SECRETS_KEY: the right key starts it again.
    let elsewhere = tmp.path().join("kept.key");
    fs::write(&elsewhere, &kept).unwrap();
    let (code, stdout, _) = run(
        &["config", "check", "--data-dir", &data],
        &[("WABRIDGE_SECRETS_KEY", elsewhere.to_str().unwrap())],
        tmp.path(),
    );
    assert!(
        stdout.contains("opens the database's secrets"),
        "{code} {stdout}"
    );
    s.gw.restart_with_env(&[("WABRIDGE_SECRETS_KEY", elsewhere.to_str().unwrap())]);
    assert_eq!(mode(&elsewhere), 0o600, "tightened at start");
    s.assert_secrets_work("wamid.KEY1");
}

#[test]
fn a_systemd_credential_holds_the_key() {
    let mut s = stocked(Options::default());
    assert!(s.gw.terminate().success());
    let dir = s.gw.data_dir();
    let creds = tempfile::tempdir().unwrap();
    fs::rename(
        dir.join("secrets.key"),
        creds.path().join("wabridge-secrets-key"),
    )
    .unwrap();
    // As systemd leaves it: read-only for the service.
    fs::set_permissions(
        creds.path().join("wabridge-secrets-key"),
        fs::Permissions::from_mode(0o440),
    )
    .unwrap();
    let creds_dir = creds.path().display().to_string();
    s.gw.restart_with_env(&[("CREDENTIALS_DIRECTORY", &creds_dir)]);
    s.assert_secrets_work("wamid.CRED1");
    assert!(
        !dir.join("secrets.key").exists(),
        "no key beside the database"
    );
    let (_, named) = api_backup(&s.gw);
    assert_eq!(
        named,
        Some(
            creds
                .path()
                .join("wabridge-secrets-key")
                .display()
                .to_string()
        )
    );
}

#[test]
fn rotating_the_key_keeps_every_secret_and_retires_the_old_key() {
    let mut s = stocked(Options::default());
    let dir = s.gw.data_dir();
    let data = dir.display().to_string();
    let key_file = dir.join("secrets.key");
    let old = fs::read(&key_file).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rotate = ["secrets", "rotate-key", "--data-dir", &data];

    let (code, _, stderr) = run(&rotate, &[], tmp.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("stop it first"), "{stderr}");
    assert_eq!(
        fs::read(&key_file).unwrap(),
        old,
        "a refused rotation changes nothing"
    );

    assert!(s.gw.terminate().success());
    let (code, stdout, stderr) = run(&rotate, &[], tmp.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("re-encrypted 1 app secret, 1 account token(s) and 1 listener secret(s)"),
        "{stdout}"
    );
    let new = fs::read(&key_file).unwrap();
    assert_eq!(new.len(), 32);
    assert_ne!(new, old);
    assert_eq!(mode(&key_file), 0o600);
    assert!(!dir.join("secrets.key.new").exists());
    s.assert_none_in(
        &fs::read(dir.join("wabridge.redb")).unwrap(),
        "the rotated database",
    );

    s.gw.restart();
    s.assert_secrets_work("wamid.ROT1");

    // The retired key opens nothing any more.
    s.gw.kill9();
    fs::write(&key_file, &old).unwrap();
    let serve = [
        "serve",
        "--data-dir",
        &data,
        "--listen",
        "127.0.0.1:0",
        "--no-tls",
    ];
    let (code, _, stderr) = run(&serve, &[], tmp.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not the key"), "{stderr}");
}

#[test]
fn an_upgrade_from_schema_6_encrypts_the_plaintext_secrets_and_keeps_them_working() {
    let mut s = stocked(Options::default());
    let secret = s.listener_secret.clone();
    s.gw.offline(|dir| {
        downgrade_to_6(&dir.join("wabridge.redb"), &secret);
        fs::remove_file(dir.join("secrets.key")).unwrap();
        let raw = fs::read(dir.join("wabridge.redb")).unwrap();
        for plain in [APP_SECRET, TOKEN, secret.as_str()] {
            assert!(contains(&raw, plain), "the schema-6 file holds {plain}");
        }
    });
    s.assert_secrets_work("wamid.UP1");
    assert!(s.gw.terminate().success());
    let dir = s.gw.data_dir();
    assert_eq!(fs::read(dir.join("secrets.key")).unwrap().len(), 32);
    s.assert_none_in(
        &fs::read(dir.join("wabridge.redb")).unwrap(),
        "the upgraded database",
    );
}

/// Writes the secrets back in plaintext, as schema 6 kept them.
fn downgrade_to_6(path: &Path, listener_secret: &str) {
    use redb::{ReadableTable, TableDefinition};
    const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
    const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
    const LISTENERS: TableDefinition<&str, &[u8]> = TableDefinition::new("listeners");
    let db = redb::Database::create(path).unwrap();
    let tx = db.begin_write().unwrap();
    let rewrite = |def: TableDefinition<&str, &[u8]>, field: &str, value: &str| {
        let mut table = tx.open_table(def).unwrap();
        let rows: Vec<(String, Vec<u8>)> = table
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.value().to_string(), v.value().to_vec())
            })
            .collect();
        for (k, v) in rows {
            let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&v) else {
                continue;
            };
            if json.get(field).is_some() {
                json[field] = value.into();
                table
                    .insert(k.as_str(), serde_json::to_vec(&json).unwrap().as_slice())
                    .unwrap();
            }
        }
    };
    rewrite(SETTINGS, "clientSecret", APP_SECRET);
    rewrite(ACCOUNTS, "accessToken", TOKEN);
    rewrite(LISTENERS, "secret", listener_secret);
    tx.open_table(SETTINGS)
        .unwrap()
        .remove("secrets_key_check")
        .unwrap();
    tx.open_table(META)
        .unwrap()
        .insert("schema_version", 6)
        .unwrap();
    tx.commit().unwrap();
}

#[test]
fn files_an_older_version_left_open_are_made_private_at_start() {
    let meta = FakeMeta::start();
    let mut gw = Gateway::start_with(
        &meta,
        Options {
            tls: true,
            ..Options::default()
        },
    );
    gw.offline(|dir| {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        }
    });
    let dir = gw.data_dir();
    assert_eq!(mode(&dir), 0o700);
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        names.push(entry.file_name().to_string_lossy().into_owned());
        assert_eq!(mode(&entry.path()), 0o600, "{:?}", entry.file_name());
    }
    names.sort();
    assert_eq!(
        names,
        [
            "secrets.key",
            "tls-cert.pem",
            "tls-key.pem",
            "wabridge.lock",
            "wabridge.redb"
        ]
    );
}

/// Whether this process runs as root (owner of its own /proc entry).
fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn a_data_dir_open_to_others_that_wabridge_may_not_change_is_refused() {
    // Only root can hand the gateway a dir that belongs to someone else.
    if !is_root() {
        eprintln!("skipped: needs root to run the gateway as another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("data");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(binary())
        .args(["serve", "--no-tls", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env_remove("WABRIDGE_ADMIN_TOKEN")
        .output()
        .expect("setpriv (util-linux) runs the gateway as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("data dir {} has mode 777", dir.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("chmod 700 {}", dir.display())),
        "{stderr}"
    );
    assert_eq!(mode(&dir), 0o777);
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written there"
    );
}
