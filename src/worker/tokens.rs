//! The token keeper: every `--token-check-interval` it refreshes long-lived Meta
//! tokens that expire within 10 days (`fb_exchange_token`), checks the others
//! with `/debug_token`, and marks an account `needs_reconnect` when Meta refuses
//! its token. It also forgets expired logins and connect links.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::model::{Account, AccountStatus, Settings};
use crate::domain::time::{now_ms, now_secs};
use crate::domain::tokens::{
    apply, expiry_of, reason_from_meta, refresh_due, refusal_in, token_refused, Verdict,
};
use crate::error::Error;
use crate::meta::Graph;
use crate::store::Store;

/// The first round comes soon after start: a gateway that was stopped for weeks
/// may hold tokens close to expiry.
const FIRST_ROUND_AFTER: Duration = Duration::from_secs(30);

pub struct TokenKeeper {
    pub store: Store,
    pub graph: Graph,
    pub interval: Duration,
}

impl TokenKeeper {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wait = self.interval.min(FIRST_ROUND_AFTER);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
            self.round(&shutdown).await;
            wait = self.interval;
        }
    }

    async fn round(&self, shutdown: &CancellationToken) {
        if let Err(e) = self.store.purge_connect_leftovers(now_ms()).await {
            tracing::warn!(error = %e, "could not forget expired logins and links");
        }
        let (settings, accounts) = match (self.store.settings(), self.store.accounts()) {
            (Ok(s), Ok(a)) => (s, a),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "token check skipped");
                return;
            }
        };
        // Without the app's credentials Meta answers nothing about tokens.
        if !settings.is_configured() {
            return;
        }
        // An account waiting for a reconnect needs a person, not another
        // call; a sandbox's token is not Meta's.
        let due = accounts
            .into_iter()
            .filter(|a| a.status == AccountStatus::Ok && a.sandbox.is_none());
        for account in due {
            if shutdown.is_cancelled() {
                return;
            }
            self.keep(account, &settings).await;
        }
    }

    async fn keep(&self, account: Account, settings: &Settings) {
        let graph = self.graph.clone();
        let app = settings.clone();
        let token = account.access_token.clone();
        let expires_at = account.token_expires_at;
        let verdict = tokio::task::spawn_blocking(move || {
            check(&graph, &app, &token, expires_at, now_secs())
        })
        .await
        .unwrap_or_else(|e| Verdict::Unknown(e.to_string()));
        log(&account.id, &verdict);
        if matches!(verdict, Verdict::Unknown(_)) {
            return;
        }
        let checked = account.access_token;
        let now = now_ms();
        let saved = self
            .store
            .update_account(account.id.clone(), move |stored| {
                // A reconnect while Meta was being asked brought a newer token: keep that.
                if stored.access_token != checked {
                    return false;
                }
                apply(stored, &verdict, now);
                true
            })
            .await;
        if let Err(e) = saved {
            tracing::warn!(account = %account.id, error = %e, "could not record the token check");
        }
    }
}

/// One account's token: refreshed when due, else (or when the refresh failed for
/// a reason other than the token) checked with `/debug_token`. Runs blocking.
fn check(
    graph: &Graph,
    app: &Settings,
    token: &str,
    expires_at: Option<u64>,
    now_secs: u64,
) -> Verdict {
    if refresh_due(expires_at, now_secs) {
        match graph.exchange_long_lived(&app.client_id, &app.client_secret, token) {
            Ok(issued) => {
                return Verdict::Refreshed {
                    token: issued.access_token,
                    expires_at: issued.expires_in.map(|s| now_secs.saturating_add(s)),
                }
            }
            Err(Error::Meta(e)) if token_refused(&e) => {
                return Verdict::Refused(reason_from_meta(&e))
            }
            Err(e) => {
                tracing::warn!(error = %e, "token refresh failed; checking the token instead")
            }
        }
    }
    match graph.debug_token(token, &app.client_id, &app.client_secret) {
        Ok(debug) => match refusal_in(&debug) {
            Some(reason) => Verdict::Refused(reason),
            None => Verdict::Healthy {
                expires_at: expiry_of(&debug),
            },
        },
        Err(e) => Verdict::Unknown(e.to_string()),
    }
}

fn log(account: &str, verdict: &Verdict) {
    match verdict {
        Verdict::Refreshed { expires_at, .. } => {
            tracing::info!(%account, ?expires_at, "Meta token refreshed")
        }
        Verdict::Healthy { .. } => tracing::debug!(%account, "Meta token fine"),
        Verdict::Refused(reason) => {
            tracing::warn!(%account, %reason, "Meta refused the token: account needs a reconnect")
        }
        Verdict::Unknown(why) => {
            tracing::warn!(%account, %why, "could not check the token; trying again next round")
        }
    }
}
