//! Routing from one table of (method, path pattern) — the same table the
//! OpenAPI document is checked against, so the two cannot drift apart — and
//! one log line per request.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use percent_encoding::percent_decode_str;
use tokio::sync::Notify;

use super::response::{self, Resp};
use super::routes::{admin, flow, media, messages, numbers, ops, webhook};
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

/// Every route. `{name}` in a pattern matches one non-empty path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Metrics,
    OpenApi,
    WebhookVerify,
    WebhookReceive,
    GetConfig,
    PutConfig,
    ListAccounts,
    AddAccount,
    DeleteAccount,
    ListQuarantine,
    Me,
    BusinessAccounts,
    PhoneNumbers,
    Templates,
    PhoneNumber,
    RegistrationStatus,
    Register,
    Deregister,
    EnsureRegistered,
    SendMessage,
    MarkRead,
    Window,
    UploadMedia,
    GetProfile,
    UpdateProfile,
    DownloadMedia,
    ListListeners,
    CreateListener,
    GetListener,
    DeleteListener,
    ListDeliveries,
    Redeliver,
    RedeliverFailed,
    MessageStatus,
}

pub const ROUTES: &[(Method, &str, Route)] = &[
    (Method::GET, "/healthz", Route::Healthz),
    (Method::GET, "/metrics", Route::Metrics),
    (Method::GET, "/api/openapi.json", Route::OpenApi),
    (
        Method::GET,
        "/plugins/appmixer/whatsapp/events",
        Route::WebhookVerify,
    ),
    (
        Method::POST,
        "/plugins/appmixer/whatsapp/events",
        Route::WebhookReceive,
    ),
    (Method::GET, "/api/v1/admin/config", Route::GetConfig),
    (Method::PUT, "/api/v1/admin/config", Route::PutConfig),
    (Method::GET, "/api/v1/admin/accounts", Route::ListAccounts),
    (Method::POST, "/api/v1/admin/accounts", Route::AddAccount),
    (
        Method::DELETE,
        "/api/v1/admin/accounts/{accountId}",
        Route::DeleteAccount,
    ),
    (
        Method::GET,
        "/api/v1/admin/quarantine",
        Route::ListQuarantine,
    ),
    (Method::GET, "/api/v1/me", Route::Me),
    (
        Method::GET,
        "/api/v1/business-accounts",
        Route::BusinessAccounts,
    ),
    (
        Method::GET,
        "/api/v1/business-accounts/{wabaId}/phone-numbers",
        Route::PhoneNumbers,
    ),
    (
        Method::GET,
        "/api/v1/business-accounts/{wabaId}/templates",
        Route::Templates,
    ),
    (
        Method::GET,
        "/api/v1/phone-numbers/{phoneNumberId}",
        Route::PhoneNumber,
    ),
    (
        Method::GET,
        "/api/v1/phone-numbers/{phoneNumberId}/registration-status",
        Route::RegistrationStatus,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/register",
        Route::Register,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/deregister",
        Route::Deregister,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/ensure-registered",
        Route::EnsureRegistered,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/messages",
        Route::SendMessage,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/messages/{messageId}/read",
        Route::MarkRead,
    ),
    (
        Method::GET,
        "/api/v1/phone-numbers/{phoneNumberId}/windows/{user}",
        Route::Window,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/media",
        Route::UploadMedia,
    ),
    (
        Method::GET,
        "/api/v1/phone-numbers/{phoneNumberId}/business-profile",
        Route::GetProfile,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/business-profile",
        Route::UpdateProfile,
    ),
    (Method::GET, "/api/v1/media/{mediaId}", Route::DownloadMedia),
    (Method::GET, "/api/v1/listeners", Route::ListListeners),
    (Method::POST, "/api/v1/listeners", Route::CreateListener),
    (
        Method::GET,
        "/api/v1/listeners/{listenerId}",
        Route::GetListener,
    ),
    (
        Method::DELETE,
        "/api/v1/listeners/{listenerId}",
        Route::DeleteListener,
    ),
    (
        Method::GET,
        "/api/v1/listeners/{listenerId}/deliveries",
        Route::ListDeliveries,
    ),
    (
        Method::POST,
        "/api/v1/listeners/{listenerId}/deliveries/{deliveryId}/redeliver",
        Route::Redeliver,
    ),
    (
        Method::POST,
        "/api/v1/listeners/{listenerId}/redeliver-failed",
        Route::RedeliverFailed,
    ),
    (
        Method::GET,
        "/api/v1/messages/{messageId}",
        Route::MessageStatus,
    ),
];

/// Matches decoded path segments against a pattern; returns the `{…}` values.
fn matches(pattern: &str, segments: &[String]) -> Option<Vec<String>> {
    let parts: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, seg) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            if seg.is_empty() {
                return None;
            }
            params.push(seg.clone());
        } else if part != seg {
            return None;
        }
    }
    Some(params)
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    Found(Route, Vec<String>),
    /// The path exists, with other methods.
    WrongMethod,
    NotFound,
}

