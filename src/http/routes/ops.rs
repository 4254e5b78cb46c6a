//! For monitors: health and counters.

use hyper::StatusCode;
use serde_json::json;

use crate::domain::time::now_ms;
use crate::error::Error;
use crate::http::guards::Public;
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::metrics::{render_gauges, Gauge};

/// Healthy when the database answers a read and takes new events: while the
/// disk fails, or the data dir is short of its reserve, the answer is the 503
/// the webhook gets, saying why, so a monitor sees what Meta sees.
pub async fn healthz(state: &AppState, _: Public, _: Req) -> Result<Resp, Error> {
    if let Some(fault) = state.store.refusal() {
        return Err(Error::StorageUnavailable(fault));
    }
    state.store.next_due_at()?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"status": "ok", "version": crate::VERSION}),
    ))
}

/// The OpenAPI 3 document of every route (checked against the router in its tests).
pub const OPENAPI: &str = include_str!("../../../static/openapi.json");

pub async fn openapi(_: &AppState, _: Public, _: Req) -> Result<Resp, Error> {
    Ok(response::with_type(
        StatusCode::OK,
        "application/json",
        OPENAPI,
    ))
}

/// The counters since start, then gauges read from the store: what a monitor
/// alerts on (a growing delivery lag, accounts that need reconnecting, the
/// disk filling up). While the database cannot be read, the disk gauges are
/// still there: that is when they matter.
pub async fn metrics(state: &AppState, _: Public, _: Req) -> Result<Resp, Error> {
    let mut out = state.metrics.render();
    render_gauges(&mut out, &disk_gauges(state));
    state.store.commit_times().render(
        &mut out,
        "store_commit_seconds",
        "Time each durable write (a group commit) took, fsync included: every webhook's 200 waits for one. A slow or stalling disk shows here first.",
    );
    state.metrics.webhook_times.render(
        &mut out,
        "webhook_seconds",
        "Time from a Meta webhook POST's request head to its 200: its body, signature check and durable commit. What is over this on Meta's side is the network's.",
    );
    match gauges(state) {
        Ok(gauges) => render_gauges(&mut out, &gauges),
        Err(e) => tracing::warn!(error = %e, "metrics without the store's gauges"),
    }
    Ok(response::with_type(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        out,
    ))
}

fn disk_gauges(state: &AppState) -> Vec<Gauge> {
    let (space, reserve) = state.store.space();
    let mut out = vec![Gauge::single(
        "store_writable",
        "1 while the database takes new events; 0 while the disk fails or the data dir is short of --min-free-space.",
        u64::from(state.store.refusal().is_none()),
    )];
    if let Some(space) = space {
        out.extend([
            Gauge::single(
                "data_dir_free_bytes",
                "Free space on the data dir's filesystem (what an unprivileged writer may use).",
                space.free,
            ),
            Gauge::single(
                "data_dir_size_bytes",
                "Size of the data dir's filesystem.",
                space.total,
            ),
            Gauge::single(
                "data_dir_min_free_bytes",
                "The reserve (--min-free-space): below it new events are refused with 503.",
                reserve.bytes(space.total),
            ),
        ]);
    }
    out
}

fn gauges(state: &AppState) -> Result<Vec<Gauge>, Error> {
    let backlog = state.store.backlog()?;
    let lag_ms = backlog
        .earliest_due_at
        .map_or(0, |due| now_ms().saturating_sub(due));
    // Counted from the records without opening a secret: this route is unauthenticated.
    let (accounts, needs_reconnect) = state.store.account_counts()?;
    let (active, paused, stopped) = state.store.listener_counts()?;
    Ok(vec![
        Gauge::single(
            "deliveries_queued",
            "Deliveries waiting in the outbox, due now or retrying later.",
            backlog.queued,
        ),
        Gauge::single(
            "delivery_lag_seconds",
            "How long the earliest queued delivery has been due (0: none is late).",
            lag_ms / 1000,
        ),
        Gauge::single(
            "quarantined_webhooks",
            "Signed webhook bodies kept in the quarantine.",
            backlog.quarantined,
        ),
        Gauge {
            name: "accounts",
            help: "Connected accounts by token health.",
            samples: vec![
                (Some(("status", "ok")), accounts - needs_reconnect),
                (Some(("status", "needs_reconnect")), needs_reconnect),
            ],
        },
        Gauge {
            name: "listeners",
            help: "Flow webhooks by state: active, paused by the admin, or stopped by a 410.",
            samples: vec![
                (Some(("state", "active")), active),
                (Some(("state", "paused")), paused),
                (Some(("state", "stopped")), stopped),
            ],
        },
        Gauge::single(
            "connections_open",
            "Client connections open now (at most --max-connections).",
            state.connections.open() as u64,
        ),
        Gauge::single(
            "webhook_body_budget_free_bytes",
            "What is left of --webhook-body-budget for webhook bodies being received.",
            state.body_budget.available() as u64,
        ),
    ])
}
