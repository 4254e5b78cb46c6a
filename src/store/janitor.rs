//! Retention: old events, dedupe keys, status history and its indexes, finished
//! deliveries, quarantined bodies, 24-hour windows, phone ↔ BSUID links and
//! inbound-media rows are removed in small batches. Each batch is
//! found in a read transaction and removed in a short write, so ingest never
//! waits long behind it.

use std::collections::HashSet;

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::codec::dec;
use super::tables::*;
use super::Store;
use crate::domain::model::{Delivery, DeliveryState, QuarantineItem};
use crate::error::Error;

/// Rows looked at or removed per step.
const BATCH: usize = 2_000;

impl Store {
    /// The first event id received at or after `cutoff_ms`: every id below it is older.
    /// Event ids grow with time, so this turns "older than" into a key range.
    pub fn first_event_at_or_after(&self, cutoff_ms: u64) -> Result<u64, Error> {
        self.read(|tx| {
            let events = tx.open_table(EVENTS)?;
            for row in events.iter()? {
                let (id, value) = row?;
                if value.value().3 >= cutoff_ms {
                    return Ok(id.value());
                }
            }
            let last = events.last()?.map(|(id, _)| id.value() + 1).unwrap_or(0);
            Ok(last)
        })
    }

    /// Removes one batch of events older than `threshold` that no pending delivery needs.
    pub async fn prune_events(&self, threshold: u64) -> Result<usize, Error> {
        let (ids, pending) = self.read(|tx| {
            let events = tx.open_table(EVENTS)?;
            let ids: Vec<u64> = events
                .range(0..threshold)?
                .take(BATCH)
                .map(|r| r.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            Ok((ids, pending_events(tx)?))
        })?;
        let doomed: Vec<u64> = ids.into_iter().filter(|id| !pending.contains(id)).collect();
        self.write_batch(doomed, |tx, id: &u64| {
            tx.open_table(EVENTS)?.remove(*id)?;
            tx.open_table(META_BODIES)?.remove(*id)?;
            Ok(())
        })
        .await
    }

    /// Removes one batch of dedupe keys pointing at events older than `threshold`.
    pub async fn prune_dedupe(&self, threshold: u64) -> Result<usize, Error> {
        let keys: Vec<String> = self.read(|tx| {
            let t = tx.open_table(DEDUPE)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if v.value() < threshold {
                    out.push(k.value().to_string());
                    if out.len() >= BATCH {
                        break;
                    }
                }
            }
            Ok(out)
        })?;
        self.write_batch(keys, |tx, key: &String| {
            tx.open_table(DEDUPE)?.remove(key.as_str())?;
            Ok(())
        })
        .await
    }

