//! Retention: old events, dedupe keys, status history and its indexes,
//! template history, finished deliveries, quarantined bodies, 24-hour windows, phone ↔ BSUID links and
//! inbound-media rows are removed in small batches. Each batch is
//! found in a read transaction and removed in a short write, so ingest never
//! waits long behind it.
//!
//! Tables whose old rows are scattered among the new ones (the history is
//! keyed by message, the dedupe keys by Meta's ids, …) are read in one pass:
//! each batch goes on after the last key the one before looked at (`Pruned`).
//! Starting every batch from the table's first row instead made a day's
//! expiry read the table once per batch.

use std::collections::HashSet;
use std::ops::Bound;

use redb::{Key, ReadOnlyTable, ReadableTable, TableDefinition, Value, WriteTransaction};

use super::codec::dec;
use super::tables::*;
use super::Store;
use crate::domain::model::{Delivery, DeliveryState, QuarantineItem};
use crate::error::Error;

/// Rows looked at or removed per step.
const BATCH: usize = 2_000;
/// Rows one batch of a pass looks at, at most, so its read stays short.
const SCAN: usize = 20_000;

/// What one batch of a pass over a table did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned<K> {
    pub removed: usize,
    /// The last key looked at: the next batch goes on after it. `None` once
    /// the pass reached the end of the table.
    pub next: Option<K>,
}

/// One batch of a pass over `table` from `start`: the keys (`own`ed) of the
/// rows `doomed` picks, up to `BATCH` of them among `SCAN` rows at most, and
/// the last key looked at unless the end was reached.
fn pass_batch<K: Key + 'static, V: Value + 'static, O>(
    table: &ReadOnlyTable<K, V>,
    start: Bound<K::SelfType<'_>>,
    doomed: impl Fn(K::SelfType<'_>, V::SelfType<'_>) -> bool,
    own: impl Fn(K::SelfType<'_>) -> O,
) -> Result<(Vec<O>, Option<O>), Error> {
    let mut out = Vec::new();
    let mut seen = 0;
    for row in table.range::<K::SelfType<'_>>((start, Bound::Unbounded))? {
        let (k, v) = row?;
        seen += 1;
        if doomed(k.value(), v.value()) {
            out.push(own(k.value()));
        }
        if out.len() >= BATCH || seen >= SCAN {
            return Ok((out, Some(own(k.value()))));
        }
    }
    Ok((out, None))
}

/// The owned form of a (text, number) key.
fn own_pair((a, n): (&str, u64)) -> (String, u64) {
    (a.to_string(), n)
}

/// The owned form of a (text, text) key.
fn own_texts((a, b): (&str, &str)) -> (String, String) {
    (a.to_string(), b.to_string())
}

/// Where a pass over a table keyed by (text, number) goes on.
fn after_pair(after: &Option<(String, u64)>) -> Bound<(&str, u64)> {
    match after {
        Some((a, n)) => Bound::Excluded((a.as_str(), *n)),
        None => Bound::Unbounded,
    }
}

/// Where a pass over a table keyed by two texts goes on.
fn after_texts(after: &Option<(String, String)>) -> Bound<(&str, &str)> {
    match after {
        Some((a, b)) => Bound::Excluded((a.as_str(), b.as_str())),
        None => Bound::Unbounded,
    }
}

