//! Consistent copies of the database, and a read-only look at a file that no
//! server holds.
//!
//! A copy is everything ONE read transaction sees, written into a fresh redb
//! file in one durable transaction: every event acknowledged to Meta before the
//! copy began is in it, and nothing half-written is. The running server makes
//! copies this way (`POST /api/v1/admin/backup`); with the server stopped,
//! `wabridge backup` opens the file read-only and does the same.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redb::{
    Database, Key, MultimapTableHandle, ReadOnlyDatabase, ReadTransaction, ReadableDatabase,
    ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, Value, WriteTransaction,
};

use super::codec::dec;
use super::tables::*;
use super::Store;
use crate::domain::model::Settings;
use crate::error::Error;

/// A small cache: a copy reads each page once.
const COPY_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// What a database holds, in a few numbers.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub schema_version: Option<u64>,
    /// As stored: `client_secret` is sealed (only whether it is empty tells anything).
    pub settings: Settings,
    pub admin_token_set: bool,
    /// What the secrets key must open (see `key_opens`); `None` before schema 7.
    pub key_check: Option<String>,
    /// (table name, rows), every table.
    pub rows: Vec<(String, u64)>,
}

impl Summary {
    pub fn rows_of(&self, table: &str) -> u64 {
        self.rows
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }
}

impl Store {
    /// Writes a consistent copy of the whole database to `dest`, a path that
    /// must not exist yet (created with mode 0600: the copy holds secrets).
    pub fn snapshot_to(&self, dest: &Path) -> Result<Summary, Error> {
        let tx = self.db.begin_read()?;
        copy_into(&tx, dest)
    }
}

/// Copies the database file at `src` to `dest` without a server. `Ok(None)`
/// when a running server holds `src`: ask it instead.
pub fn backup_file(src: &Path, dest: &Path) -> Result<Option<Summary>, Error> {
    let Some(db) = open_read_only(src)? else {
        return Ok(None);
    };
    let tx = db.begin_read()?;
    copy_into(&tx, dest).map(Some)
}

/// Reads what the database file at `path` holds. `Ok(None)` when a running
/// server holds it.
pub fn inspect(path: &Path) -> Result<Option<Summary>, Error> {
    let Some(db) = open_read_only(path)? else {
        return Ok(None);
    };
    let tx = db.begin_read()?;
    summarize(&tx).map(Some)
}

fn open_read_only(path: &Path) -> Result<Option<ReadOnlyDatabase>, Error> {
    match Database::builder()
        .set_cache_size(COPY_CACHE_BYTES)
        .open_read_only(path)
    {
        Ok(db) => Ok(Some(db)),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Ok(None),
        Err(e @ redb::DatabaseError::RepairAborted) => Err(Error::storage(
            format!(
                "{} was not closed cleanly; start wabridge once on it to repair it",
                path.display()
            ),
            e,
        )),
        Err(e) => Err(Error::storage(format!("cannot open {}", path.display()), e)),
    }
}

fn summarize(tx: &ReadTransaction) -> Result<Summary, Error> {
    let mut s = Summary::default();
    {
        let meta = tx.open_table(META)?;
        s.schema_version = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
    }
    {
        let settings = tx.open_table(SETTINGS)?;
        if let Some(v) = settings.get("app")? {
            s.settings = dec(v.value(), "settings")?;
        }
        s.admin_token_set = settings.get("admin_token_hash")?.is_some();
        s.key_check = settings
            .get(super::secrets::KEY_CHECK)?
            .map(|v| String::from_utf8_lossy(v.value()).into_owned());
    }
    for handle in tx.list_tables()? {
        let name = handle.name().to_string();
        let n = tx.open_untyped_table(handle)?.len()?;
        s.rows.push((name, n));
    }
    for handle in tx.list_multimap_tables()? {
        let name = handle.name().to_string();
        let n = tx.open_untyped_multimap_table(handle)?.len()?;
        s.rows.push((name, n));
    }
    Ok(s)
}

