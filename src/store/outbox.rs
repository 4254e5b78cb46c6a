//! The delivery queue. Only the delivery worker takes from it; each outcome is
//! recorded in one transaction (remove the row, update the delivery, maybe requeue).

use std::collections::HashSet;

use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, Table, TableDefinition, WriteTransaction,
};

use super::codec::{dec, enc};
use super::tables::{
    DELIVERIES, EVENTS, LISTENERS, META_BODIES, OUTBOX, QUARANTINE, URGENT_OUTBOX,
};
use super::Store;
use crate::domain::delivery::Next;
use crate::domain::model::{Delivery, DeliveryState, Listener};
use crate::domain::subscription::Format;
use crate::error::Error;

/// Which outbox: call events' first attempts have one of their own, taken
/// with permits of their own, so no backlog can hold them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Urgent,
    Normal,
}

impl Lane {
    /// Call events' first attempts go ahead of everything else.
    pub(super) fn for_event(event_type: &str) -> Lane {
        if crate::domain::events::is_urgent(event_type) {
            Lane::Urgent
        } else {
            Lane::Normal
        }
    }

    pub(super) fn table(self) -> TableDefinition<'static, (u64, u64), ()> {
        match self {
            Lane::Urgent => URGENT_OUTBOX,
            Lane::Normal => OUTBOX,
        }
    }
}

/// A delivery whose time has come, with what the sender needs.
#[derive(Debug, Clone)]
pub struct Due {
    pub delivery: Delivery,
    /// `None` when the listener was removed after the event was queued.
    pub listener: Option<Listener>,
    pub body: Vec<u8>,
}

/// What happened to one attempt, to be recorded.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: u64,
    pub at_ms: u64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub next: Next,
}

/// See `Store::backlog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub queued: u64,
    pub earliest_due_at: Option<u64>,
    pub quarantined: u64,
}

impl Store {
    /// Up to `limit` deliveries of `lane` due by `now_ms`, skipping those already in flight.
    pub fn due(
        &self,
        lane: Lane,
        now_ms: u64,
        limit: usize,
        in_flight: &HashSet<u64>,
    ) -> Result<Vec<Due>, Error> {
        self.read(|tx| {
            let outbox = tx.open_table(lane.table())?;
            let deliveries = tx.open_table(DELIVERIES)?;
            let listeners = tx.open_table(LISTENERS)?;
            let events = tx.open_table(EVENTS)?;
            let meta_bodies = tx.open_table(META_BODIES)?;
            let mut out = Vec::new();
            for row in outbox.range((0, 0)..=(now_ms, u64::MAX))? {
                if out.len() >= limit {
                    break;
                }
                let id = row?.0.value().1;
                if in_flight.contains(&id) {
                    continue;
                }
                let Some(raw) = deliveries.get(id)? else {
                    continue;
                };
                let delivery: Delivery = dec(raw.value(), "delivery")?;
                // The worker signs with the secret: opened here, one small
                // decryption per attempt, beside the decoding of the same record.
                let listener: Option<Listener> =
                    match listeners.get(delivery.listener_id.as_str())? {
                        Some(v) => match unopened(&self.sealer, v.value()) {
                            Some(listener) => Some(listener),
                            // Not even its record decodes: left for an admin, the rest go on.
                            None => continue,
                        },
                        None => None,
                    };
                let meta_body = match listener.as_ref().map(|l| l.format) {
                    Some(Format::Meta) => meta_bodies
                        .get(delivery.event_id)?
                        .map(|v| v.value().to_vec()),
                    _ => None,
                };
                let body = match meta_body {
                    Some(body) => body,
                    None => events
                        .get(delivery.event_id)?
                        .map(|v| v.value().4.to_vec())
                        .unwrap_or_default(),
                };
                out.push(Due {
                    delivery,
                    listener,
                    body,
                });
            }
            Ok(out)
        })
    }

