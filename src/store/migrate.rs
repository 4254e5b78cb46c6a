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
        Some(v) if v > SCHEMA_VERSION => Err(Error::Startup(format!(
            "the database has schema version {v}, written by a newer wabridge (this one knows {SCHEMA_VERSION}); run the newer version or restore a backup"
        ))),
        Some(v) => {
            tx.abort()?;
            for from in v..SCHEMA_VERSION {
                step(db, from)?;
            }
            Ok(())
        }
    }
}

/// Moves the schema from `from` to `from + 1` in one transaction.
fn step(db: &Database, from: u64) -> Result<(), Error> {
    let tx = db.begin_write()?;
    match from {
        // The window, the phone-number directory and inbound media start empty:
        // until a user writes again their window is "unknown", never wrongly "open".
        1 => create_v2_tables(&tx)?,
        other => {
            return Err(Error::Startup(format!(
                "no migration from schema version {other}"
            )))
        }
    }
    tx.open_table(META)?.insert("schema_version", from + 1)?;
    tx.commit()?;
    tracing::info!(from, to = from + 1, "database schema migrated");
    Ok(())
}

fn create_v2_tables(tx: &redb::WriteTransaction) -> Result<(), Error> {
    tx.open_table(WINDOWS)?;
    tx.open_multimap_table(USER_LINKS)?;
    tx.open_table(PHONE_NUMBERS)?;
    tx.open_table(MEDIA)?;
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
    create_v2_tables(tx)
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;

    #[test]
    fn a_version_1_database_gains_the_version_2_tables() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("v1.redb")).unwrap();
        {
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("schema_version", 1)
                .unwrap();
            tx.open_table(EVENTS).unwrap();
            tx.commit().unwrap();
        }
        run(&db).unwrap();
        let tx = db.begin_read().unwrap();
        let version = tx
            .open_table(META)
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap()
            .value();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(tx.open_table(WINDOWS).is_ok());
        assert!(tx.open_multimap_table(USER_LINKS).is_ok());
        assert!(tx.open_table(PHONE_NUMBERS).is_ok());
        assert!(tx.open_table(MEDIA).is_ok());
        drop(tx);
        run(&db).unwrap();
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("v9.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 99)
            .unwrap();
        tx.commit().unwrap();
        assert!(matches!(run(&db), Err(Error::Startup(_))));
    }
}
