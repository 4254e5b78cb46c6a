//! Persists what the webhook has seen (the setup checklist's facts) every few
//! seconds when it changed, and once more at shutdown. The webhook path itself
//! only updates memory, so recording costs it no commit.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::webhook_health::WebhookWatch;
use crate::store::Store;

const EVERY: Duration = Duration::from_secs(5);

pub struct FactsFlusher {
    pub store: Store,
    pub watch: Arc<WebhookWatch>,
}

impl FactsFlusher {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(EVERY) => false,
                _ = shutdown.cancelled() => true,
            };
            self.flush().await;
            if stop {
                return;
            }
        }
    }

    async fn flush(&self) {
        let Some(facts) = self.watch.take_dirty() else {
            return;
        };
        if let Err(e) = self.store.put_webhook_facts(facts).await {
            tracing::warn!(error = %e, "cannot save the webhook facts; will try again");
            self.watch.mark_dirty();
        }
    }
}
