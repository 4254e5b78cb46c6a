//! Takes due deliveries from the outbox and runs them with bounded concurrency.
//! A row stays in the outbox until its outcome is committed, so a crash at any
//! moment means "sent again", never "lost".

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Sender;
use crate::domain::delivery::{Attempt, Next, RetryPolicy};
use crate::domain::ids::random_unit;
use crate::domain::time::now_ms;
use crate::metrics::Metrics;
use crate::store::{Due, Lane, Outcome, Store};

/// Longest nap when nothing is due; a new event wakes the dispatcher sooner.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// The fewest and most deliveries one outbox read takes (twice the
/// concurrency between those): enough to read rarely, few enough that a
/// listener removed meanwhile gets at most that many more.
const MIN_BATCH: usize = 32;
const MAX_BATCH: usize = 1024;

/// Deliveries that may be started and not yet recorded, per permit: enough
/// for the next attempts to start while the last ones are being committed.
const UNRECORDED_PER_PERMIT: usize = 2;

/// Attempts in flight for call events' first attempts, on top of
/// `--delivery-concurrency`: a backlog or a hanging receiver holds every
/// ordinary permit, never these.
const URGENT_CONCURRENCY: usize = 16;

pub struct Dispatcher {
    pub store: Store,
    pub sender: Arc<Sender>,
    pub policy: RetryPolicy,
    pub concurrency: usize,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// How long to wait for attempts in flight when shutting down.
    pub drain_timeout: Duration,
}

struct Shared {
    store: Store,
    sender: Arc<Sender>,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    in_flight: InFlight,
    outcomes: mpsc::UnboundedSender<(Outcome, OwnedSemaphorePermit)>,
    /// Deliveries started and not yet recorded, over both lanes: when
    /// commits fall behind, sending stops, so neither memory nor what a crash
    /// would send again grows with the backlog.
    unrecorded: Arc<Semaphore>,
}

/// Deliveries taken from the outbox and not yet recorded: queued here, being
/// sent, or waiting for their outcome's commit. None is read from the outbox twice.
type InFlight = Arc<Mutex<HashSet<u64>>>;

/// One outbox and what is taken from it: read in batches into a bounded
/// queue, started as permits free up.
struct LaneQueue {
    lane: Lane,
    permits: Arc<Semaphore>,
    queue: VecDeque<Due>,
    /// How many a read takes at most; the queue never holds more.
    batch: usize,
    /// `Store::listeners_version` when the queue was read: once a listener
    /// changes, what was queued for it (its URL, secret, state) is stale.
    version: u64,
}

impl Dispatcher {
    pub async fn run(self, shutdown: CancellationToken) {
        let (outcomes, recorded) = mpsc::unbounded_channel();
        let in_flight = InFlight::default();
        let unrecorded = Arc::new(Semaphore::new(
            (URGENT_CONCURRENCY + self.concurrency) * UNRECORDED_PER_PERMIT,
        ));
        let recorder = tokio::spawn(record_outcomes(
            self.store.clone(),
            in_flight.clone(),
            self.wake.clone(),
            recorded,
        ));
        let shared = Arc::new(Shared {
            store: self.store,
            sender: self.sender,
            policy: self.policy,
            wake: self.wake,
            metrics: self.metrics,
            in_flight,
            outcomes,
            unrecorded,
        });
        let mut lanes = [
            LaneQueue::new(Lane::Urgent, URGENT_CONCURRENCY),
            LaneQueue::new(Lane::Normal, self.concurrency),
        ];
        let mut tasks = JoinSet::new();
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let mut started = 0;
            // While the disk fails no outcome can be recorded, so a delivery
            // made now would be made again once the store is reopened.
            if shared.store.fault().is_none() {
                for lane in &mut lanes {
                    started += lane.start(&shared, &mut tasks);
                }
            }
            if started == 0 {
                let wait = shared.idle_wait();
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
        let drained = tokio::time::timeout(self.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("deliveries still in flight at shutdown will be retried after restart");
        }
        // The last outcomes are committed before the store closes: the
        // recorder ends once every sender (the attempts' and ours) is gone.
        drop(tasks);
        drop(lanes);
        drop(shared);
        if tokio::time::timeout(self.drain_timeout, recorder)
            .await
            .is_err()
        {
            tracing::warn!("delivery outcomes not yet recorded at shutdown; those deliveries will be made again after restart");
        }
    }
}

impl LaneQueue {
    fn new(lane: Lane, concurrency: usize) -> LaneQueue {
        LaneQueue {
            lane,
            permits: Arc::new(Semaphore::new(concurrency)),
            queue: VecDeque::new(),
            batch: (concurrency * 2).clamp(MIN_BATCH, MAX_BATCH),
            version: 0,
        }
    }

    /// Forgets what was queued once a listener changed: it is read again.
    fn drop_if_stale(&mut self, shared: &Shared) {
        if self.queue.is_empty() || self.version == shared.store.listeners_version() {
            return;
        }
        let mut in_flight = shared
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for due in self.queue.drain(..) {
            in_flight.remove(&due.delivery.id);
        }
    }

