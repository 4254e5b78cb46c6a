//! Takes due deliveries from the outbox and runs them with bounded concurrency.
//! A row stays in the outbox until its outcome is committed, so a crash at any
//! moment means "sent again", never "lost".

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Sender;
use crate::domain::breaker::{Breakers, Change, Gate};
use crate::domain::delivery::{Attempt, Next, RetryPolicy};
use crate::domain::ids::random_unit;
use crate::domain::model::Listener;
use crate::domain::time::{now_ms, rfc3339_ms};
use crate::domain::traffic::Traffic;
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

/// Why an attempt was not made (see `domain::breaker`).
const NOT_SENT: &str = "not sent: the receiver kept its last attempts waiting without taking them; one attempt at a time tries it again, and attempts resume once one is taken";

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
    /// Each listener's attempts per minute, for the backoffice's charts.
    pub traffic: Arc<Traffic>,
    /// How long to wait for attempts in flight when shutting down.
    pub drain_timeout: Duration,
}

struct Shared {
    store: Store,
    sender: Arc<Sender>,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    traffic: Arc<Traffic>,
    in_flight: InFlight,
    outcomes: mpsc::UnboundedSender<(Outcome, OwnedSemaphorePermit)>,
    /// Deliveries started and not yet recorded, over both lanes: when
    /// commits fall behind, sending stops, so neither memory nor what a crash
    /// would send again grows with the backlog.
    unrecorded: Arc<Semaphore>,
    /// The earliest retry the recorder has scheduled since the outbox was
    /// last read for retries (`u64::MAX`: none).
    next_retry: Arc<AtomicU64>,
    /// Listeners whose receivers keep attempts waiting (see `breaker`).
    breakers: Mutex<Breakers>,
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
    /// When to read the outbox even if nothing says it holds unread rows:
    /// its next row falls due then (a retry), or a second has passed.
    read_at: u64,
    /// The last outbox read found more due than it took: until one does
    /// not, the queue is filled from the outbox alone, oldest first.
    behind: bool,
}

