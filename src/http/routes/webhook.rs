//! Meta's webhook: the verification handshake and signed event POSTs.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use crate::domain::ids::constant_time_eq;
use crate::domain::signature::verify_meta;
use crate::domain::time::now_ms;
use crate::domain::webhook;
use crate::domain::webhook_health::FailureKind;
use crate::error::Error;
use crate::http::body::read_budgeted;
use crate::http::query::query_value;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::metrics::Metrics;

/// `GET …/events?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
pub fn verify(state: &AppState, req: &Request<Incoming>) -> Resp {
    let mode = query_value(req.uri(), "hub.mode");
    let token = query_value(req.uri(), "hub.verify_token");
    let challenge = query_value(req.uri(), "hub.challenge");
    let expected = state.settings().verify_token;
    let token_ok = !expected.is_empty()
        && token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()));
    if mode.as_deref() == Some("subscribe") {
        state
            .watch
            .update(|f| f.record_handshake(now_ms(), token_ok));
    }
    match (mode.as_deref(), challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            tracing::info!("Meta's webhook verification succeeded");
            response::text(StatusCode::OK, challenge)
        }
        _ => {
            tracing::warn!(token_matched = token_ok, "webhook verification refused");
            response::text(
                StatusCode::FORBIDDEN,
                "verification failed: hub.verify_token does not match the configured verifyToken",
            )
        }
    }
}

/// `POST …/events`: verify, then store durably, then answer 200.
pub async fn receive(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    Metrics::add(&state.metrics.webhooks_received_total, 1);
    let (parts, body) = req.into_parts();
    let signature = parts
        .headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Read before any refusal: an unread body makes hyper close the connection,
    // and a client that reuses it fails its next request.
    let body = read_budgeted(body, state.max_body_bytes, &state.body_budget).await?;
    let now = now_ms();
    let secret = state.settings().client_secret;
    if secret.is_empty() {
        state.watch.update(|f| f.record_unconfigured(now));
        return Err(Error::NotConfigured(
            "no clientSecret is configured yet, so events cannot be verified; Meta retries later",
        ));
    }
    if let Err(why) = verify_meta(&body, signature.as_deref(), &secret) {
        Metrics::add(&state.metrics.webhook_signature_failures_total, 1);
        let kind = match signature {
            None => FailureKind::Missing,
            Some(_) => FailureKind::Mismatch,
        };
        state.watch.update(|f| f.record_bad_signature(now, kind));
        return Err(Error::BadSignature(why));
    }
    state.watch.update(|f| f.record_signed_event(now));
    let businesses = |id: &str| state.store.business_wabas(id).unwrap_or_default();
    match webhook::parse_with(&body, now, &businesses) {
        Ok(events) => {
            let report = state.store.ingest(events, now).await?;
            Metrics::add(&state.metrics.events_accepted_total, report.accepted as u64);
            Metrics::add(
                &state.metrics.events_duplicate_total,
                report.duplicates as u64,
            );
            if report.deliveries > 0 {
                state.wake.notify_one();
            }
            Ok(response::json(StatusCode::OK, &report))
        }
        Err(webhook::Unusable(reason)) => {
            tracing::warn!(%reason, "signed webhook body quarantined");
            let id = state
                .store
                .quarantine(reason.clone(), body.to_vec(), now)
                .await?;
            Metrics::add(&state.metrics.webhooks_quarantined_total, 1);
            Ok(response::json(
                StatusCode::OK,
                &json!({"quarantined": id, "reason": reason}),
            ))
        }
    }
}
