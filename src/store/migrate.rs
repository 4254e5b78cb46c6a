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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{EventKind, InboundEvent, StatusRecord};
    use crate::store::Store;

    fn status(message: &str, status: &str, at: u64) -> InboundEvent {
        InboundEvent {
            kind: EventKind::Statuses,
            waba_id: "W".into(),
            phone_number_id: "P".into(),
            dedupe_key: format!("s:{message}:{status}"),
            body: b"{}".to_vec(),
            status: Some(StatusRecord {
                message_id: message.into(),
                status: status.into(),
                timestamp: None,
                recipient_id: Some("420111".into()),
                recipient_user_id: None,
                errors: None,
                conversation: None,
                pricing: None,
                waba_id: "W".into(),
                phone_number_id: "P".into(),
                received_at: at,
            }),
        }
    }

    /// Turns a current database back into what version 1 had: no indexes, no links.
    fn downgrade_to_1(path: &std::path::Path) {
        let db = Database::builder().create(path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.delete_table(STATUS_RECIPIENTS).unwrap();
        tx.delete_table(AWAITING_DELIVERY).unwrap();
        tx.delete_table(CONNECT_LINKS).unwrap();
        tx.open_table(META)
            .unwrap()
            .insert("schema_version", 1)
            .unwrap();
        tx.commit().unwrap();
    }

    #[tokio::test]
    async fn version_1_gets_its_status_indexes_built_from_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path).unwrap();
        for (m, s, at) in [("m1", "sent", 1), ("m1", "delivered", 2), ("m2", "sent", 3)] {
            store.ingest(vec![status(m, s, at)], at).await.unwrap();
        }
        store.close();
        drop(store);
        downgrade_to_1(&path);

        let store = Store::open(&path).unwrap();
        let waiting: Vec<_> = store
            .awaiting_delivery(10, 10)
            .unwrap()
            .into_iter()
            .map(|a| a.message_id)
            .collect();
        assert_eq!(waiting, ["m2"]);
        assert_eq!(store.messages_to("420111", 10).unwrap(), ["m2", "m1"]);
        assert_eq!(store.open_connect_links(0).unwrap(), 0);
        store.close();
    }
}