    /// When the first row of `lane` due after `after_ms` falls due.
    pub fn next_due_after(&self, lane: Lane, after_ms: u64) -> Result<Option<u64>, Error> {
        self.read(|tx| {
            let outbox = tx.open_table(lane.table())?;
            let next = outbox.range((after_ms.saturating_add(1), 0)..)?.next();
            Ok(next.transpose()?.map(|(k, _)| k.value().0))
        })
    }

    /// What waits, for monitors: queued deliveries, when the earliest falls
    /// due, and quarantined webhook bodies. One read transaction, no row decoded.
    pub fn backlog(&self) -> Result<Backlog, Error> {
        self.read(|tx| {
            let mut queued = 0;
            for lane in [Lane::Urgent, Lane::Normal] {
                queued += tx.open_table(lane.table())?.len()?;
            }
            Ok(Backlog {
                queued,
                earliest_due_at: earliest_due(tx)?,
                quarantined: tx.open_table(QUARANTINE)?.len()?,
            })
        })
    }

    /// When the earliest queued delivery falls due.
    pub fn next_due_at(&self) -> Result<Option<u64>, Error> {
        self.read(earliest_due)
    }

    /// Records many attempts' outcomes in one write.
    pub async fn record_outcomes(&self, outcomes: Vec<Outcome>) -> Result<(), Error> {
        if outcomes.iter().any(|o| o.next == Next::StopListener) {
            self.write(move |tx| {
                let mut rows = Rows::open(tx)?;
                for o in &outcomes {
                    if let Some(listener) = record(&mut rows, o)? {
                        stop_listener(tx, &listener, "the receiver answered 410 Gone")?;
                    }
                }
                Ok(())
            })
            .await?;
            self.listeners_changed();
        } else {
            // On the tables the ingests of the commit share: the outcomes of
            // a busy listener land between ingests in nearly every commit,
            // and closing and reopening those tables for them cost more than
            // the outcomes themselves (perf, December 2026).
            self.write_ingest(move |tables| tables.record_outcomes(&outcomes))
                .await?;
        }
        Ok(())
    }

    /// Queues a failed (or cancelled) delivery again, keeping its `webhook-id`.
    pub async fn redeliver(&self, delivery_id: u64, now_ms: u64) -> Result<Delivery, Error> {
        self.write(move |tx| {
            let mut deliveries = tx.open_table(DELIVERIES)?;
            let mut d: Delivery = match deliveries.get(delivery_id)? {
                Some(v) => dec(v.value(), "delivery")?,
                None => return Err(Error::NotFound("delivery")),
            };
            if d.state == DeliveryState::Pending {
                return Ok(d);
            }
            d.state = DeliveryState::Pending;
            d.attempts = 0;
            d.next_attempt_at = Some(now_ms);
            deliveries.insert(delivery_id, enc(&d, "delivery")?.as_slice())?;
            tx.open_table(OUTBOX)?.insert((now_ms, delivery_id), ())?;
            Ok(d)
        })
        .await
        .inspect(|_| self.handoff.missed(Lane::Normal))
    }

    pub fn delivery(&self, id: u64) -> Result<Option<Delivery>, Error> {
        self.read(|tx| {
            let t = tx.open_table(DELIVERIES)?;
            let v = t.get(id)?;
            v.map(|v| dec(v.value(), "delivery")).transpose()
        })
    }
}

/// The listener of a due delivery, its secret opened; `None` when its record
/// does not decode at all (left for an admin, the other deliveries go on).
pub(super) fn unopened(sealer: &super::Sealer, raw: &[u8]) -> Option<Listener> {
    match dec(raw, "listener") {
        Ok(listener) => Some(unsealed(sealer, listener)),
        Err(e) => {
            tracing::error!(error = %e, "a listener record of the outbox cannot be read; its deliveries wait");
            None
        }
    }
}

/// `listener` with its secret opened. One whose secret does not open (a
/// damaged record) must not stop every other delivery: it comes back as
/// stopped, so the worker fails that delivery with the reason and sends
/// nothing; the record itself is left as it is.
fn unsealed(sealer: &super::Sealer, mut listener: Listener) -> Listener {
    match sealer.open_listener_secret(&listener) {
        Ok(secret) => listener.secret = secret,
        Err(error) => {
            // The message names the record, never the secret.
            tracing::error!(listener = %listener.id, %error, "cannot decrypt a listener's signing secret; its deliveries fail until it is recreated");
            listener.secret.clear();
            listener.stopped_reason = Some(format!(
                "its signing secret cannot be decrypted ({error}); delete and recreate the listener"
            ));
        }
    }
    listener
}

