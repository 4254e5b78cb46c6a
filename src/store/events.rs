//! Ingest: events, their dedupe keys, status history and outbox rows, written
//! together in one transaction so that "stored" and "queued" cannot part.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use redb::{ReadableTable, Table, WriteTransaction};
use serde::Serialize;

use super::codec::{dec, enc};
use super::handoff::{Fresh, Handover};
use super::outbox::{record, Due, Lane, Outcome, Rows};
use super::status_row;
use super::tables::*;
use super::{next_id, next_id_in, Store};
use crate::domain::events::covers;
use crate::domain::ids::new_id;
use crate::domain::model::{
    Delivery, DeliveryState, InboundEvent, Listener, QuarantineItem, StatusRecord,
};
use crate::domain::subscription::{Facts, Format};
use crate::domain::template_history::template_change;
use crate::domain::webhook::meta_body;
use crate::error::Error;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub deliveries: usize,
    /// The accepted events by type, for the backoffice's traffic counters;
    /// not part of the answer to Meta. A body holds one type or a few.
    #[serde(skip)]
    pub accepted_types: Vec<(String, u32)>,
}

impl IngestReport {
    fn accept(&mut self, event_type: &str) {
        self.accepted += 1;
        match self
            .accepted_types
            .iter_mut()
            .find(|(t, _)| t == event_type)
        {
            Some((_, n)) => *n += 1,
            None => self.accepted_types.push((event_type.to_string(), 1)),
        }
    }
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
    /// Returns once the transaction is durable. Refused (nothing stored) while
    /// the disk is failing or short of the reserve, so Meta retries later.
    pub async fn ingest(
        &self,
        events: Vec<InboundEvent>,
        now_ms: u64,
    ) -> Result<IngestReport, Error> {
        self.health.admit()?;
        let handoff = self.handoff.clone();
        // Shared with the writer's job, which lets go of it before it
        // answers: the parsed bodies are freed here, on the request's
        // thread, not on the one writer thread every commit waits for.
        let events = Arc::new(events);
        let held = events.clone();
        let (report, fresh) = self
            .write_ingest(move |tables| {
                let (report, fresh) = ingest(tables, &held, now_ms)?;
                Ok((report, Handover::new(handoff.clone(), fresh)))
            })
            .await?;
        fresh.hand_over();
        Ok(report)
    }

    pub async fn quarantine(
        &self,
        reason: String,
        body: Vec<u8>,
        now_ms: u64,
    ) -> Result<u64, Error> {
        self.health.admit()?;
        self.write(move |tx| {
            let id = next_id(tx, "next_quarantine")?;
            let item = QuarantineItem {
                id,
                received_at: now_ms,
                reason: reason.clone(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            tx.open_table(QUARANTINE)?
                .insert(id, enc(&item, "quarantine")?.as_slice())?;
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
        listener: Listener,
        now_ms: u64,
    ) -> Result<Delivery, Error> {
        let (delivery, lane) = self
            .write(move |tx| queue_for_one(tx, &event, &listener, now_ms))
            .await?;
        self.handoff.missed(lane);
        Ok(delivery)
    }

    /// Records a message the flow API just sent, as Meta's answer put it
    /// (`accepted`), so its history is there before Meta's first status.
    pub async fn record_sent(&self, record: StatusRecord) -> Result<(), Error> {
        self.write(move |tx| {
            let id = next_id(tx, "next_event")?;
            let mut statuses = tx.open_table(STATUSES)?;
            super::messages::Indexes::open(tx)?.add(&statuses, &record, id)?;
            statuses.insert(
                (record.message_id.as_str(), id),
                status_row::encode(&record).as_slice(),
            )?;
            Ok(())
        })
        .await
    }

    /// Every status Meta reported for a message, in arrival order.
    pub fn status_history(&self, message_id: &str) -> Result<Vec<StatusRecord>, Error> {
        self.read(|tx| status_row::history(&tx.open_table(STATUSES)?, message_id))
    }
}

/// Every table an ingest writes, open for as long as ingests follow one
/// another in a commit (see `writer::Shared`).
pub(crate) struct IngestTables<'t> {
    /// For the tables an ingest seldom writes (a WABA's facts). Never for a
    /// table held below: redb would refuse it, and the batch and each replay
    /// would fail, so Meta's every retry would get a 5xx.
    tx: &'t WriteTransaction,
    meta: Table<'t, &'static str, u64>,
    dedupe: Table<'t, &'static str, u64>,
    events: EventsTable<'t>,
    meta_bodies: Table<'t, u64, &'static [u8]>,
    statuses: Table<'t, (&'static str, u64), &'static [u8]>,
    template_history: Table<'t, (&'static str, u64), &'static [u8]>,
    indexes: super::messages::Indexes<'t>,
    directory: super::directory::Directory<'t>,
    queue: Queue<'t>,
    router: Router<'t>,
}

impl<'t> IngestTables<'t> {
    pub fn open(tx: &'t WriteTransaction) -> Result<Self, Error> {
        Ok(IngestTables {
            tx,
            meta: tx.open_table(META)?,
            dedupe: tx.open_table(DEDUPE)?,
            events: tx.open_table(EVENTS)?,
            meta_bodies: tx.open_table(META_BODIES)?,
            statuses: tx.open_table(STATUSES)?,
            template_history: tx.open_table(TEMPLATE_HISTORY)?,
            indexes: super::messages::Indexes::open(tx)?,
            directory: super::directory::Directory::open(tx)?,
            queue: Queue::open(tx)?,
            router: Router::open(tx)?,
        })
    }

