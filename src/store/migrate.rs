//! Schema versions: a new file gets every table; an older one is migrated one
//! version at a time, each step in its own transaction; a newer one is refused.

use redb::{
    Database, ReadableDatabase, ReadableMultimapTable, ReadableTable, ReadableTableMetadata,
};

use super::secrets::{self, Sealer};
use super::tables::*;
use crate::domain::disk::human_bytes;
use crate::domain::time::now_ms;
use crate::error::Error;

/// Where the database file lives, for the upgrade that copies a table.
pub struct Disk<'a> {
    pub dir: &'a std::path::Path,
    /// What the filesystem has left for us.
    pub free: &'a dyn Fn() -> std::io::Result<u64>,
}

/// Brings `db` to the current schema; `sealer` encrypts the secrets that a
/// database older than version 7 holds in plaintext.
pub fn run(db: &Database, sealer: &Sealer, disk: &Disk) -> Result<(), Error> {
    let tx = db.begin_write()?;
    let found = {
        let meta = tx.open_table(META)?;
        let v = meta.get(SCHEMA_VERSION_KEY)?.map(|v| v.value());
        v
    };
    match found {
        None => {
            create_tables(&tx)?;
            secrets::seal_plaintext(&tx, sealer)?;
            tx.open_table(META)?.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)?;
            tx.commit()?;
            Ok(())
        }
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        Some(v) if v > SCHEMA_VERSION => Err(Error::Startup(format!(
            "the database has schema version {v}, written by a newer wabridge (this one knows {SCHEMA_VERSION}); run the newer version or restore a backup"
        ))),
        Some(v) => {
            tx.abort()?;
            // Before any step commits: a refusal must leave the file as an
            // older wabridge can still open it.
            if v <= 7 {
                room_to_reencode(disk, history_rows(db)?)?;
            }
            (v..SCHEMA_VERSION).try_for_each(|from| step(db, from, sealer))
        }
    }
}

/// Moves the database from version `from` to `from + 1` in one transaction.
fn step(db: &Database, from: u64, sealer: &Sealer) -> Result<(), Error> {
    let tx = db.begin_write()?;
    match from {
        // 2: connect links and logins in progress (customers connecting themselves).
        1 => {
            tx.open_table(CONNECT_LINKS)?;
            tx.open_table(PENDING_LOGINS)?;
        }
        // 3: the status indexes (by recipient, awaiting delivery), built from the
        // history already stored.
        2 => super::messages::backfill(&tx)?,
        // 4: the window, the phone-number directory and inbound media start empty:
        // until a user writes again their window is "unknown", never wrongly "open".
        3 => create_v4_tables(&tx)?,
        // 5: the phone ↔ BSUID links gain a "last seen", counted from now, so
        // the janitor can expire them like the rest.
        4 => timestamp_user_links(&tx, now_ms())?,
        // 6: listeners are routed by the patterns they subscribe to; the old
        // "messages"/"statuses" routes become the one type each stood for.
        5 => {
            create_v6_tables(&tx)?;
            route_by_pattern(&tx)?;
        }
        // 7: the app secret, account tokens and listener secrets, stored in
        // plaintext until now, are encrypted, and the file is rewritten without
        // the pages that held them; backups taken before keep them in plaintext
        // (docs/security.md).
        6 => {
            let done = secrets::seal_plaintext(&tx, sealer)?;
            // Freed pages still hold them in plaintext.
            super::rewrite::mark(&tx)?;
            tracing::info!(
                app_secret = done.app_secret,
                accounts = done.accounts,
                listeners = done.listeners,
                "stored secrets encrypted"
            );
        }
        // 8: the status history, the largest table, re-encoded from JSON into
        // a compact binary layout (`status_row`), about 5 µs a row: minutes
        // for a large history, before READY, so systemd is asked to wait.
        // The freed pages are reused by later writes; the file does not shrink.
        7 => {
            let history = tx.open_table(STATUSES)?.stats()?;
            super::rewrite::extend_systemd_timeout(
                history.stored_bytes() + history.metadata_bytes() + history.fragmented_bytes(),
            );
            let rows = super::status_row::reencode_json_rows(&tx)?;
            tracing::info!(rows, "status history re-encoded");
        }
        // 9: the traffic of the backoffice's charts, empty until the first minute is written.
        8 => {
            tx.open_table(TRAFFIC)?;
        }
        // 10: the Flows data endpoints start empty. (Traffic again, for a
        // database a development build of the Flows work had put at 9.)
        9 => {
            tx.open_table(FLOWS_ENDPOINTS)?;
            tx.open_table(TRAFFIC)?;
        }
        // 11: a status row may carry a group participant's BSUID (a new
        // optional field of `status_row`): nothing to rewrite, but a build
        // that cannot read such a row must refuse the database, not a row.
        10 => {}
        // 12: what wabridge learns per WABA (MM Lite onboarding, coexistence
        // numbers) starts empty: until Meta's next webhook or listing, unknown.
        11 => {
            tx.open_table(WABA_FACTS)?;
        }
        // 13: templates' histories start empty: the events stored before are
        // not replayed into them (their Meta bodies are kept only for some).
        12 => {
            tx.open_table(TEMPLATE_HISTORY)?;
        }
        v => {
            return Err(Error::Startup(format!(
                "no migration from schema version {v}"
            )))
        }
    }
    tx.open_table(META)?.insert(SCHEMA_VERSION_KEY, from + 1)?;
    tx.commit()?;
    tracing::info!(from, to = from + 1, "database migrated");
    Ok(())
}

