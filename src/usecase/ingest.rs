//! Meta's webhook: the verification handshake, and signed event bodies
//! verified, parsed and stored in one durable commit before Meta is answered.

use std::cell::Cell;
use std::sync::Arc;

use serde::Serialize;

use super::{Services, Wake};
use crate::domain::ids::constant_time_eq;
use crate::domain::model::InboundEvent;
use crate::domain::signature::verify_meta;
use crate::domain::time::now_ms;
use crate::domain::traffic::Traffic;
use crate::domain::webhook;
use crate::domain::webhook_health::FailureKind;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::store::{IngestReport, Store};

/// Meta's `hub.*` query of the verify handshake.
pub struct Handshake<'a> {
    pub mode: Option<&'a str>,
    pub verify_token: Option<&'a str>,
    pub challenge: Option<&'a str>,
}

/// The challenge to echo when the handshake is Meta's with our verify token.
pub fn verify<'a>(app: &Services, hub: Handshake<'a>) -> Option<&'a str> {
    let expected = app.settings().verify_token;
    let token_ok = !expected.is_empty()
        && hub
            .verify_token
            .is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()));
    if hub.mode == Some("subscribe") {
        app.watch.update(|f| f.record_handshake(now_ms(), token_ok));
    }
    match (hub.mode, hub.challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            tracing::info!("Meta's webhook verification succeeded");
            Some(challenge)
        }
        _ => {
            tracing::warn!(token_matched = token_ok, "webhook verification refused");
            None
        }
    }
}

/// What became of a signed body.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Received {
    Stored(IngestReport),
    /// Signed but unusable: kept in the quarantine for the admin.
    Quarantined {
        quarantined: u64,
        reason: String,
    },
}

/// Verifies `body` against `X-Hub-Signature-256` with the app secret, then
/// stores its events (with their deliveries) in one commit, or quarantines a
/// signed body that cannot be used.
pub async fn receive(
    app: &Services,
    body: &[u8],
    signature: Option<&str>,
) -> Result<Received, Error> {
    let now = now_ms();
    let secret = app.settings().client_secret;
    if secret.is_empty() {
        app.traffic.webhook(now, true);
        app.watch.update(|f| f.record_unconfigured(now));
        return Err(Error::NotConfigured(
            "no clientSecret is configured yet, so events cannot be verified; Meta retries later",
        ));
    }
    if let Err(why) = verify_meta(body, signature, &secret) {
        Metrics::add(&app.metrics.webhook_signature_failures_total, 1);
        app.traffic.webhook(now, true);
        let kind = match signature {
            None => FailureKind::Missing,
            Some(_) => FailureKind::Mismatch,
        };
        app.watch.update(|f| f.record_bad_signature(now, kind));
        return Err(Error::BadSignature(why));
    }
    app.traffic.webhook(now, false);
    app.watch.update(|f| f.record_signed_event(now));
    Intake::new(app).store_at(body, now).await
}

/// What storing a verified body needs, owned: the sandbox feeds back its
/// statuses from a task of its own, through the same pipeline as Meta's.
#[derive(Clone)]
pub struct Intake {
    store: Store,
    metrics: Arc<Metrics>,
    wake: Wake,
    traffic: Arc<Traffic>,
}

impl Intake {
    pub fn new(app: &Services) -> Intake {
        Intake {
            store: app.store.clone(),
            metrics: app.metrics.clone(),
            wake: app.wake.clone(),
            traffic: app.traffic.clone(),
        }
    }

    /// Stores a body that needs no signature: it comes from wabridge itself
    /// or from a sandbox account's key.
    pub async fn store(&self, body: &[u8]) -> Result<Received, Error> {
        self.store_at(body, now_ms()).await
    }

    /// Stores parsed events with their deliveries in one commit: a body's
    /// from [`Intake::store_at`], or a sandbox's, which are checked as events
    /// before they are stored and so are not parsed twice.
    pub async fn store_events(
        &self,
        events: Vec<InboundEvent>,
        now: u64,
    ) -> Result<Received, Error> {
        let report = self.store.ingest(events, now).await?;
        Metrics::add(&self.metrics.events_accepted_total, report.accepted as u64);
        Metrics::add(
            &self.metrics.events_duplicate_total,
            report.duplicates as u64,
        );
        if report.deliveries > 0 {
            self.wake.ring();
        }
        self.traffic.events(
            now,
            report.accepted_types.iter().map(|(t, n)| (t.as_str(), *n)),
        );
        Ok(Received::Stored(report))
    }

    /// Stores a verified body's events with their deliveries in one commit,
    /// or quarantines a body that cannot be used.
    async fn store_at(&self, body: &[u8], now: u64) -> Result<Received, Error> {
        let (store, metrics) = (&self.store, &self.metrics);
        // The parser asks for a portfolio's WABAs as it meets business-level
        // entries; a read that fails must fail the webhook (Meta redelivers it),
        // not route its events to nobody.
        let parsed = {
            let failed = Cell::new(None);
            let businesses = |id: &str| {
                store.business_wabas(id).unwrap_or_else(|e| {
                    failed.set(Some(e));
                    Vec::new()
                })
            };
            let parsed = webhook::parse_with(body, now, &businesses);
            if let Some(e) = failed.take() {
                return Err(e);
            }
            parsed
        };
        match parsed {
            Ok(events) => self.store_events(events, now).await,
            Err(webhook::Unusable(reason)) => {
                tracing::warn!(%reason, "signed webhook body quarantined");
                let id = store.quarantine(reason.clone(), body.to_vec(), now).await?;
                Metrics::add(&metrics.webhooks_quarantined_total, 1);
                Ok(Received::Quarantined {
                    quarantined: id,
                    reason,
                })
            }
        }
    }
}