pub fn resolve(method: &Method, path: &str) -> Resolved {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let mut path_known = false;
    for (m, pattern, route) in ROUTES {
        if let Some(params) = matches(pattern, &segments) {
            if m == method {
                return Resolved::Found(*route, params);
            }
            path_known = true;
        }
    }
    if path_known {
        Resolved::WrongMethod
    } else {
        Resolved::NotFound
    }
}

pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    // Only the path is logged: query strings carry tokens (hub.verify_token).
    let path = req.uri().path().to_string();
    let resp = match route(&state, req, &method, &path).await {
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
    state: &AppState,
    req: Request<Incoming>,
    method: &Method,
    path: &str,
) -> Result<Resp, Error> {
    match resolve(method, path) {
        Resolved::Found(route, params) => dispatch(state, req, route, &params).await,
        Resolved::WrongMethod => Ok(response::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": {"code": "method_not_allowed", "message": format!("{path} does not take {method}; see /api/openapi.json")}}),
        )),
        Resolved::NotFound => Ok(response::json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": {"code": "not_found", "message": format!("no route for {method} {path}")}}),
        )),
    }
}

async fn dispatch(
    s: &AppState,
    req: Request<Incoming>,
    route: Route,
    params: &[String],
) -> Result<Resp, Error> {
    let p = |i: usize| params.get(i).map(String::as_str).unwrap_or_default();
    match route {
        Route::Healthz => ops::healthz(s),
        Route::Metrics => Ok(ops::metrics(s)),
        Route::OpenApi => Ok(ops::openapi()),
        Route::WebhookVerify => Ok(webhook::verify(s, &req)),
        Route::WebhookReceive => webhook::receive(s, req).await,
        Route::GetConfig => admin::get_config(s, req),
        Route::PutConfig => admin::put_config(s, req).await,
        Route::ListAccounts => admin::list_accounts(s, req),
        Route::AddAccount => admin::add_account(s, req).await,
        Route::DeleteAccount => admin::delete_account(s, req, p(0)).await,
        Route::ListQuarantine => admin::list_quarantine(s, req),
        Route::Me => flow::me(s, req),
        Route::BusinessAccounts => numbers::business_accounts(s, req).await,
        Route::PhoneNumbers => numbers::phone_numbers(s, req, p(0)).await,
        Route::Templates => numbers::templates(s, req, p(0)).await,
        Route::PhoneNumber => numbers::phone_number(s, req, p(0)).await,
        Route::RegistrationStatus => numbers::registration_status(s, req, p(0)).await,
        Route::Register => numbers::register(s, req, p(0)).await,
        Route::Deregister => numbers::deregister(s, req, p(0)).await,
        Route::EnsureRegistered => numbers::ensure_registered(s, req, p(0)).await,
        Route::SendMessage => messages::send(s, req, p(0)).await,
        Route::MarkRead => messages::mark_read(s, req, p(0), p(1)).await,
        Route::Window => messages::window(s, req, p(0), p(1)).await,
        Route::UploadMedia => media::upload(s, req, p(0)).await,
        Route::GetProfile => numbers::get_profile(s, req, p(0)).await,
        Route::UpdateProfile => numbers::update_profile(s, req, p(0)).await,
        Route::DownloadMedia => media::download(s, req, p(0)).await,
        Route::ListListeners => flow::list_listeners(s, req),
        Route::CreateListener => flow::create_listener(s, req).await,
        Route::GetListener => flow::get_listener(s, req, p(0)),
        Route::DeleteListener => flow::delete_listener(s, req, p(0)).await,
        Route::ListDeliveries => flow::list_deliveries(s, req, p(0)),
        Route::Redeliver => flow::redeliver(s, req, p(0), p(1)).await,
        Route::RedeliverFailed => flow::redeliver_failed(s, req, p(0)).await,
        Route::MessageStatus => flow::message_status(s, req, p(0)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(ops::OPENAPI).expect("openapi.json parses");
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_some() {
                    out.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes_served() {
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in static/openapi.json: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "in static/openapi.json but not served: {unserved:?}"
        );
    }

    #[test]
    fn every_route_is_reachable_with_its_parameters() {
        for (method, pattern, route) in ROUTES {
            let path = pattern
                .split('/')
                .map(|s| if s.starts_with('{') { "X1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            assert_eq!(
                resolve(method, &path),
                Resolved::Found(*route, vec!["X1".to_string(); pattern.matches('{').count()]),
                "{method} {pattern}"
            );
        }
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        assert_eq!(resolve(&Method::GET, "/nope"), Resolved::NotFound);
        assert_eq!(
            resolve(&Method::DELETE, "/api/v1/me"),
            Resolved::WrongMethod
        );
        assert_eq!(
            resolve(&Method::GET, "/api/v1/phone-numbers//messages"),
            Resolved::NotFound
        );
        assert_eq!(
            resolve(&Method::GET, "/api/v1/media/12%2034"),
            Resolved::Found(Route::DownloadMedia, vec!["12 34".into()])
        );
    }
}
