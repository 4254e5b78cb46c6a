//! Applies the retention period: hourly, removes what is older than it.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::time::now_ms;
use crate::error::Error;
use crate::store::{Pruned, Store};

const FIRST_RUN: Duration = Duration::from_secs(60);
const INTERVAL: Duration = Duration::from_secs(3600);
/// A breath between batches so ingest commits interleave with the clean-up.
const PAUSE: Duration = Duration::from_millis(20);

pub struct Janitor {
    pub store: Store,
    pub retention: Duration,
}

impl Janitor {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wait = FIRST_RUN;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
            wait = INTERVAL;
            match self.sweep(now_ms(), &shutdown).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "retention: removed old rows"),
                Err(e) => tracing::error!(error = %e, "retention sweep failed; will try again"),
            }
        }
    }

    /// Removes, batch by batch, what was older than the retention period at
    /// `now_ms`; returns how many rows went. Stops early on shutdown.
    pub async fn sweep(&self, now_ms: u64, shutdown: &CancellationToken) -> Result<usize, Error> {
        let cutoff = now_ms.saturating_sub(self.retention.as_millis() as u64);
        let threshold = self.store.first_event_at_or_after(cutoff)?;
        let s = &self.store;
        let mut total = drain(shutdown, || s.prune_deliveries(cutoff)).await?;
        total += pass(shutdown, |after| s.prune_statuses(threshold, after)).await?;
        total += pass(shutdown, |after| s.prune_template_history(threshold, after)).await?;
        total += pass(shutdown, |after| s.prune_dedupe(threshold, after)).await?;
        total += drain(shutdown, || s.prune_events(threshold)).await?;
        total += pass(shutdown, |after| {
            s.prune_status_recipients(threshold, after)
        })
        .await?;
        total += drain(shutdown, || s.prune_awaiting_delivery(cutoff)).await?;
        total += drain(shutdown, || s.prune_quarantine(cutoff)).await?;
        total += pass(shutdown, |after| s.prune_windows(cutoff, after)).await?;
        total += pass(shutdown, |after| s.prune_user_links(cutoff, after)).await?;
        total += pass(shutdown, |after| s.prune_media(cutoff, after)).await?;
        Ok(total)
    }
}

/// Runs `batch` until it removes nothing; returns how many rows went.
async fn drain<F, Fut>(shutdown: &CancellationToken, mut batch: F) -> Result<usize, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, Error>>,
{
    let mut total = 0;
    while !shutdown.is_cancelled() {
        let removed = batch().await?;
        if removed == 0 {
            break;
        }
        total += removed;
        tokio::time::sleep(PAUSE).await;
    }
    Ok(total)
}

/// Runs `batch` over the whole table, each one going on where the one before
/// stopped; returns how many rows went.
async fn pass<K, F, Fut>(shutdown: &CancellationToken, mut batch: F) -> Result<usize, Error>
where
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<Pruned<K>, Error>>,
{
    let mut total = 0;
    let mut after = None;
    while !shutdown.is_cancelled() {
        let done = batch(after.take()).await?;
        total += done.removed;
        // Only a write holds up ingest; a batch that only read needs no breath.
        if done.removed > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        match done.next {
            Some(key) => after = Some(key),
            None => break,
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{InboundEvent, StatusRecord};

    const DAY: u64 = 86_400_000;

    fn delivered(i: u32) -> InboundEvent {
        let message = format!("wamid.{i:05}");
        InboundEvent {
            event_type: crate::domain::events::MESSAGE_STATUS.into(),
            waba_id: "W".into(),
            phone_number_id: "P".into(),
            dedupe_key: format!("s:{message}:delivered"),
            body: b"{}".to_vec(),
            status: Some(StatusRecord {
                message_id: message,
                status: "delivered".into(),
                recipient_id: Some(format!("420{i:06}")),
                recipient_user_id: Some(format!("CZ.{i}")),
                waba_id: "W".into(),
                phone_number_id: "P".into(),
                ..StatusRecord::default()
            }),
            ..InboundEvent::default()
        }
    }

    #[tokio::test]
    async fn a_sweep_expires_every_old_row_of_more_than_a_batch_and_keeps_the_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        store
            .ingest((0..2_600).map(delivered).collect(), DAY)
            .await
            .unwrap();
        store
            .ingest((2_600..2_700).map(delivered).collect(), 5 * DAY)
            .await
            .unwrap();
        let janitor = Janitor {
            store: store.clone(),
            retention: Duration::from_millis(3 * DAY),
        };
        let never = CancellationToken::new();
        // Per old status: its event, dedupe key and history row, the
        // recipient index by phone and by BSUID, the phone ↔ BSUID link both ways.
        assert_eq!(janitor.sweep(5 * DAY, &never).await.unwrap(), 2_600 * 7);
        assert!(store.status_history("wamid.02599").unwrap().is_empty());
        assert!(store.messages_to("420002599", 10).unwrap().is_empty());
        assert_eq!(store.status_history("wamid.02600").unwrap().len(), 1);
        assert_eq!(store.messages_to("CZ.2600", 10).unwrap(), ["wamid.02600"]);
        assert_eq!(janitor.sweep(5 * DAY, &never).await.unwrap(), 0);
        store.close();
    }
}