    /// Starts what the free permits allow, reading the outbox again when the
    /// queue runs low; returns how many started.
    fn start(&mut self, shared: &Arc<Shared>, tasks: &mut JoinSet<()>) -> usize {
        self.drop_if_stale(shared);
        if self.queue.len() < self.batch / 2 {
            if self.queue.is_empty() {
                // Read before the rows: a change committed meanwhile shows.
                self.version = shared.store.listeners_version();
            }
            let wanted = self.batch - self.queue.len();
            self.queue.extend(shared.take_due(self.lane, wanted));
        }
        let mut started = 0;
        while !self.queue.is_empty() {
            let Ok(unrecorded) = shared.unrecorded.clone().try_acquire_owned() else {
                break;
            };
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                break;
            };
            let Some(item) = self.queue.pop_front() else {
                break;
            };
            let shared = shared.clone();
            tasks.spawn(async move { shared.attempt(item, permit, unrecorded).await });
            started += 1;
        }
        started
    }
}

/// Commits outcomes as they come, together: one write for all the attempts
/// that finished while the last one was being committed.
async fn record_outcomes(
    store: Store,
    in_flight: InFlight,
    wake: Arc<Notify>,
    mut recorded: mpsc::UnboundedReceiver<(Outcome, OwnedSemaphorePermit)>,
) {
    let mut batch = Vec::new();
    while recorded.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The permits go when the outcomes are committed (or given up on).
        let (outcomes, _unrecorded): (Vec<Outcome>, Vec<OwnedSemaphorePermit>) =
            std::mem::take(&mut batch).into_iter().unzip();
        let ids: Vec<u64> = outcomes.iter().map(|o| o.delivery_id).collect();
        if let Err(e) = store.record_outcomes(outcomes).await {
            // The rows are still in the outbox: they will be attempted again.
            tracing::error!(deliveries = ids.len(), error = %e, "cannot record delivery outcomes");
        }
        let mut taken = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &ids {
            taken.remove(id);
        }
        drop(taken);
        wake.notify_one();
    }
}

impl Shared {
    fn take_due(&self, lane: Lane, limit: usize) -> Vec<Due> {
        // Held across the read, not cloned: only recorded outcomes wait on it.
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match self.store.due(lane, now_ms(), limit, &in_flight) {
            Ok(due) => {
                in_flight.extend(due.iter().map(|d| d.delivery.id));
                due
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                Vec::new()
            }
        }
    }

    fn idle_wait(&self) -> Duration {
        // A row already due is in flight; its completion wakes us.
        let now = now_ms();
        match self.store.next_due_at() {
            Ok(Some(at)) if at > now => Duration::from_millis(at - now).min(IDLE_WAIT),
            _ => IDLE_WAIT,
        }
    }

    async fn attempt(
        self: Arc<Self>,
        mut due: Due,
        permit: OwnedSemaphorePermit,
        unrecorded: OwnedSemaphorePermit,
    ) {
        let delivery = due.delivery.clone();
        let body = std::mem::take(&mut due.body);
        let attempt = match &due.listener {
            Some(l) if l.stopped_reason.is_none() => {
                Metrics::add(&self.metrics.delivery_attempts_total, 1);
                self.sender
                    .send(
                        &l.url,
                        &l.secret,
                        l.format,
                        &delivery.webhook_id,
                        Bytes::from(body),
                    )
                    .await
            }
            Some(l) => Attempt::Failed {
                status: None,
                error: format!(
                    "listener stopped: {}",
                    l.stopped_reason.clone().unwrap_or_default()
                ),
                retry_after: None,
            },
            None => Attempt::Failed {
                status: None,
                error: "listener removed".into(),
                retry_after: None,
            },
        };
        let now = now_ms();
        let next = match &due.listener {
            Some(l) if l.stopped_reason.is_none() => {
                self.policy
                    .next(&attempt, delivery.attempts + 1, now, random_unit())
            }
            _ => Next::GiveUp,
        };
        self.log(&due, &attempt, &next);
        let (status_code, error) = match &attempt {
            Attempt::Delivered { status } => (Some(*status), None),
            Attempt::Gone => (
                Some(410),
                Some("410 Gone: the receiver asked to stop".to_string()),
            ),
            Attempt::Failed { status, error, .. } => (*status, Some(error.clone())),
        };
        let outcome = Outcome {
            delivery_id: delivery.id,
            at_ms: now,
            status_code,
            error,
            next,
        };
        // The permit is free once the exchange is over (the next queued
        // delivery may start now); the delivery stays in flight until its
        // outcome is committed.
        drop(permit);
        self.wake.notify_one();
        if self.outcomes.send((outcome, unrecorded)).is_err() {
            tracing::error!(
                delivery = delivery.id,
                "the outcome recorder stopped; the delivery will be attempted again"
            );
        }
    }

    fn log(&self, due: &Due, attempt: &Attempt, next: &Next) {
        let d = &due.delivery;
        match (attempt, next) {
            (Attempt::Delivered { status }, _) => {
                Metrics::add(&self.metrics.deliveries_succeeded_total, 1);
                tracing::info!(delivery = d.id, listener = %d.listener_id, attempt = d.attempts + 1, status, "delivered");
            }
            (_, Next::RetryAt(at)) => {
                tracing::warn!(delivery = d.id, listener = %d.listener_id, attempt = d.attempts + 1, ?attempt, retry_in_ms = at.saturating_sub(now_ms()), "delivery failed, will retry");
            }
            _ => {
                Metrics::add(&self.metrics.deliveries_failed_total, 1);
                tracing::warn!(delivery = d.id, listener = %d.listener_id, attempt = d.attempts + 1, ?attempt, "delivery failed for good");
            }
        }
    }
}
