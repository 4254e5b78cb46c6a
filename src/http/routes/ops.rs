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

/// The OpenAPI 3 document of every route (checked against the router in its tests).
pub const OPENAPI: &str = include_str!("../../../static/openapi.json");

pub fn openapi() -> Resp {
    response::with_type(StatusCode::OK, "application/json", OPENAPI)
}

pub fn metrics(state: &AppState) -> Resp {
    response::with_type(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        state.metrics.render(),
    )
}
