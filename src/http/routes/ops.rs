//! For monitors: health and counters.

use hyper::StatusCode;
use serde_json::json;

use crate::error::Error;
use crate::http::response::{self, Resp};
use crate::http::AppState;

/// Healthy when the database answers a read.
pub fn healthz(state: &AppState) -> Result<Resp, Error> {
    state.store.next_due_at()?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"status": "ok", "version": crate::app::VERSION}),
    ))
}

pub fn metrics(state: &AppState) -> Resp {
    response::with_type(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        state.metrics.render(),
    )
}
