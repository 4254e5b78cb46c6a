//! Takes due deliveries from the outbox and runs them with bounded concurrency.
//! A row stays in the outbox until its outcome is committed, so a crash at any
//! moment means "sent again", never "lost".

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
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
    in_flight: Mutex<HashSet<u64>>,
}

impl Dispatcher {
    pub async fn run(self, shutdown: CancellationToken) {
        let lanes = [
            (Lane::Urgent, Arc::new(Semaphore::new(URGENT_CONCURRENCY))),
            (Lane::Normal, Arc::new(Semaphore::new(self.concurrency))),
        ];
        let shared = Arc::new(Shared {
            store: self.store,
            sender: self.sender,
            policy: self.policy,
            wake: self.wake,
            metrics: self.metrics,
            in_flight: Mutex::new(HashSet::new()),
        });
        let mut tasks = JoinSet::new();
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            let mut started = 0;
            // While the disk fails no outcome can be recorded, so a delivery
            // made now would be made again once the store is reopened.
            let store_failing = shared.store.fault().is_some();
            for (lane, permits) in &lanes {
                let free = permits.available_permits();
                if free == 0 || store_failing {
                    continue;
                }
                for item in shared.take_due(*lane, free) {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        shared.forget(item.delivery.id);
                        continue;
                    };
                    let shared = shared.clone();
                    tasks.spawn(async move { shared.attempt(item, permit).await });
                    started += 1;
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
        if tokio::time::timeout(self.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!("deliveries still in flight at shutdown will be retried after restart");
        }
    }
}

impl Shared {
    fn take_due(&self, lane: Lane, limit: usize) -> Vec<Due> {
        let skip = self.in_flight.lock().map(|s| s.clone()).unwrap_or_default();
        match self.store.due(lane, now_ms(), limit, &skip) {
            Ok(due) => {
                if let Ok(mut set) = self.in_flight.lock() {
                    set.extend(due.iter().map(|d| d.delivery.id));
                }
                due
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                Vec::new()
            }
        }
    }

    /// Takes a delivery that was not started off the in-flight set.
    fn forget(&self, delivery_id: u64) {
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(&delivery_id);
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

    async fn attempt(self: Arc<Self>, mut due: Due, _permit: OwnedSemaphorePermit) {
        let delivery = due.delivery.clone();
        let body = std::mem::take(&mut due.body);
        let attempt = match &due.listener {
            Some(l) if l.stopped_reason.is_none() => {
                let sender = self.sender.clone();
                let (url, secret, format, webhook_id) = (
                    l.url.clone(),
                    l.secret.clone(),
                    l.format,
                    delivery.webhook_id.clone(),
                );
                Metrics::add(&self.metrics.delivery_attempts_total, 1);
                tokio::task::spawn_blocking(move || {
                    sender.send(&url, &secret, format, &webhook_id, &body)
                })
                .await
                .unwrap_or_else(|e| Attempt::Failed {
                    status: None,
                    error: format!("sender crashed: {e}"),
                    retry_after: None,
                })
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
        if let Err(e) = self.store.record_outcome(outcome).await {
            // The row is still in the outbox: it will be attempted again.
            tracing::error!(delivery = delivery.id, error = %e, "cannot record a delivery outcome");
        }
        self.forget(delivery.id);
        self.wake.notify_one();
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
