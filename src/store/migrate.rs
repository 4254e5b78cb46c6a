//! Schema versions: a new file gets every table; an older one is migrated one
//! version at a time, each step in its own transaction; a newer one is refused.

use redb::{Database, ReadableTable};

use super::tables::*;
use crate::error::Error;

pub fn run(db: &Database) -> Result<(), Error> {
    let tx = db.begin_write()?;
    let found = {
        let meta = tx.open_table(META)?;
        let v = meta.get("schema_version")?.map(|v| v.value());
        v
    };
    match found {
        None => {
            create_tables(&tx)?;
            tx.open_table(META)?.insert("schema_version", SCHEMA_VERSION)?;
            tx.commit()?;
            Ok(())
        }
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        Some(v) if v > SCHEMA_VERSION => Err(Error::Startup(format!(
            "the database has schema version {v}, written by a newer wabridge (this one knows {SCHEMA_VERSION}); run the newer version or restore a backup"
        ))),
        Some(v) => {
            tx.abort()?;
            (v..SCHEMA_VERSION).try_for_each(|from| step(db, from))
        }
    }
}

/// Moves the database from version `from` to `from + 1` in one transaction.
fn step(db: &Database, from: u64) -> Result<(), Error> {
    let tx = db.begin_write()?;
    match from {
        // 2: connect links and logins in progress (customers connecting themselves).
        1 => {
            tx.open_table(CONNECT_LINKS)?;
            tx.open_table(PENDING_LOGINS)?;
        }
        v => {
            return Err(Error::Startup(format!(
                "no migration from schema version {v}"
            )))
        }
    }
    tx.open_table(META)?.insert("schema_version", from + 1)?;
    tx.commit()?;
    tracing::info!(from, to = from + 1, "database migrated");
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    #[test]
    fn a_version_1_database_gets_the_connect_tables() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 1)
            .unwrap();
        tx.open_table(ACCOUNTS).unwrap();
        tx.commit().unwrap();

        run(&db).unwrap();
        let read = db.begin_read().unwrap();
        assert!(read.open_table(CONNECT_LINKS).is_ok());
        assert!(read.open_table(PENDING_LOGINS).is_ok());
        let version = read
            .open_table(META)
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap()
            .value();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