/// The due time at the head of either outbox, whichever is earlier.
fn earliest_due(tx: &ReadTransaction) -> Result<Option<u64>, Error> {
    let mut earliest: Option<u64> = None;
    for lane in [Lane::Urgent, Lane::Normal] {
        let first = tx
            .open_table(lane.table())?
            .first()?
            .map(|(k, _)| k.value().0);
        earliest = match (earliest, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(earliest)
}

/// The delivery rows and the two outboxes an attempt's outcome rewrites.
pub(super) struct Rows<'t> {
    pub deliveries: Table<'t, u64, &'static [u8]>,
    pub outbox: Table<'t, (u64, u64), ()>,
    pub urgent: Table<'t, (u64, u64), ()>,
}

impl<'t> Rows<'t> {
    pub fn open(tx: &'t WriteTransaction) -> Result<Self, Error> {
        Ok(Rows {
            deliveries: tx.open_table(DELIVERIES)?,
            outbox: tx.open_table(OUTBOX)?,
            urgent: tx.open_table(URGENT_OUTBOX)?,
        })
    }
}

/// Records one attempt's outcome; returns the listener to stop when the
/// receiver said it is gone for good.
pub(super) fn record(rows: &mut Rows<'_>, outcome: &Outcome) -> Result<Option<String>, Error> {
    let Some(raw) = rows.deliveries.get(outcome.delivery_id)? else {
        // The listener and its deliveries were removed while this attempt was in flight.
        return Ok(None);
    };
    let mut d: Delivery = dec(raw.value(), "delivery")?;
    drop(raw);
    if let Some(due) = d.next_attempt_at {
        // A first attempt may have come from either outbox; retries wait in the normal one.
        rows.outbox.remove((due, d.id))?;
        rows.urgent.remove((due, d.id))?;
    }
    d.attempts += 1;
    d.last_attempt_at = Some(outcome.at_ms);
    d.last_status_code = outcome.status_code;
    d.last_error = outcome.error.clone();
    d.next_attempt_at = None;
    let mut stop = None;
    match &outcome.next {
        Next::Done => d.state = DeliveryState::Succeeded,
        Next::RetryAt(at) => {
            d.next_attempt_at = Some(*at);
            rows.outbox.insert((*at, d.id), ())?;
        }
        Next::GiveUp => d.state = DeliveryState::Failed,
        Next::StopListener => {
            d.state = DeliveryState::Failed;
            stop = Some(d.listener_id.clone());
        }
    }
    rows.deliveries
        .insert(d.id, enc(&d, "delivery")?.as_slice())?;
    Ok(stop)
}

/// Marks a listener stopped; its secret is written back sealed as it was read.
fn stop_listener(tx: &WriteTransaction, id: &str, reason: &str) -> Result<(), Error> {
    let mut listeners = tx.open_table(LISTENERS)?;
    let found: Option<Listener> = match listeners.get(id)? {
        Some(v) => Some(dec(v.value(), "listener")?),
        None => None,
    };
    if let Some(mut l) = found {
        l.stopped_reason = Some(reason.to_string());
        listeners.insert(id, enc(&l, "listener")?.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_event::test_event;
    use crate::store::key::tests::{damage_listener_secret, listener, LISTENER_SECRET};

    fn outcome(delivery_id: u64, next: Next) -> Outcome {
        Outcome {
            delivery_id,
            at_ms: 5,
            status_code: Some(200),
            error: None,
            next,
        }
    }

    #[tokio::test]
    async fn outcomes_recorded_on_the_ingests_tables_settle_or_requeue_their_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("wabridge.redb")).unwrap();
        let l = listener();
        store.insert_listener(l.clone()).await.unwrap();
        let events = (1..=2)
            .map(|n| {
                let mut e = test_event(&l.events, &l.waba_id, n).unwrap();
                e.dedupe_key = format!("key-{n}");
                e
            })
            .collect();
        store.ingest(events, 1).await.unwrap();
        let due = store.due(Lane::Normal, 1, 10, &HashSet::new()).unwrap();
        let (done, retried) = (due[0].delivery.id, due[1].delivery.id);
        store
            .record_outcomes(vec![
                outcome(done, Next::Done),
                outcome(retried, Next::RetryAt(60_000)),
            ])
            .await
            .unwrap();
        let state = |id| store.delivery(id).unwrap().unwrap();
        assert_eq!(state(done).state, DeliveryState::Succeeded);
        assert_eq!(state(retried).next_attempt_at, Some(60_000));
        assert!(store
            .due(Lane::Normal, 59_999, 10, &HashSet::new())
            .unwrap()
            .is_empty());
        let later = store
            .due(Lane::Normal, 60_000, 10, &HashSet::new())
            .unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].delivery.id, retried);

        // On the shared tables themselves, between two ingests' writes of one
        // commit, as the writer runs them when outcomes and webhooks meet.
        let tx = store.db.begin_write().unwrap();
        {
            let mut tables = crate::store::events::IngestTables::open(&tx).unwrap();
            tables.count_for_test("before").unwrap();
            tables
                .record_outcomes(&[outcome(retried, Next::Done)])
                .unwrap();
            tables.count_for_test("after").unwrap();
        }
        tx.commit().unwrap();
        assert_eq!(state(retried).state, DeliveryState::Succeeded);
        assert!(store
            .due(Lane::Normal, 60_000, 10, &HashSet::new())
            .unwrap()
            .is_empty());

        // A stop writes the listeners, which the shared tables hold open:
        // refused there rather than failing the whole commit in redb.
        let tx = store.db.begin_write().unwrap();
        {
            let mut tables = crate::store::events::IngestTables::open(&tx).unwrap();
            let stop = tables.record_outcomes(&[outcome(done, Next::StopListener)]);
            let refused = stop.as_ref().map_err(|e| e.to_string());
            assert!(
                matches!(&refused, Err(e) if e.contains("stops its listener")),
                "{refused:?}"
            );
        }
        tx.abort().unwrap();
        store.close();
    }

    #[tokio::test]
    async fn a_listener_whose_secret_does_not_open_fails_its_deliveries_and_holds_up_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wabridge.redb");
        let store = Store::open_beside(&path).unwrap();
        let broken = listener();
        let mut sound = listener();
        sound.id = "lst_2".into();
        for l in [&broken, &sound] {
            store.insert_listener(l.clone()).await.unwrap();
            let event = test_event(&l.events, &l.waba_id, 1).unwrap();
            store.queue_test_event(event, l.clone(), 1).await.unwrap();
        }
        store.close();
        drop(store);
        damage_listener_secret(&path);

        let store = Store::open_beside(&path).unwrap();
        let due = store.due(Lane::Normal, 10, 10, &HashSet::new()).unwrap();
        let due: Vec<_> = due
            .iter()
            .chain(&store.due(Lane::Urgent, 10, 10, &HashSet::new()).unwrap())
            .cloned()
            .collect();
        assert_eq!(due.len(), 2, "both rows come out");
        let of = |id: &str| {
            due.iter()
                .find(|d| d.delivery.listener_id == id)
                .and_then(|d| d.listener.clone())
                .unwrap()
        };
        let broken = of("lst_1");
        assert!(broken
            .stopped_reason
            .unwrap()
            .contains("cannot be decrypted"));
        assert!(broken.secret.is_empty());
        let sound = of("lst_2");
        assert_eq!(sound.secret, LISTENER_SECRET);
        assert!(sound.stopped_reason.is_none());

        // The gauges of /metrics open no secret, so a damaged one is counted.
        assert!(store.listeners().is_err(), "opening it does fail");
        assert_eq!(store.listener_counts().unwrap(), (2, 0, 0));
        assert_eq!(store.account_counts().unwrap(), (0, 0));
        store.close();
    }
}