impl Dispatcher {
    pub async fn run(self, shutdown: CancellationToken) {
        let (outcomes, recorded) = mpsc::unbounded_channel();
        let in_flight = InFlight::default();
        let unrecorded = Arc::new(Semaphore::new(
            (URGENT_CONCURRENCY + self.concurrency) * UNRECORDED_PER_PERMIT,
        ));
        let next_retry = Arc::new(AtomicU64::new(u64::MAX));
        let recorder = tokio::spawn(record_outcomes(
            self.store.clone(),
            in_flight.clone(),
            self.wake.clone(),
            next_retry.clone(),
            recorded,
        ));
        let timeout_ms = u64::try_from(self.sender.timeout().as_millis()).unwrap_or(u64::MAX);
        let breakers = Breakers::new(timeout_ms);
        let shared = Arc::new(Shared {
            store: self.store,
            sender: self.sender,
            policy: self.policy,
            wake: self.wake,
            metrics: self.metrics,
            traffic: self.traffic,
            in_flight,
            outcomes,
            unrecorded,
            next_retry,
            breakers: Mutex::new(breakers),
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
                let wait = match shared.store.fault() {
                    None => shared.idle_wait(&lanes),
                    Some(_) => IDLE_WAIT,
                };
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
            read_at: 0,
            behind: false,
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
        // Their rows are read again, with the listeners as they are now.
        self.read_at = 0;
    }

    /// Fills the queue, never past `batch`: from the outbox when it holds
    /// rows never handed over or falling due, then with what ingest handed
    /// over, unless the outbox is behind (a backlog is sent oldest first,
    /// not overtaken by what keeps arriving).
    fn fill(&mut self, shared: &Shared) {
        self.drop_if_stale(shared);
        if self.queue.is_empty() {
            // Read before the rows: a change committed meanwhile shows.
            self.version = shared.store.listeners_version();
        }
        if self.queue.len() < self.batch / 2 && self.outbox_to_read(shared) {
            self.read_outbox(shared);
        }
        if self.behind {
            // What was handed over is in the outbox, behind the rows read now.
            return;
        }
        let room = self.batch - self.queue.len();
        let handed = shared.take(room, |store, in_flight| {
            store.handed_over(self.lane, room, in_flight)
        });
        self.queue.extend(handed);
    }

    fn read_outbox(&mut self, shared: &Shared) {
        let now = now_ms();
        let wanted = self.batch - self.queue.len();
        let due = shared.take(wanted, |store, in_flight| {
            store.due(self.lane, now, wanted, in_flight)
        });
        self.behind = due.len() == wanted;
        self.read_at = if self.behind {
            // A backlog: read on as soon as the queue runs low. What waits
            // in the handoff is in the outbox too, behind these rows.
            shared.store.forget_handed(self.lane);
            now
        } else {
            let next = shared.store.next_due_after(self.lane, now);
            let later = now + IDLE_WAIT.as_millis() as u64;
            next.ok().flatten().map_or(later, |at| at.min(later))
        };
        self.queue.extend(due);
    }

    /// Whether the outbox may hold due rows the queue has not seen.
    fn outbox_to_read(&self, shared: &Shared) -> bool {
        let now = now_ms();
        let retry_due = self.lane == Lane::Normal
            && shared.next_retry.load(Ordering::Acquire) <= now
            && shared.next_retry.swap(u64::MAX, Ordering::AcqRel) <= now;
        // Both flags are taken (neither test may short-circuit the other):
        // the read that follows covers them.
        let unread = shared.store.outbox_unread(self.lane);
        unread || retry_due || self.read_at <= now
    }

    /// Starts what the free permits allow, filling the queue first; returns
    /// how many started.
    fn start(&mut self, shared: &Arc<Shared>, tasks: &mut JoinSet<()>) -> usize {
        self.fill(shared);
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
    next_retry: Arc<AtomicU64>,
    mut recorded: mpsc::UnboundedReceiver<(Outcome, OwnedSemaphorePermit)>,
) {
    let mut batch = Vec::new();
    while recorded.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The permits go when the outcomes are committed (or given up on).
        let (outcomes, _unrecorded): (Vec<Outcome>, Vec<OwnedSemaphorePermit>) =
            std::mem::take(&mut batch).into_iter().unzip();
        let ids: Vec<u64> = outcomes.iter().map(|o| o.delivery_id).collect();
        let retry = outcomes.iter().filter_map(|o| match o.next {
            Next::RetryAt(at) => Some(at),
            _ => None,
        });
        let retry = retry.min();
        match store.record_outcomes(outcomes).await {
            // After the commit: a read that misses it sees the row.
            Ok(()) => {
                if let Some(at) = retry {
                    next_retry.fetch_min(at, Ordering::AcqRel);
                }
            }
            // The rows are still in the outbox: they will be attempted again.
            Err(e) => {
                tracing::error!(deliveries = ids.len(), error = %e, "cannot record delivery outcomes");
            }
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
    /// What `read` takes (handed over or read from the outbox), marked in
    /// flight under the same lock, so no delivery is taken twice.
    fn take(
        &self,
        limit: usize,
        read: impl FnOnce(&Store, &HashSet<u64>) -> Result<Vec<Due>, crate::error::Error>,
    ) -> Vec<Due> {
        if limit == 0 {
            return Vec::new();
        }
        // Held across the read, not cloned: only recorded outcomes wait on it.
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match read(&self.store, &in_flight) {
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

    /// Until the earliest outbox read or retry a lane with room plans, a
    /// second at most; a handed-over delivery or a finished exchange wakes
    /// the loop sooner (a lane without room waits for those alone).
    fn idle_wait(&self, lanes: &[LaneQueue]) -> Duration {
        let now = now_ms();
        let retry = self.next_retry.load(Ordering::Acquire);
        let next = lanes
            .iter()
            .filter(|l| l.queue.len() < l.batch / 2)
            .map(|l| match l.lane {
                // Flagged after this round's fill looked (a stale or refused
                // handoff): read at once.
                _ if self.store.outbox_unread_pending(l.lane) => now,
                Lane::Normal => l.read_at.min(retry),
                Lane::Urgent => l.read_at,
            })
            .min()
            .unwrap_or(u64::MAX);
        // Never 0: a read planned for now has just been made.
        Duration::from_millis(next.saturating_sub(now).max(1)).min(IDLE_WAIT)
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
                self.attempt_through_breaker(l, &delivery.webhook_id, body)
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

    /// Sends, unless the listener's circuit is open: then the attempt fails
    /// at once and takes its retry, holding no permit for the timeout.
    async fn attempt_through_breaker(
        &self,
        l: &Listener,
        webhook_id: &str,
        body: Vec<u8>,
    ) -> Attempt {
        let started = now_ms();
        let gate = self.breakers().gate(&l.id, started);
        if gate == Gate::Hold {
            Metrics::add(&self.metrics.delivery_attempts_not_sent_total, 1);
            // A failed attempt in the listener's history: in its chart too.
            self.traffic.delivery(started, &l.id, false);
            return Attempt::Failed {
                status: None,
                error: NOT_SENT.into(),
                retry_after: None,
            };
        }
        Metrics::add(&self.metrics.delivery_attempts_total, 1);
        let attempt = self
            .sender
            .send(&l.url, &l.secret, l.format, webhook_id, Bytes::from(body))
            .await;
        let now = now_ms();
        let delivered = matches!(attempt, Attempt::Delivered { .. });
        self.traffic.delivery(now, &l.id, delivered);
        let mut breakers = self.breakers();
        let verdict = breakers.verdict_of(delivered, now.saturating_sub(started));
        let change = breakers.verdict(&l.id, verdict, gate == Gate::Probe, now);
        drop(breakers);
        match change {
            Some(Change::Opened { until_ms }) => {
                tracing::warn!(listener = %l.id, until = %rfc3339_ms(until_ms), "the receiver keeps attempts waiting without taking them: its deliveries are not sent until then, but for one attempt");
            }
            Some(Change::Closed) => {
                tracing::info!(listener = %l.id, "the receiver takes its attempts again: its deliveries are sent");
            }
            None => {}
        }
        attempt
    }

    fn breakers(&self) -> std::sync::MutexGuard<'_, Breakers> {
        self.breakers.lock().unwrap_or_else(PoisonError::into_inner)
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