    /// Removes one batch of status-history rows of events older than `threshold`.
    pub async fn prune_statuses(&self, threshold: u64) -> Result<usize, Error> {
        let keys: Vec<(String, u64)> = self.read(|tx| {
            let t = tx.open_table(STATUSES)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, _) = row?;
                let (message, event) = k.value();
                if event < threshold {
                    out.push((message.to_string(), event));
                    if out.len() >= BATCH {
                        break;
                    }
                }
            }
            Ok(out)
        })?;
        self.write_batch(keys, |tx, (message, event): &(String, u64)| {
            tx.open_table(STATUSES)?
                .remove((message.as_str(), *event))?;
            Ok(())
        })
        .await
    }

    /// Removes one batch of finished deliveries created before `cutoff_ms`.
    pub async fn prune_deliveries(&self, cutoff_ms: u64) -> Result<usize, Error> {
        let doomed: Vec<(u64, String)> = self.read(|tx| {
            let t = tx.open_table(DELIVERIES)?;
            let mut out = Vec::new();
            for row in t.iter()?.take(BATCH) {
                let d: Delivery = dec(row?.1.value(), "delivery")?;
                if d.created_at >= cutoff_ms {
                    break;
                }
                if d.state != DeliveryState::Pending {
                    out.push((d.id, d.listener_id));
                }
            }
            Ok(out)
        })?;
        self.write_batch(doomed, |tx, (id, listener): &(u64, String)| {
            tx.open_table(DELIVERIES)?.remove(*id)?;
            tx.open_table(LISTENER_DELIVERIES)?
                .remove((listener.as_str(), *id))?;
            Ok(())
        })
        .await
    }

    /// Removes one batch of recipient-index rows whose newest status is an event
    /// older than `threshold`: their history went in `prune_statuses`.
    pub async fn prune_status_recipients(&self, threshold: u64) -> Result<usize, Error> {
        let keys: Vec<(String, String)> = self.read(|tx| {
            let t = tx.open_table(STATUS_RECIPIENTS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if v.value() < threshold {
                    let (who, message) = k.value();
                    out.push((who.to_string(), message.to_string()));
                    if out.len() >= BATCH {
                        break;
                    }
                }
            }
            Ok(out)
        })?;
        self.write_batch(keys, move |tx, (who, message): &(String, String)| {
            let mut t = tx.open_table(STATUS_RECIPIENTS)?;
            let key = (who.as_str(), message.as_str());
            // A status that arrived since the read made the row recent again.
            let stale = t.get(key)?.is_some_and(|v| v.value() < threshold);
            if stale {
                t.remove(key)?;
            }
            Ok(())
        })
        .await
    }

    /// Removes one batch of awaiting-delivery rows whose `sent` arrived before `cutoff_ms`.
    pub async fn prune_awaiting_delivery(&self, cutoff_ms: u64) -> Result<usize, Error> {
        let keys: Vec<(u64, String)> = self.read(|tx| {
            let t = tx.open_table(AWAITING_DELIVERY)?;
            let mut out = Vec::new();
            for row in t.range((0, "")..(cutoff_ms, ""))?.take(BATCH) {
                let (key, _) = row?;
                let (sent_at, message) = key.value();
                out.push((sent_at, message.to_string()));
            }
            Ok(out)
        })?;
        self.write_batch(keys, |tx, (sent_at, message): &(u64, String)| {
            tx.open_table(AWAITING_DELIVERY)?
                .remove((*sent_at, message.as_str()))?;
            Ok(())
        })
        .await
    }

    /// Removes one batch of quarantined bodies received before `cutoff_ms`.
    pub async fn prune_quarantine(&self, cutoff_ms: u64) -> Result<usize, Error> {
        let ids: Vec<u64> = self.read(|tx| {
            let t = tx.open_table(QUARANTINE)?;
            let mut out = Vec::new();
            for row in t.iter()?.take(BATCH) {
                let item: QuarantineItem = dec(row?.1.value(), "quarantine")?;
                if item.received_at >= cutoff_ms {
                    break;
                }
                out.push(item.id);
            }
            Ok(out)
        })?;
        self.remove_keys(QUARANTINE, ids).await
    }

    /// Removes one batch of 24-hour windows whose user last wrote before
    /// `cutoff_ms`: a window that old is closed either way.
    pub async fn prune_windows(&self, cutoff_ms: u64) -> Result<usize, Error> {
        self.prune_stale_pairs(WINDOWS, cutoff_ms).await
    }

    /// Removes one batch of phone ↔ BSUID links last seen before `cutoff_ms`.
    pub async fn prune_user_links(&self, cutoff_ms: u64) -> Result<usize, Error> {
        self.prune_stale_pairs(USER_LINKS_SEEN, cutoff_ms).await
    }

    /// One batch of a (id, id) → last-seen-ms table: the rows last seen before `cutoff_ms`.
    async fn prune_stale_pairs(
        &self,
        table: TableDefinition<'static, (&'static str, &'static str), u64>,
        cutoff_ms: u64,
    ) -> Result<usize, Error> {
        let keys: Vec<(String, String)> = self.read(|tx| {
            let t = tx.open_table(table)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if v.value() < cutoff_ms {
                    let (a, b) = k.value();
                    out.push((a.to_string(), b.to_string()));
                    if out.len() >= BATCH {
                        break;
                    }
                }
            }
            Ok(out)
        })?;
        self.write_batch(keys, move |tx, (a, b): &(String, String)| {
            let mut t = tx.open_table(table)?;
            let key = (a.as_str(), b.as_str());
            // Seen again since the read (the user wrote): keep it.
            let stale = t.get(key)?.is_some_and(|v| v.value() < cutoff_ms);
            if stale {
                t.remove(key)?;
            }
            Ok(())
        })
        .await
    }

    /// Removes one batch of inbound-media rows received before `cutoff_ms`
    /// (Meta's media ids expire after 30 days).
    pub async fn prune_media(&self, cutoff_ms: u64) -> Result<usize, Error> {
        let ids: Vec<String> = self.read(|tx| {
            let t = tx.open_table(MEDIA)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if v.value().2 < cutoff_ms {
                    out.push(k.value().to_string());
                    if out.len() >= BATCH {
                        break;
                    }
                }
            }
            Ok(out)
        })?;
        self.write_batch(ids, |tx, id: &String| {
            tx.open_table(MEDIA)?.remove(id.as_str())?;
            Ok(())
        })
        .await
    }

    async fn remove_keys<V: redb::Value + Send + Sync + 'static>(
        &self,
        table: redb::TableDefinition<'static, u64, V>,
        ids: Vec<u64>,
    ) -> Result<usize, Error> {
        self.write_batch(ids, move |tx, id: &u64| {
            tx.open_table(table)?.remove(*id)?;
            Ok(())
        })
        .await
    }

    /// Applies `remove` to every item in one transaction; returns how many.
    async fn write_batch<T, F>(&self, items: Vec<T>, remove: F) -> Result<usize, Error>
    where
        T: Send + Sync + 'static,
        F: Fn(&WriteTransaction, &T) -> Result<(), Error> + Send + 'static,
    {
        if items.is_empty() {
            return Ok(0);
        }
        let n = items.len();
        self.write(move |tx| {
            for item in &items {
                remove(tx, item)?;
            }
            Ok(n)
        })
        .await
    }
}

