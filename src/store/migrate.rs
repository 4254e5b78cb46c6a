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
        Some(1) => {
            drop(tx);
            from_1_to_2(db)
        }
        Some(v) => Err(Error::Startup(format!("no migration from schema version {v}"))),
    }
}

/// Version 2 adds the status indexes (by recipient, awaiting delivery) and
/// connect links; the indexes are built from the history already stored.
fn from_1_to_2(db: &Database) -> Result<(), Error> {
    let tx = db.begin_write()?;
    tx.open_table(CONNECT_LINKS)?;
    super::messages::backfill(&tx)?;
    tx.open_table(META)?.insert("schema_version", 2)?;
    tx.commit()?;
    tracing::info!("database migrated to schema version 2");
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
    tx.open_table(STATUS_RECIPIENTS)?;
    tx.open_table(AWAITING_DELIVERY)?;
    tx.open_table(CONNECT_LINKS)?;
    Ok(())
}
