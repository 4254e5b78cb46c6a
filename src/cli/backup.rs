//! `wabridge backup --out FILE`: a consistent copy of the database.
//!
//! With the server running, it holds the database file, so the copy is asked
//! of it (`POST /api/v1/admin/backup`, admin token from `WABRIDGE_ADMIN_TOKEN`):
//! the server copies inside one read transaction and streams the file back.
//! With the server stopped, the file is opened read-only here and copied the
//! same way, while the data dir's lock keeps a server from starting meanwhile.
//! Either way the copy is checked (it opens, it has a schema) and then renamed
//! into place, so FILE is always a whole backup.
//!
//! Restore: stop the service, put the copy in place of `<data-dir>/wabridge.redb`
//! (owned by the service's user, mode 0600), start it (docs/install.md). The
//! secrets in the copy are encrypted, so the restore also needs the secrets key
//! they were encrypted with: the last line printed names its file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config::ServeArgs;
use crate::files;
use crate::http::SECRETS_KEY_HEADER;
use crate::store::{self, Summary};

use super::client;

#[derive(clap::Args, Debug, Clone)]
pub struct BackupArgs {
    /// Where to write the copy (a redb file, mode 0600); an existing file is
    /// replaced only once the new copy is complete.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    #[command(flatten)]
    pub serve: ServeArgs,

    /// Ask the server at this base URL instead of the configured listen address.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// How long the server may take to send the copy.
    #[arg(long, default_value = "10m", value_parser = super::client::parse_timeout)]
    pub timeout: Duration,

    /// Accept any TLS certificate, also off loopback.
    #[arg(long)]
    pub insecure: bool,
}

pub fn run(args: &BackupArgs) -> ExitCode {
    match backup(args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wabridge: backup failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn backup(args: &BackupArgs) -> Result<String, String> {
    let partial = partial_path(&args.out);
    let _ = fs::remove_file(&partial);
    let db_path = args.serve.data_dir.join("wabridge.redb");
    let result = (|| {
        let (source, key_file) = match offline(args, &db_path, &partial)? {
            Some(source) => (source, None),
            None => online(args, &partial)?,
        };
        let summary = store::inspect(&partial)
            .map_err(|e| format!("the copy does not open: {e}"))?
            .ok_or("the copy is in use by another process")?;
        if summary.schema_version.is_none() {
            return Err("the copy has no schema version: not a wabridge database".to_string());
        }
        fs::rename(&partial, &args.out)
            .map_err(|e| format!("cannot move the copy to {}: {e}", args.out.display()))?;
        sync_dir(&args.out);
        let bytes = fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
        // The server's word where it gave it: it may read the key from a
        // systemd credential that this shell does not see.
        let key_file = key_file.unwrap_or_else(|| {
            store::locate_key(&args.serve.data_dir, args.serve.secrets_key.as_deref())
                .path
                .display()
                .to_string()
        });
        Ok(format!(
            "{}\n{}",
            describe(&args.out, bytes, &summary, &source),
            key_note(&summary, &key_file)
        ))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// What a restore of this copy needs besides the file.
fn key_note(summary: &Summary, key_file: &str) -> String {
    if summary.key_check.is_none() {
        return "the secrets in this copy are NOT encrypted (a database older than schema 7): keep it as private as the database".into();
    }
    format!(
        "restoring it needs the secrets key {key_file}: its secrets (app secret, account tokens, listener secrets) are encrypted with it. Keep a copy of that file apart from the backups (e.g. `base64 {key_file}` into a password manager); a backup without its key cannot be used"
    )
}

/// Copies the file directly when no server holds it. `None`: a server runs.
fn offline(args: &BackupArgs, db_path: &Path, partial: &Path) -> Result<Option<String>, String> {
    if args.url.is_some() {
        return Ok(None);
    }
    let lock_path = args.serve.data_dir.join("wabridge.lock");
    // A server holds this lock for its whole life; holding it here keeps one
    // from starting on the file while it is copied.
    let _lock = match File::open(&lock_path) {
        Ok(f) => match f.try_lock() {
            Ok(()) => Some(f),
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()))
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // e.g. the data dir belongs to the service's user: ask the server.
        Err(_) => return Ok(None),
    };
    if !db_path.exists() {
        // Not here, or not readable by this user: the server may still be asked.
        return Ok(None);
    }
    match store::backup_file(db_path, partial) {
        Ok(Some(_)) => Ok(Some(format!("the stopped database {}", db_path.display()))),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Asks the running server for a copy and writes it to `partial`. Returns
/// where the copy came from and the key file the server named.
fn online(args: &BackupArgs, partial: &Path) -> Result<(String, Option<String>), String> {
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| client::local_base(&args.serve));
    let url = format!("{}/api/v1/admin/backup", base.trim_end_matches('/'));
    let token = client::admin_token().ok_or_else(|| {
        format!(
            "{} is held by a running server or not readable here, so the copy must come from the server: set WABRIDGE_ADMIN_TOKEN to the admin token (it would be asked at {url}; --data-dir names the data dir)",
            args.serve.data_dir.join("wabridge.redb").display()
        )
    })?;
    let agent = client::agent(&url, args.timeout, args.insecure);
    let mut resp = agent
        .post(&url)
        .header("authorization", &format!("Bearer {token}"))
        .send_empty()
        .map_err(|e| format!("{url}: {}", client::describe(&e)))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        return Err(format!("{url} answered HTTP {status}: {text}"));
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let expected: Option<u64> = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    let got = io::copy(&mut reader, &mut file)
        .and_then(|n| file.flush().map(|_| n))
        .and_then(|n| file.sync_all().map(|_| n))
        .map_err(|e| format!("cannot receive the copy into {}: {e}", partial.display()))?;
    if let Some(expected) = expected.filter(|e| *e != got) {
        return Err(format!(
            "the copy was cut short: {got} of {expected} bytes arrived"
        ));
    }
    let key_file = resp
        .headers()
        .get(SECRETS_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((format!("the running server at {base}"), key_file))
}

fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wabridge-backup.redb".into());
    out.with_file_name(format!(".{name}.partial"))
}

/// Best effort: the copy is already complete; this only makes its name durable.
fn sync_dir(file: &Path) {
    let _ = files::sync_dir(files::parent_dir(file));
}

fn describe(out: &Path, bytes: u64, s: &Summary, source: &str) -> String {
    format!(
        "backup written to {}: {bytes} bytes, schema {}, {} events, {} deliveries ({} queued), {} accounts, {} listeners; taken from {source}",
        out.display(),
        s.schema_version.unwrap_or(0),
        s.rows_of("events"),
        s.rows_of("deliveries"),
        s.rows_of("outbox"),
        s.rows_of("accounts"),
        s.rows_of("listeners"),
    )
}
