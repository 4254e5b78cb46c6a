//! Ingest: events, their dedupe keys, status history and outbox rows, written
//! together in one transaction so that "stored" and "queued" cannot part.

use redb::{ReadableTable, Table, WriteTransaction};
use serde::Serialize;

use super::codec::{dec, enc};
use super::tables::*;
use super::{next_id, Store};
use crate::domain::ids::new_id;
use crate::domain::model::{
    Delivery, DeliveryState, InboundEvent, Listener, QuarantineItem, StatusRecord,
};
use crate::error::Error;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub deliveries: usize,
}

/// A stored inbound event, as the admin's event list shows it.
#[derive(Debug, Clone)]
pub struct RecentEvent {
    pub id: u64,
    pub kind: String,
    pub waba_id: String,
    pub phone_number_id: String,
    pub received_at: u64,
    /// The outbound webhook body.
    pub body: Vec<u8>,
}

impl Store {
    /// The newest `limit` events, newest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<RecentEvent>, Error> {
        self.read(|tx| {
            let t = tx.open_table(EVENTS)?;
            let mut out = Vec::new();
            for row in t.iter()?.rev().take(limit) {
                let (id, v) = row?;
                let (kind, waba, phone, at, body) = v.value();
                out.push(RecentEvent {
                    id: id.value(),
                    kind: kind.to_string(),
                    waba_id: waba.to_string(),
                    phone_number_id: phone.to_string(),
                    received_at: at,
                    body: body.to_vec(),
                });
            }
            Ok(out)
        })
    }

    /// Stores a verified webhook's events and queues one delivery per matching listener.
    /// Returns once the transaction is durable.
    pub async fn ingest(
        &self,
        events: Vec<InboundEvent>,
        now_ms: u64,
    ) -> Result<IngestReport, Error> {
        self.write(move |tx| ingest(tx, &events, now_ms)).await
    }

    pub async fn quarantine(
        &self,
        reason: String,
        body: Vec<u8>,
        now_ms: u64,
    ) -> Result<u64, Error> {
        self.write(move |tx| {
            let id = next_id(tx, "next_quarantine")?;
            let item = QuarantineItem {
                id,
                received_at: now_ms,
                reason: reason.clone(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            tx.open_table(QUARANTINE)?
                .insert(id, enc(&item).as_slice())?;
            Ok(id)
        })
        .await
    }

    pub fn quarantined(&self, limit: usize) -> Result<Vec<QuarantineItem>, Error> {
        self.read(|tx| {
            let t = tx.open_table(QUARANTINE)?;
            let mut out = Vec::new();
            for row in t.iter()?.rev().take(limit) {
                out.push(dec(row?.1.value(), "quarantine")?);
            }
            Ok(out)
        })
    }

    /// Queues a test event for one listener (see `domain::test_event`).
    pub async fn queue_test_event(
        &self,
        event: InboundEvent,
        listener_id: String,
        now_ms: u64,
    ) -> Result<Delivery, Error> {
        self.write(move |tx| queue_for_one(tx, &event, &listener_id, now_ms))
            .await
    }

    /// Every status Meta reported for a message, in arrival order.
    pub fn status_history(&self, message_id: &str) -> Result<Vec<StatusRecord>, Error> {
        self.read(|tx| {
            let t = tx.open_table(STATUSES)?;
            let mut out = Vec::new();
            for row in t.range((message_id, 0)..=(message_id, u64::MAX))? {
                out.push(dec(row?.1.value(), "status")?);
            }
            Ok(out)
        })
    }
}

fn ingest(
    tx: &WriteTransaction,
    events: &[InboundEvent],
    now_ms: u64,
) -> Result<IngestReport, Error> {
    let mut report = IngestReport::default();
    let mut dedupe = tx.open_table(DEDUPE)?;
    let mut stored = tx.open_table(EVENTS)?;
    let mut statuses = tx.open_table(STATUSES)?;
    let mut queue = Queue::open(tx)?;
    let routes = tx.open_table(LISTENER_ROUTES)?;
    let listeners = tx.open_table(LISTENERS)?;
    let mut indexes = super::messages::Indexes::open(tx)?;
    for event in events {
        if dedupe.get(event.dedupe_key.as_str())?.is_some() {
            report.duplicates += 1;
            continue;
        }
        let event_id = store_event(tx, &mut stored, event, now_ms)?;
        dedupe.insert(event.dedupe_key.as_str(), event_id)?;
        if let Some(status) = &event.status {
            indexes.add(&statuses, status, event_id)?;
            statuses.insert(
                (status.message_id.as_str(), event_id),
                enc(status).as_slice(),
            )?;
        }
        report.accepted += 1;
        super::directory::learn_from(tx, event, now_ms)?;
        let waba = event.waba_id.as_str();
        let kind = event.kind.as_str();
        for row in routes.range((waba, kind, "")..)? {
            let (key, _) = row?;
            let (w, k, listener_id) = key.value();
            if w != waba || k != kind {
                break;
            }
            let Some(raw) = listeners.get(listener_id)? else {
                continue;
            };
            let listener: Listener = dec(raw.value(), "listener")?;
            if listener.stopped_reason.is_some() || listener.paused {
                continue;
            }
            queue.add(tx, &listener.id, event_id, now_ms)?;
            report.deliveries += 1;
        }
    }
    Ok(report)
}

/// The tables a new delivery is written to: its row, the outbox the workers
/// take from, and the per-listener index.
struct Queue<'t> {
    deliveries: Table<'t, u64, &'static [u8]>,
    outbox: Table<'t, (u64, u64), ()>,
    by_listener: Table<'t, (&'static str, u64), ()>,
}