    /// Records attempts' outcomes, none of which stops its listener (that
    /// writes the listeners, which the router holds open here).
    pub fn record_outcomes(&mut self, outcomes: &[Outcome]) -> Result<(), Error> {
        for outcome in outcomes {
            if record(&mut self.queue.rows, outcome)?.is_some() {
                return Err(Error::bug(
                    "an outcome that stops its listener, on the ingest's tables",
                ));
            }
        }
        Ok(())
    }

    /// Moves the counter `key` on: a write on the shared tables, for the writer's tests.
    #[cfg(test)]
    pub fn count_for_test(&mut self, key: &str) -> Result<(), Error> {
        next_id_in(&mut self.meta, key).map(drop)
    }
}

/// Stores `events` and queues their deliveries; the deliveries come back too,
/// for the dispatcher's fast path.
fn ingest(
    t: &mut IngestTables<'_>,
    events: &[InboundEvent],
    now_ms: u64,
) -> Result<(IngestReport, Vec<Fresh>), Error> {
    let mut report = IngestReport::default();
    let mut fresh = Vec::new();
    for event in events {
        if t.dedupe.get(event.dedupe_key.as_str())?.is_some() {
            report.duplicates += 1;
            continue;
        }
        let event_id = store_event(&mut t.meta, &mut t.events, event, now_ms)?;
        t.dedupe.insert(event.dedupe_key.as_str(), event_id)?;
        if let Some(status) = &event.status {
            t.indexes.add(&t.statuses, status, event_id)?;
            t.statuses.insert(
                (status.message_id.as_str(), event_id),
                status_row::encode(status).as_slice(),
            )?;
        }
        if let Some((template_id, change)) = template_change(event, now_ms) {
            t.template_history.insert(
                (template_id.as_str(), event_id),
                enc(&change, "template history")?.as_slice(),
            )?;
        }
        report.accept(&event.event_type);
        t.directory.learn_from(event, now_ms)?;
        super::wabas::learn_from(t.tx, event, now_ms)?;
        let mut meta_body: Option<Vec<u8>> = None;
        let lane = Lane::for_event(&event.event_type);
        for (listener_id, format) in t.router.listeners_for(event)? {
            let body = match format {
                Format::Meta => match &meta_body {
                    Some(body) => body.clone(),
                    None => meta_body
                        .insert(store_meta_body(&mut t.meta_bodies, event_id, event)?)
                        .clone(),
                },
                _ => event.body.clone(),
            };
            let delivery = t
                .queue
                .add(&mut t.meta, &listener_id, event_id, now_ms, lane)?;
            report.deliveries += 1;
            fresh.push(Fresh {
                due: Due {
                    delivery,
                    listener: None,
                    body,
                },
                lane,
            });
        }
    }
    Ok((report, fresh))
}

/// Finds the listeners an event goes to: by WABA and subscribed pattern, then
/// each listener's state and filters.
struct Router<'t> {
    routes: Table<'t, (&'static str, &'static str, &'static str), ()>,
    listeners: Table<'t, &'static str, &'static [u8]>,
    /// Listeners decoded so far in this commit (no job that writes the
    /// listeners has run since, so none changed); `None`: routed but gone.
    decoded: HashMap<String, Option<Listener>>,
}