/// The re-encoded history takes about 160 bytes a row in a fresh table
/// (redb grows the file sparsely: only written pages take room), and the old
/// rows are freed only at the commit. Refusing before any step leaves the
/// file as it was and says what to free, rather than a commit failing on a
/// full disk. Free space that cannot be read is no reason to refuse.
/// Rows in the status history; a file from before the history has none.
fn history_rows(db: &Database) -> Result<u64, Error> {
    match db.begin_read()?.open_table(STATUSES) {
        Ok(history) => Ok(history.len()?),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

fn room_to_reencode(disk: &Disk, rows: u64) -> Result<(), Error> {
    const PER_ROW: u64 = 200;
    const MARGIN: u64 = 64 * 1024 * 1024;
    let needed = rows.saturating_mul(PER_ROW).saturating_add(MARGIN);
    match (disk.free)() {
        Ok(free) if free >= needed => Ok(()),
        Ok(free) => Err(Error::Startup(format!(
            "upgrading the database re-encodes its {rows} status-history rows and needs {} free in {}, which has {}: free at least {} more (or move the data dir to a larger disk) and start again; nothing was changed",
            human_bytes(needed),
            disk.dir.display(),
            human_bytes(free),
            human_bytes(needed - free),
        ))),
        Err(e) => {
            tracing::warn!(dir = %disk.dir.display(), error = %e, needed, "cannot read the free space before re-encoding the status history; going ahead");
            Ok(())
        }
    }
}

fn create_v4_tables(tx: &redb::WriteTransaction) -> Result<(), Error> {
    tx.open_table(WINDOWS)?;
    tx.open_table(PHONE_NUMBERS)?;
    tx.open_table(MEDIA)?;
    Ok(())
}

fn create_v6_tables(tx: &redb::WriteTransaction) -> Result<(), Error> {
    tx.open_table(URGENT_OUTBOX)?;
    tx.open_table(META_BODIES)?;
    tx.open_table(BUSINESS_WABAS)?;
    Ok(())
}

fn route_by_pattern(tx: &redb::WriteTransaction) -> Result<(), Error> {
    let mut listeners: Vec<crate::domain::model::Listener> = Vec::new();
    {
        let t = tx.open_table(LISTENERS)?;
        for row in t.iter()? {
            listeners.push(super::codec::dec(row?.1.value(), "listener")?);
        }
    }
    tx.open_table(LISTENER_ROUTES)?.retain(|_, _| false)?;
    for mut listener in listeners {
        listener.events = listener.subscribed();
        tx.open_table(LISTENERS)?.insert(
            listener.id.as_str(),
            super::codec::enc(&listener, "listener")?.as_slice(),
        )?;
        super::listeners::add_routes(tx, &listener)?;
    }
    Ok(())
}

fn timestamp_user_links(tx: &redb::WriteTransaction, now_ms: u64) -> Result<(), Error> {
    {
        let mut to = tx.open_table(USER_LINKS_SEEN)?;
        // Opening creates it (empty) for a database that came through step 3
        // just now, which no longer makes the old table.
        let from = tx.open_multimap_table(USER_LINKS_V4)?;
        for row in from.iter()? {
            let (user, others) = row?;
            for other in others {
                to.insert((user.value(), other?.value()), now_ms)?;
            }
        }
    }
    tx.delete_multimap_table(USER_LINKS_V4)?;
    Ok(())
}

fn create_tables(tx: &redb::WriteTransaction) -> Result<(), Error> {
    tx.open_table(SETTINGS)?;
    tx.open_table(ACCOUNTS)?;
    tx.open_table(API_KEYS)?;
    tx.open_table(LISTENERS)?;
    tx.open_table(LISTENER_ROUTES)?;
    tx.open_table(EVENTS)?;
    tx.open_table(DEDUPE)?;
    tx.open_table(DELIVERIES)?;
    tx.open_table(OUTBOX)?;
    tx.open_table(LISTENER_DELIVERIES)?;
    tx.open_table(STATUSES)?;
    tx.open_table(QUARANTINE)?;
    tx.open_table(CONNECT_LINKS)?;
    tx.open_table(PENDING_LOGINS)?;
    tx.open_table(STATUS_RECIPIENTS)?;
    tx.open_table(AWAITING_DELIVERY)?;
    create_v4_tables(tx)?;
    tx.open_table(USER_LINKS_SEEN)?;
    create_v6_tables(tx)?;
    tx.open_table(TRAFFIC)?;
    tx.open_table(FLOWS_ENDPOINTS)?;
    tx.open_table(WABA_FACTS)?;
    tx.open_table(TEMPLATE_HISTORY)?;
    Ok(())
}

#[cfg(test)]
mod tests;