impl<'t> Queue<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, Error> {
        Ok(Queue {
            deliveries: tx.open_table(DELIVERIES)?,
            outbox: tx.open_table(OUTBOX)?,
            by_listener: tx.open_table(LISTENER_DELIVERIES)?,
        })
    }

    /// One delivery of `event_id` to `listener_id`, due now.
    fn add(
        &mut self,
        tx: &WriteTransaction,
        listener_id: &str,
        event_id: u64,
        now_ms: u64,
    ) -> Result<Delivery, Error> {
        let delivery = Delivery {
            id: next_id(tx, "next_delivery")?,
            webhook_id: new_id("msg"),
            listener_id: listener_id.to_string(),
            event_id,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: Some(now_ms),
            last_attempt_at: None,
            last_status_code: None,
            last_error: None,
            created_at: now_ms,
        };
        self.deliveries
            .insert(delivery.id, enc(&delivery).as_slice())?;
        self.outbox.insert((now_ms, delivery.id), ())?;
        self.by_listener.insert((listener_id, delivery.id), ())?;
        Ok(delivery)
    }
}

/// Stores `event` and queues it for `listener_id` alone: no dedupe key, no
/// status history, no window (a test event must not look like a real user).
fn queue_for_one(
    tx: &WriteTransaction,
    event: &InboundEvent,
    listener_id: &str,
    now_ms: u64,
) -> Result<Delivery, Error> {
    let event_id = store_event(tx, &mut tx.open_table(EVENTS)?, event, now_ms)?;
    Queue::open(tx)?.add(tx, listener_id, event_id, now_ms)
}

type EventsTable<'t> =
    Table<'t, u64, (&'static str, &'static str, &'static str, u64, &'static [u8])>;

fn store_event(
    tx: &WriteTransaction,
    stored: &mut EventsTable<'_>,
    event: &InboundEvent,
    now_ms: u64,
) -> Result<u64, Error> {
    let event_id = next_id(tx, "next_event")?;
    stored.insert(
        event_id,
        (
            event.kind.as_str(),
            event.waba_id.as_str(),
            event.phone_number_id.as_str(),
            now_ms,
            event.body.as_slice(),
        ),
    )?;
    Ok(event_id)
}