pub(super) fn copy_into(src: &ReadTransaction, dest: &Path) -> Result<Summary, Error> {
    // create_new: never overwrite a file here; 0600: the copy holds secrets.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| Error::storage(format!("cannot create {}", dest.display()), e))?;
    let db = Database::builder()
        .set_cache_size(COPY_CACHE_BYTES)
        .create(dest)
        .map_err(|e| Error::storage(format!("cannot create {}", dest.display()), e))?;
    let tx = db.begin_write()?;
    let mut copied = BTreeSet::new();
    copy_table(src, &tx, META, &mut copied)?;
    copy_table(src, &tx, SETTINGS, &mut copied)?;
    copy_table(src, &tx, ACCOUNTS, &mut copied)?;
    copy_table(src, &tx, API_KEYS, &mut copied)?;
    copy_table(src, &tx, LISTENERS, &mut copied)?;
    copy_table(src, &tx, LISTENER_ROUTES, &mut copied)?;
    copy_table(src, &tx, EVENTS, &mut copied)?;
    copy_table(src, &tx, DEDUPE, &mut copied)?;
    copy_table(src, &tx, DELIVERIES, &mut copied)?;
    copy_table(src, &tx, OUTBOX, &mut copied)?;
    copy_table(src, &tx, LISTENER_DELIVERIES, &mut copied)?;
    copy_table(src, &tx, STATUSES, &mut copied)?;
    copy_table(src, &tx, QUARANTINE, &mut copied)?;
    copy_table(src, &tx, CONNECT_LINKS, &mut copied)?;
    copy_table(src, &tx, PENDING_LOGINS, &mut copied)?;
    copy_table(src, &tx, STATUS_RECIPIENTS, &mut copied)?;
    copy_table(src, &tx, AWAITING_DELIVERY, &mut copied)?;
    copy_table(src, &tx, WINDOWS, &mut copied)?;
    copy_table(src, &tx, USER_LINKS_SEEN, &mut copied)?;
    copy_table(src, &tx, PHONE_NUMBERS, &mut copied)?;
    copy_table(src, &tx, MEDIA, &mut copied)?;
    copy_table(src, &tx, URGENT_OUTBOX, &mut copied)?;
    copy_table(src, &tx, META_BODIES, &mut copied)?;
    copy_table(src, &tx, BUSINESS_WABAS, &mut copied)?;
    copy_table(src, &tx, TRAFFIC, &mut copied)?;
    copy_table(src, &tx, FLOWS_ENDPOINTS, &mut copied)?;
    copy_table(src, &tx, WABA_FACTS, &mut copied)?;
    copy_table(src, &tx, TEMPLATE_HISTORY, &mut copied)?;
    // A table added to tables.rs but not above would be silently left out: refuse.
    let mut missing: Vec<String> = src
        .list_tables()?
        .map(|h| h.name().to_string())
        .filter(|name| !copied.contains(name))
        .collect();
    missing.extend(
        src.list_multimap_tables()?
            .map(|h| h.name().to_string())
            .filter(|name| !copied.contains(name)),
    );
    if !missing.is_empty() {
        drop(tx);
        drop(db);
        let _ = std::fs::remove_file(dest);
        return Err(Error::bug(format!(
            "the backup does not know the table(s) {}: add them to store/backup.rs",
            missing.join(", ")
        )));
    }
    tx.commit()?;
    drop(db);
    summarize(src)
}

fn copy_table<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
    copied: &mut BTreeSet<String>,
) -> Result<(), Error> {
    let from = match src.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut to = dst.open_table(def)?;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
    }
    copied.insert(def.name().to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{
        ConnectFlow, ConnectLink, InboundEvent, InboundSender, PendingLogin,
    };

    /// A user's message with a picture: it opens a 24-hour window, links the
    /// user's phone and BSUID and remembers the media and the phone number.
    fn event(n: u32) -> InboundEvent {
        InboundEvent {
            event_type: crate::domain::events::MESSAGE_RECEIVED.into(),
            waba_id: "111".into(),
            phone_number_id: "PN1".into(),
            dedupe_key: format!("m:wamid.{n}"),
            body: format!("{{\"n\":{n}}}").into_bytes(),
            status: None,
            sender: Some(InboundSender {
                ids: vec![format!("42077712{n:04}"), format!("CZ.{n}")],
                at_ms: 1_000 + u64::from(n),
            }),
            media_id: Some(format!("{}", 9_000 + n)),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_snapshot_holds_every_committed_row_of_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("wabridge.redb")).unwrap();
        store
            .put_settings(Settings {
                client_secret: "s3cret".into(),
                ..Settings::default()
            })
            .await
            .unwrap();
        store
            .ingest((0..50).map(event).collect(), 1_000)
            .await
            .unwrap();
        store
            .insert_connect_link(
                "link-hash".into(),
                ConnectLink {
                    id: "lnk_1".into(),
                    created_at: 1,
                    expires_at: u64::MAX,
                    used_at: None,
                    account_id: None,
                    coexistence: false,
                },
            )
            .await
            .unwrap();
        store
            .insert_pending_login(
                "state-hash".into(),
                PendingLogin {
                    flow: ConnectFlow::OAuth,
                    link_hash: Some("link-hash".into()),
                    expires_at: u64::MAX,
                    coexistence: false,
                },
            )
            .await
            .unwrap();
        store
            .set_number_facts("111".into(), vec!["PN1".into()], Vec::new())
            .await
            .unwrap();
        let copy = dir.path().join("copy.redb");
        let summary = store.snapshot_to(&copy).unwrap();
        assert_eq!(summary.rows_of("events"), 50);
        for table in [
            "windows",
            "user_links_seen",
            "media",
            "phone_numbers",
            "connect_links",
            "pending_logins",
            "waba_facts",
        ] {
            assert!(summary.rows_of(table) > 0, "{table} has rows to copy");
        }
        // The copy holds as many rows as the original, table by table.
        let copied = inspect(&copy).unwrap().expect("nobody holds the copy");
        let mut original = summary.rows.clone();
        let mut restored_rows = copied.rows.clone();
        original.sort();
        restored_rows.sort();
        assert_eq!(restored_rows, original);
        assert!(store.snapshot_to(&copy).is_err(), "never overwrites");
        store.close();

        let restored = Store::open_beside(&copy).unwrap();
        assert_eq!(restored.settings().unwrap().client_secret, "s3cret");
        assert_eq!(restored.last_inbound("PN1", "CZ.7").unwrap(), Some(1_007));
        assert!(restored.connect_link("link-hash").unwrap().is_some());
        let facts = restored.every_waba_facts().unwrap();
        assert_eq!(facts.len(), 1);
        assert_eq!(facts[0].coexistence_numbers, ["PN1"]);
        let again = restored
            .ingest((0..51).map(event).collect(), 2_000)
            .await
            .unwrap();
        assert_eq!((again.duplicates, again.accepted), (50, 1));
        restored.close();
        let mode = std::fs::metadata(&copy).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn a_file_held_by_a_server_is_reported_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wabridge.redb");
        let store = Store::open_beside(&path).unwrap();
        assert!(inspect(&path).unwrap().is_none());
        assert!(backup_file(&path, &dir.path().join("x.redb"))
            .unwrap()
            .is_none());
        store.close();
    }
}
