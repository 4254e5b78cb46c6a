//! `match (method, path)` routing, one log line per request.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use percent_encoding::percent_decode_str;
use tokio::sync::Notify;

use super::response::{self, Resp};
use super::routes::{admin, backup, flow, ops, webhook};
use crate::domain::model::Settings;
use crate::domain::urlguard::UrlGuard;
use crate::error::Error;
use crate::meta::Graph;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler may use.
pub struct AppState {
    pub store: Store,
    /// The admin settings, kept in memory so the webhook path reads no table for them.
    pub settings: RwLock<Settings>,
    pub admin_token_hash: String,
    pub graph: Graph,
    pub guard: UrlGuard,
    pub public_url: String,
    pub max_body_bytes: usize,
    /// Wakes the delivery dispatcher when new deliveries are queued.
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn settings(&self) -> Settings {
        self.settings.read().map(|s| s.clone()).unwrap_or_default()
    }
}

pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    // Only the path is logged: query strings carry tokens (hub.verify_token).
    let path = req.uri().path().to_string();
    let resp = match route(state, req, &method, &path).await {
        Ok(resp) => resp,
        Err(err) => {
            if matches!(err, Error::Storage(_)) {
                tracing::error!(error = %err, "request failed");
            }
            response::error(&err)
        }
    };
    tracing::info!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        ms = %format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    resp
}

async fn route(
    state: Arc<AppState>,
    req: Request<Incoming>,
    method: &Method,
    path: &str,
) -> Result<Resp, Error> {
    let decoded: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let seg: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let s = &state;
    match (method, seg.as_slice()) {
        (&Method::GET, ["healthz"]) => ops::healthz(s),
        (&Method::GET, ["metrics"]) => Ok(ops::metrics(s)),
        (&Method::GET, ["plugins", "appmixer", "whatsapp", "events"]) => {
            Ok(webhook::verify(s, &req))
        }
        (&Method::POST, ["plugins", "appmixer", "whatsapp", "events"]) => {
            webhook::receive(s, req).await
        }

        (&Method::GET, ["api", "v1", "admin", "config"]) => admin::get_config(s, req),
        (&Method::PUT, ["api", "v1", "admin", "config"]) => admin::put_config(s, req).await,
        (&Method::GET, ["api", "v1", "admin", "accounts"]) => admin::list_accounts(s, req),
        (&Method::POST, ["api", "v1", "admin", "accounts"]) => admin::add_account(s, req).await,
        (&Method::DELETE, ["api", "v1", "admin", "accounts", id]) => {
            admin::delete_account(s, req, id).await
        }
        (&Method::GET, ["api", "v1", "admin", "quarantine"]) => admin::list_quarantine(s, req),
        (&Method::POST, ["api", "v1", "admin", "backup"]) => backup::backup(s, req).await,

        (&Method::GET, ["api", "v1", "me"]) => flow::me(s, req),
        (&Method::GET, ["api", "v1", "listeners"]) => flow::list_listeners(s, req),
        (&Method::POST, ["api", "v1", "listeners"]) => flow::create_listener(s, req).await,
        (&Method::GET, ["api", "v1", "listeners", id]) => flow::get_listener(s, req, id),
        (&Method::DELETE, ["api", "v1", "listeners", id]) => {
            flow::delete_listener(s, req, id).await
        }
        (&Method::GET, ["api", "v1", "listeners", id, "deliveries"]) => {
            flow::list_deliveries(s, req, id)
        }
        (&Method::POST, ["api", "v1", "listeners", id, "deliveries", delivery, "redeliver"]) => {
            flow::redeliver(s, req, id, delivery).await
        }
        (&Method::POST, ["api", "v1", "listeners", id, "redeliver-failed"]) => {
            flow::redeliver_failed(s, req, id).await
        }
        (&Method::GET, ["api", "v1", "messages", id]) => flow::message_status(s, req, id),
        _ => Ok(response::json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": {"code": "not_found", "message": format!("no route for {method} {path}")}}),
        )),
    }
}