/// Where a pass over a table keyed by a text goes on.
fn after_text(after: &Option<String>) -> Bound<&str> {
    match after {
        Some(a) => Bound::Excluded(a.as_str()),
        None => Bound::Unbounded,
    }
}

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

    /// One batch of a pass removing dedupe keys of events older than `threshold`.
    pub async fn prune_dedupe(
        &self,
        threshold: u64,
        after: Option<String>,
    ) -> Result<Pruned<String>, Error> {
        let (keys, next) = self.read(|tx| {
            let t = tx.open_table(DEDUPE)?;
            pass_batch(
                &t,
                after_text(&after),
                |_, event| event < threshold,
                str::to_string,
            )
        })?;
        let removed = self
            .write_batch(keys, |tx, key: &String| {
                tx.open_table(DEDUPE)?.remove(key.as_str())?;
                Ok(())
            })
            .await?;
        Ok(Pruned { removed, next })
    }

    /// One batch of a pass removing status-history rows of events older than `threshold`.
    pub async fn prune_statuses(
        &self,
        threshold: u64,
        after: Option<(String, u64)>,
    ) -> Result<Pruned<(String, u64)>, Error> {
        self.prune_by_event(STATUSES, threshold, after).await
    }

    /// One batch of a pass removing template-history entries of events older
    /// than `threshold`, like the status history.
    pub async fn prune_template_history(
        &self,
        threshold: u64,
        after: Option<(String, u64)>,
    ) -> Result<Pruned<(String, u64)>, Error> {
        self.prune_by_event(TEMPLATE_HISTORY, threshold, after)
            .await
    }

    /// A history keyed by (what it is of, event id): one batch of a pass
    /// removing the rows of events older than `threshold`.
    async fn prune_by_event(
        &self,
        table: TableDefinition<'static, (&'static str, u64), &'static [u8]>,
        threshold: u64,
        after: Option<(String, u64)>,
    ) -> Result<Pruned<(String, u64)>, Error> {
        let (keys, next) = self.read(|tx| {
            let t = tx.open_table(table)?;
            pass_batch(
                &t,
                after_pair(&after),
                |(_, event), _| event < threshold,
                own_pair,
            )
        })?;
        let removed = self
            .write_batch(keys, move |tx, (of, event): &(String, u64)| {
                tx.open_table(table)?.remove((of.as_str(), *event))?;
                Ok(())
            })
            .await?;
        Ok(Pruned { removed, next })
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

    /// One batch of a pass removing recipient-index rows whose newest status is
    /// an event older than `threshold`: their history went in `prune_statuses`.
    pub async fn prune_status_recipients(
        &self,
        threshold: u64,
        after: Option<(String, String)>,
    ) -> Result<Pruned<(String, String)>, Error> {
        // Each row holds its newest status's event id: stale below the threshold.
        self.prune_stale_pairs(STATUS_RECIPIENTS, threshold, after)
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

    /// One batch of a pass removing 24-hour windows whose user last wrote
    /// before `cutoff_ms`: a window that old is closed either way.
    pub async fn prune_windows(
        &self,
        cutoff_ms: u64,
        after: Option<(String, String)>,
    ) -> Result<Pruned<(String, String)>, Error> {
        self.prune_stale_pairs(WINDOWS, cutoff_ms, after).await
    }

    /// One batch of a pass removing phone ↔ BSUID links last seen before `cutoff_ms`.
    pub async fn prune_user_links(
        &self,
        cutoff_ms: u64,
        after: Option<(String, String)>,
    ) -> Result<Pruned<(String, String)>, Error> {
        self.prune_stale_pairs(USER_LINKS_SEEN, cutoff_ms, after)
            .await
    }

    /// One batch of a pass over an (id, id) → number table (last seen in ms,
    /// or the newest event's id): the rows whose number is below `cutoff`,
    /// unless written again since the read.
    async fn prune_stale_pairs(
        &self,
        table: TableDefinition<'static, (&'static str, &'static str), u64>,
        cutoff: u64,
        after: Option<(String, String)>,
    ) -> Result<Pruned<(String, String)>, Error> {
        let (keys, next) = self.read(|tx| {
            let t = tx.open_table(table)?;
            pass_batch(&t, after_texts(&after), |_, seen| seen < cutoff, own_texts)
        })?;
        let removed = self
            .write_batch(keys, move |tx, (a, b): &(String, String)| {
                let mut t = tx.open_table(table)?;
                let key = (a.as_str(), b.as_str());
                // Seen again since the read (the user wrote): keep it.
                let stale = t.get(key)?.is_some_and(|v| v.value() < cutoff);
                if stale {
                    t.remove(key)?;
                }
                Ok(())
            })
            .await?;
        Ok(Pruned { removed, next })
    }

    /// One batch of a pass removing inbound-media rows received before
    /// `cutoff_ms` (Meta's media ids expire after 30 days).
    pub async fn prune_media(
        &self,
        cutoff_ms: u64,
        after: Option<String>,
    ) -> Result<Pruned<String>, Error> {
        let (ids, next) = self.read(|tx| {
            let t = tx.open_table(MEDIA)?;
            pass_batch(
                &t,
                after_text(&after),
                |_, (_, _, at)| at < cutoff_ms,
                str::to_string,
            )
        })?;
        let removed = self
            .write_batch(ids, |tx, id: &String| {
                tx.open_table(MEDIA)?.remove(id.as_str())?;
                Ok(())
            })
            .await?;
        Ok(Pruned { removed, next })
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
mod tests;
