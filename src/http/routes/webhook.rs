//! Meta's webhook: the verification handshake and signed event POSTs.

use std::time::Instant;

use hyper::StatusCode;

use crate::error::Error;
use crate::http::body::read_budgeted;
use crate::http::guards::Public;
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::usecase::ingest::{self, Handshake};

/// `GET …/events?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
pub async fn verify(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let (mode, token, challenge) = (
        req.query("hub.mode"),
        req.query("hub.verify_token"),
        req.query("hub.challenge"),
    );
    let hub = Handshake {
        mode: mode.as_deref(),
        verify_token: token.as_deref(),
        challenge: challenge.as_deref(),
    };
    Ok(match ingest::verify(state, hub) {
        Some(challenge) => response::text(StatusCode::OK, challenge.to_string()),
        None => response::text(
            StatusCode::FORBIDDEN,
            "verification failed: hub.verify_token does not match the configured verifyToken",
        ),
    })
}

/// `POST …/events`: verify, then store durably, then answer 200.
pub async fn receive(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let started = Instant::now();
    Metrics::add(&state.metrics.webhooks_received_total, 1);
    let signature = req.header("x-hub-signature-256").map(str::to_string);
    // Read before any refusal: an unread body makes hyper close the connection,
    // and a client that reuses it fails its next request.
    let body = read_budgeted(req.body, state.max_body_bytes, &state.body_budget).await?;
    let received = ingest::receive(state, &body, signature.as_deref()).await?;
    let answer = response::json(StatusCode::OK, &received);
    state.metrics.webhook_times.observe(started.elapsed());
    Ok(answer)
}
