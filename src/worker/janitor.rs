//! Applies the retention period: hourly, removes what is older than it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::time::now_ms;
use crate::error::Error;
use crate::store::Store;

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
        let mut total = 0;
        for step in 0..10 {
            loop {
                if shutdown.is_cancelled() {
                    return Ok(total);
                }
                let removed = match step {
                    0 => self.store.prune_deliveries(cutoff).await?,
                    1 => self.store.prune_statuses(threshold).await?,
                    2 => self.store.prune_dedupe(threshold).await?,
                    3 => self.store.prune_events(threshold).await?,
                    4 => self.store.prune_status_recipients(threshold).await?,
                    5 => self.store.prune_awaiting_delivery(cutoff).await?,
                    6 => self.store.prune_quarantine(cutoff).await?,
                    7 => self.store.prune_windows(cutoff).await?,
                    8 => self.store.prune_user_links(cutoff).await?,
                    _ => self.store.prune_media(cutoff).await?,
                };
                if removed == 0 {
                    break;
                }
                total += removed;
                tokio::time::sleep(PAUSE).await;
            }
        }
        Ok(total)
    }
}