impl<'t> Router<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, Error> {
        Ok(Router {
            routes: tx.open_table(LISTENER_ROUTES)?,
            listeners: tx.open_table(LISTENERS)?,
            decoded: HashMap::new(),
        })
    }

    /// Each listener's id and the format it takes.
    fn listeners_for(&mut self, event: &InboundEvent) -> Result<Vec<(String, Format)>, Error> {
        let waba = event.waba_id.as_str();
        let mut ids: Vec<String> = Vec::new();
        // A WABA has a handful of routes: one scan of them all is cheaper than
        // a lookup for each pattern that could cover the type.
        for row in self.routes.range((waba, "", "")..)? {
            let (key, _) = row?;
            let (w, pattern, listener_id) = key.value();
            if w != waba {
                break;
            }
            // A listener subscribed to both a type and its prefix gets it once.
            if covers(pattern, &event.event_type) && !ids.iter().any(|id| id == listener_id) {
                ids.push(listener_id.to_string());
            }
        }
        let facts = Facts {
            event_type: &event.event_type,
            phone_number_id: Some(event.phone_number_id.as_str()).filter(|p| !p.is_empty()),
            status: event.facet.as_deref(),
            message_type: event.facet.as_deref(),
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(listener) = self.listener(id)? else {
                continue;
            };
            if listener.stopped_reason.is_none()
                && !listener.paused
                && listener.filters.admit(&facts)
            {
                out.push((listener.id.clone(), listener.format));
            }
        }
        Ok(out)
    }

    fn listener(&mut self, id: String) -> Result<Option<&Listener>, Error> {
        let decoded = match self.decoded.entry(id) {
            Entry::Occupied(seen) => seen.into_mut(),
            Entry::Vacant(new) => {
                let raw = self.listeners.get(new.key().as_str())?;
                // Routing needs no secret: it stays sealed, and ingest decrypts nothing.
                let listener = match raw {
                    Some(raw) => Some(dec::<Listener>(raw.value(), "listener")?),
                    None => None,
                };
                new.insert(listener)
            }
        };
        Ok(decoded.as_ref())
    }
}

/// Stores the event as Meta sent it, for listeners in Meta's format; returns it.
fn store_meta_body(
    bodies: &mut Table<'_, u64, &'static [u8]>,
    event_id: u64,
    event: &InboundEvent,
) -> Result<Vec<u8>, Error> {
    let body = meta_body(event)?;
    bodies.insert(event_id, body.as_slice())?;
    Ok(body)
}

/// The tables a new delivery is written to: its row, the outbox the workers
/// take from (the urgent one for calls), and the per-listener index.
struct Queue<'t> {
    rows: Rows<'t>,
    by_listener: Table<'t, (&'static str, u64), ()>,
}

impl<'t> Queue<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, Error> {
        Ok(Queue {
            rows: Rows::open(tx)?,
            by_listener: tx.open_table(LISTENER_DELIVERIES)?,
        })
    }

    /// One delivery of `event_id` to `listener_id`, due now.
    fn add(
        &mut self,
        meta: &mut Table<'_, &'static str, u64>,
        listener_id: &str,
        event_id: u64,
        now_ms: u64,
        lane: Lane,
    ) -> Result<Delivery, Error> {
        let delivery = Delivery {
            id: next_id_in(meta, "next_delivery")?,
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
        let rows = &mut self.rows;
        rows.deliveries
            .insert(delivery.id, enc(&delivery, "delivery")?.as_slice())?;
        let outbox = match lane {
            Lane::Urgent => &mut rows.urgent,
            Lane::Normal => &mut rows.outbox,
        };
        outbox.insert((now_ms, delivery.id), ())?;
        self.by_listener.insert((listener_id, delivery.id), ())?;
        Ok(delivery)
    }
}

/// Stores `event` and queues it for `listener_id` alone: no dedupe key, no
/// status history, no window (a test event must not look like a real user).
fn queue_for_one(
    tx: &WriteTransaction,
    event: &InboundEvent,
    listener: &Listener,
    now_ms: u64,
) -> Result<(Delivery, Lane), Error> {
    let mut meta = tx.open_table(META)?;
    let event_id = store_event(&mut meta, &mut tx.open_table(EVENTS)?, event, now_ms)?;
    if listener.format == Format::Meta {
        store_meta_body(&mut tx.open_table(META_BODIES)?, event_id, event)?;
    }
    let lane = Lane::for_event(&event.event_type);
    let delivery = Queue::open(tx)?.add(&mut meta, &listener.id, event_id, now_ms, lane)?;
    Ok((delivery, lane))
}

type EventsTable<'t> =
    Table<'t, u64, (&'static str, &'static str, &'static str, u64, &'static [u8])>;

fn store_event(
    meta: &mut Table<'_, &'static str, u64>,
    stored: &mut EventsTable<'_>,
    event: &InboundEvent,
    now_ms: u64,
) -> Result<u64, Error> {
    let event_id = next_id_in(meta, "next_event")?;
    stored.insert(
        event_id,
        (
            event.event_type.as_str(),
            event.waba_id.as_str(),
            event.phone_number_id.as_str(),
            now_ms,
            event.body.as_slice(),
        ),
    )?;
    Ok(event_id)
}
