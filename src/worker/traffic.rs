//! Persists the backoffice's traffic counters about once a minute, and once
//! more at shutdown: the minutes that changed since the last write, and the
//! removal of those older than the charts' 24 hours. The counting paths
//! (webhook, ingest, delivery) only touch memory.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::time::now_ms;
use crate::domain::traffic::{minute_of, Traffic, WINDOW};
use crate::store::Store;

const EVERY: Duration = Duration::from_secs(60);

pub struct TrafficFlusher {
    pub store: Store,
    pub traffic: Arc<Traffic>,
}

impl TrafficFlusher {
    pub async fn run(self, shutdown: CancellationToken) {
        // The minute the last write covered: it is written again next time, as
        // it may have counted more after the write; and so is the one before
        // it, since an ingest counts at the time it was received, which can
        // be a minute before its commit ends.
        let mut from = minute_of(now_ms());
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(EVERY) => false,
                _ = shutdown.cancelled() => true,
            };
            from = self.flush(from).await;
            if stop {
                return;
            }
        }
    }

    /// Writes the minutes from `from` on; returns where the next write starts
    /// (still `from` after a failure, so those minutes are tried again).
    async fn flush(&self, from: u64) -> u64 {
        let now = now_ms();
        let rows = self.traffic.rows_since(from, now);
        let keep_from = (minute_of(now) + 1).saturating_sub(WINDOW);
        match self.store.put_traffic(rows, keep_from).await {
            Ok(()) => minute_of(now).saturating_sub(1),
            Err(e) => {
                tracing::warn!(error = %e, "cannot save the traffic counts; will try again");
                from
            }
        }
    }
}