/// Events a pending delivery still has to send.
fn pending_events(tx: &redb::ReadTransaction) -> Result<HashSet<u64>, Error> {
    let deliveries = tx.open_table(DELIVERIES)?;
    let mut out = HashSet::new();
    for outbox in [OUTBOX, URGENT_OUTBOX] {
        for row in tx.open_table(outbox)?.iter()? {
            let id = row?.0.value().1;
            if let Some(v) = deliveries.get(id)? {
                out.insert(dec::<Delivery>(v.value(), "delivery")?.event_id);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::InboundEvent;

    fn event(key: &str) -> InboundEvent {
        InboundEvent {
            event_type: crate::domain::events::MESSAGE_STATUS.into(),
            waba_id: "W".into(),
            phone_number_id: "P".into(),
            dedupe_key: key.into(),
            body: b"{}".to_vec(),
            status: Some(crate::domain::model::StatusRecord {
                message_id: key.into(),
                status: "sent".into(),
                timestamp: None,
                recipient_id: None,
                recipient_user_id: None,
                errors: None,
                conversation: None,
                pricing: None,
                waba_id: "W".into(),
                phone_number_id: "P".into(),
                received_at: 0,
                ..Default::default()
            }),
            sender: None,
            media_id: None,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn old_rows_go_and_recent_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        store
            .ingest(vec![event("old-1"), event("old-2")], 1_000)
            .await
            .unwrap();
        store.ingest(vec![event("new-1")], 5_000).await.unwrap();

        let threshold = store.first_event_at_or_after(2_000).unwrap();
        assert_eq!(threshold, 3);
        assert_eq!(store.prune_events(threshold).await.unwrap(), 2);
        assert_eq!(store.prune_dedupe(threshold).await.unwrap(), 2);
        assert_eq!(store.prune_statuses(threshold).await.unwrap(), 2);
        assert_eq!(store.prune_events(threshold).await.unwrap(), 0);

        assert!(store.status_history("old-1").unwrap().is_empty());
        assert_eq!(store.status_history("new-1").unwrap().len(), 1);
        // The recent event's dedupe key is still there: a redelivery stays a duplicate.
        let again = store.ingest(vec![event("new-1")], 6_000).await.unwrap();
        assert_eq!(again.duplicates, 1);

        store
            .quarantine("old".into(), b"x".to_vec(), 1_000)
            .await
            .unwrap();
        store
            .quarantine("new".into(), b"y".to_vec(), 5_000)
            .await
            .unwrap();
        assert_eq!(store.prune_quarantine(2_000).await.unwrap(), 1);
        let left = store.quarantined(10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].reason, "new");
        store.close();
    }
}
