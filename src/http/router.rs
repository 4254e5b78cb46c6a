//! Routing from one table of (method, path pattern) — the same table the
//! OpenAPI document is checked against, so the two cannot drift apart — and
//! one log line per request.
//!
//! Every route is in the table, the browser's too. Those are marked
//! [`Audience::Browser`]: the backoffice at `/admin` with its CSS and JS, the
//! customer's `/connect`, the Embedded Signup page and the OAuth callback. They
//! answer a person with HTML, a redirect or a static file, and take forms
//! guarded by a session and a CSRF token or by a one-time OAuth `state`: no API
//! a program calls from a description. So `static/openapi.json` leaves them out
//! and the drift test skips exactly them; none of them may live under `/api/`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use ipnet::IpNet;
use percent_encoding::percent_decode_str;
use tokio::sync::Notify;

use super::limits::{BodyBudget, Connections};
use super::pages;
use super::password_checks::PasswordChecks;
use super::response::{self, Resp};
use super::routes::backoffice::{self, Page};
use super::routes::{admin, backup, flow, media, messages, numbers, oauth, ops, webhook};
use super::session::Sessions;
use super::throttle::Throttle;
use crate::domain::model::Settings;
use crate::domain::urlguard::UrlGuard;
use crate::domain::webhook_health::WebhookWatch;
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
    /// Host of Meta's OAuth dialog (`--facebook-url`).
    pub facebook_url: String,
    /// Graph API version, also used for the dialog and the JS SDK.
    pub graph_version: String,
    /// How long a login's `state` stays usable.
    pub connect_state_ttl: Duration,
    pub max_body_bytes: usize,
    /// The open connections, bounded and shed oldest-idle first.
    pub connections: Arc<Connections>,
    /// Memory for webhook bodies being received, over all connections.
    pub body_budget: BodyBudget,
    /// The same for forms anyone may post (login, Meta's OAuth callback).
    pub form_budget: BodyBudget,
    /// Wakes the delivery dispatcher when new deliveries are queued.
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// What the webhook has seen, for the setup checklist.
    pub watch: Arc<WebhookWatch>,
    /// The browser backoffice's sessions and login throttle.
    pub backoffice: Backoffice,
    /// Wrong Bearer tokens (admin token, account API keys) per client address.
    pub api_throttle: Throttle,
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: Vec<IpNet>,
}

pub struct Backoffice {
    pub sessions: Sessions,
    pub throttle: Throttle,
    /// Argon2id verifications, on threads of their own (19 MiB each).
    pub password_checks: PasswordChecks,
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
    CreateConnectLink,
    ListConnectLinks,
    RevokeConnectLink,
    /// A consistent copy of the database, streamed (`application/octet-stream`).
    Backup,
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
    TestEvent,
    MessageStatus,
    /// `/connect?link=`: starts a customer's login.
    Connect,
    /// The Embedded Signup page.
    Signup,
    /// Meta's redirect (GET) or the signup page's form (POST).
    OAuthCallback,
    /// A page or form of the backoffice.
    Backoffice(Page),
}

/// Whom a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A program: JSON (or the webhook's and the operator's formats), described
    /// in `static/openapi.json`.
    Api,
    /// A person's browser: pages, forms, redirects and their assets; not in the document.
    Browser,
}

use Audience::{Api, Browser};

pub const ROUTES: &[(Method, &str, Route, Audience)] = &[
    (Method::GET, "/healthz", Route::Healthz, Api),
    (Method::GET, "/metrics", Route::Metrics, Api),
    (Method::GET, "/api/openapi.json", Route::OpenApi, Api),
    (
        Method::GET,
        "/plugins/appmixer/whatsapp/events",
        Route::WebhookVerify,
        Api,
    ),
    (
        Method::POST,
        "/plugins/appmixer/whatsapp/events",
        Route::WebhookReceive,
        Api,
    ),
    (Method::GET, "/api/v1/admin/config", Route::GetConfig, Api),
    (Method::PUT, "/api/v1/admin/config", Route::PutConfig, Api),
    (
        Method::GET,
        "/api/v1/admin/accounts",
        Route::ListAccounts,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/admin/accounts",
        Route::AddAccount,
        Api,
    ),
    (
        Method::DELETE,
        "/api/v1/admin/accounts/{accountId}",
        Route::DeleteAccount,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/admin/quarantine",
        Route::ListQuarantine,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/admin/connect-links",
        Route::CreateConnectLink,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/admin/connect-links",
        Route::ListConnectLinks,
        Api,
    ),
    (
        Method::DELETE,
        "/api/v1/admin/connect-links/{linkId}",
        Route::RevokeConnectLink,
        Api,
    ),
    (Method::POST, "/api/v1/admin/backup", Route::Backup, Api),
    (Method::GET, "/api/v1/me", Route::Me, Api),
    (
        Method::GET,
        "/api/v1/business-accounts",
        Route::BusinessAccounts,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/business-accounts/{wabaId}/phone-numbers",
        Route::PhoneNumbers,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/business-accounts/{wabaId}/templates",
        Route::Templates,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/phone-numbers/{phoneNumberId}",
        Route::PhoneNumber,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/phone-numbers/{phoneNumberId}/registration-status",
        Route::RegistrationStatus,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/register",
        Route::Register,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/deregister",
        Route::Deregister,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/ensure-registered",
        Route::EnsureRegistered,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/messages",
        Route::SendMessage,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/messages/{messageId}/read",
        Route::MarkRead,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/phone-numbers/{phoneNumberId}/windows/{user}",
        Route::Window,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/media",
        Route::UploadMedia,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/phone-numbers/{phoneNumberId}/business-profile",
        Route::GetProfile,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/phone-numbers/{phoneNumberId}/business-profile",
        Route::UpdateProfile,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/media/{mediaId}",
        Route::DownloadMedia,
        Api,
    ),
    (Method::GET, "/api/v1/listeners", Route::ListListeners, Api),
    (
        Method::POST,
        "/api/v1/listeners",
        Route::CreateListener,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/listeners/{listenerId}",
        Route::GetListener,
        Api,
    ),
    (
        Method::DELETE,
        "/api/v1/listeners/{listenerId}",
        Route::DeleteListener,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/listeners/{listenerId}/deliveries",
        Route::ListDeliveries,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/listeners/{listenerId}/deliveries/{deliveryId}/redeliver",
        Route::Redeliver,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/listeners/{listenerId}/redeliver-failed",
        Route::RedeliverFailed,
        Api,
    ),
    (
        Method::POST,
        "/api/v1/listeners/{listenerId}/test",
        Route::TestEvent,
        Api,
    ),
    (
        Method::GET,
        "/api/v1/messages/{messageId}",
        Route::MessageStatus,
        Api,
    ),
    // The customer connecting their WhatsApp account (docs/connect.md).
    (Method::GET, "/connect", Route::Connect, Browser),
    (
        Method::GET,
        "/plugins/appmixer/whatsapp/signup",
        Route::Signup,
        Browser,
    ),
    (
        Method::GET,
        "/auth/whatsapp/callback",
        Route::OAuthCallback,
        Browser,
    ),
    (
        Method::POST,
        "/auth/whatsapp/callback",
        Route::OAuthCallback,
        Browser,
    ),
    // The backoffice: pages are GETs, actions are POSTed forms.
    (
        Method::GET,
        "/admin/static/{file}",
        Route::Backoffice(Page::Asset),
        Browser,
    ),
    (
        Method::GET,
        "/admin",
        Route::Backoffice(Page::Home),
        Browser,
    ),
    (
        Method::GET,
        "/admin/login",
        Route::Backoffice(Page::Login),
        Browser,
    ),
    (
        Method::POST,
        "/admin/login",
        Route::Backoffice(Page::SubmitLogin),
        Browser,
    ),
    (
        Method::POST,
        "/admin/logout",
        Route::Backoffice(Page::Logout),
        Browser,
    ),
    (
        Method::GET,
        "/admin/setup",
        Route::Backoffice(Page::Setup),
        Browser,
    ),
    (
        Method::POST,
        "/admin/setup",
        Route::Backoffice(Page::SaveSetup),
        Browser,
    ),
    (
        Method::GET,
        "/admin/setup/checklist",
        Route::Backoffice(Page::Checklist),
        Browser,
    ),
    (
        Method::POST,
        "/admin/password",
        Route::Backoffice(Page::SetPassword),
        Browser,
    ),
    (
        Method::GET,
        "/admin/accounts",
        Route::Backoffice(Page::Accounts),
        Browser,
    ),
    (
        Method::POST,
        "/admin/accounts",
        Route::Backoffice(Page::AddAccount),
        Browser,
    ),
    (
        Method::POST,
        "/admin/accounts/{accountId}/rotate-key",
        Route::Backoffice(Page::RotateKey),
        Browser,
    ),
    (
        Method::POST,
        "/admin/accounts/{accountId}/remove",
        Route::Backoffice(Page::RemoveAccount),
        Browser,
    ),
    (
        Method::GET,
        "/admin/accounts/{accountId}/test-send",
        Route::Backoffice(Page::TestSend),
        Browser,
    ),
    (
        Method::POST,
        "/admin/accounts/{accountId}/test-send",
        Route::Backoffice(Page::SendTest),
        Browser,
    ),
    (
        Method::POST,
        "/admin/connect-links",
        Route::Backoffice(Page::MintConnectLink),
        Browser,
    ),
    (
        Method::POST,
        "/admin/connect-links/{linkId}/revoke",
        Route::Backoffice(Page::RevokeConnectLink),
        Browser,
    ),
    (
        Method::GET,
        "/admin/listeners",
        Route::Backoffice(Page::Listeners),
        Browser,
    ),
    (
        Method::POST,
        "/admin/listeners",
        Route::Backoffice(Page::AddListener),
        Browser,
    ),
    (
        Method::GET,
        "/admin/subscriptions",
        Route::Backoffice(Page::Subscriptions),
        Browser,
    ),
    (
        Method::POST,
        "/admin/subscriptions/{wabaId}/subscribe",
        Route::Backoffice(Page::Subscribe),
        Browser,
    ),
    (
        Method::GET,
        "/admin/listeners/{listenerId}",
        Route::Backoffice(Page::Listener),
        Browser,
    ),
    (
        Method::POST,
        "/admin/listeners/{listenerId}/pause",
        Route::Backoffice(Page::PauseListener),
        Browser,
    ),
    (
        Method::POST,
        "/admin/listeners/{listenerId}/resume",
        Route::Backoffice(Page::ResumeListener),
        Browser,
    ),
    (
        Method::POST,
        "/admin/listeners/{listenerId}/redeliver-failed",
        Route::Backoffice(Page::RedeliverFailed),
        Browser,
    ),
    (
        Method::POST,
        "/admin/listeners/{listenerId}/test",
        Route::Backoffice(Page::TestListener),
        Browser,
    ),
    (
        Method::POST,
        "/admin/listeners/{listenerId}/deliveries/{deliveryId}/redeliver",
        Route::Backoffice(Page::Redeliver),
        Browser,
    ),
    (
        Method::GET,
        "/admin/messages",
        Route::Backoffice(Page::Messages),
        Browser,
    ),
    (
        Method::GET,
        "/admin/messages/{messageId}",
        Route::Backoffice(Page::Message),
        Browser,
    ),
    (
        Method::GET,
        "/admin/events",
        Route::Backoffice(Page::Events),
        Browser,
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
    /// The path exists, with other methods: for whom it is, and the `Allow` value.
    WrongMethod(Audience, String),
    NotFound,
}

pub fn resolve(method: &Method, path: &str) -> Resolved {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let mut known = None;
    let mut allowed: Vec<&str> = Vec::new();
    for (m, pattern, route, audience) in ROUTES {
        if let Some(params) = matches(pattern, &segments) {
            if m == method {
                return Resolved::Found(*route, params);
            }
            known = Some(*audience);
            if !allowed.contains(&m.as_str()) {
                allowed.push(m.as_str());
            }
        }
    }
    match known {
        Some(audience) => Resolved::WrongMethod(audience, allowed.join(", ")),
        None => Resolved::NotFound,
    }
}

/// Whether a path is the backoffice's, whose misses are its own pages.
fn in_backoffice(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    // Only the path is logged: query strings carry tokens (hub.verify_token).
    let path = req.uri().path().to_string();
    let resp = match route(&state, req, &method, &path).await {
        Ok(resp) => resp,
        Err(err) => {
            match err {
                Error::Storage { .. } | Error::Internal { .. } => {
                    tracing::error!(error = %err, "request failed")
                }
                Error::BodyTimeout { .. } => {
                    Metrics::add(&state.metrics.request_bodies_timed_out_total, 1)
                }
                Error::Busy { .. } => Metrics::add(&state.metrics.requests_busy_total, 1),
                _ => {}
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
        Resolved::WrongMethod(audience, allow) => {
            let mut resp = wrong_method(audience, method, path);
            // RFC 9110: a 405 names the methods the resource does take.
            if let Ok(value) = hyper::header::HeaderValue::from_str(&allow) {
                resp.headers_mut().insert(hyper::header::ALLOW, value);
            }
            Ok(resp)
        }
        // The backoffice answers its own misses: the login for a visitor, a page
        // in its layout for the admin.
        Resolved::NotFound if in_backoffice(path) => {
            Ok(backoffice::handle(state, req, Page::Unknown, &[]).await)
        }
        Resolved::NotFound => Ok(response::json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": {"code": "not_found", "message": format!("no route for {method} {path}")}}),
        )),
    }
}

fn wrong_method(audience: Audience, method: &Method, path: &str) -> Resp {
    match audience {
        Browser if in_backoffice(path) => backoffice::method_not_allowed(),
        Browser => pages::notice(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not here",
            "This address is a page for your browser; open it as a link.",
            &[],
            None,
        ),
        Api => response::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": {"code": "method_not_allowed", "message": format!("{path} does not take {method}; see /api/openapi.json")}}),
        ),
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
        Route::Metrics => ops::metrics(s),
        Route::OpenApi => Ok(ops::openapi()),
        Route::WebhookVerify => Ok(webhook::verify(s, &req)),
        Route::WebhookReceive => webhook::receive(s, req).await,
        Route::GetConfig => admin::get_config(s, req),
        Route::PutConfig => admin::put_config(s, req).await,
        Route::ListAccounts => admin::list_accounts(s, req),
        Route::AddAccount => admin::add_account(s, req).await,
        Route::DeleteAccount => admin::delete_account(s, req, p(0)).await,
        Route::ListQuarantine => admin::list_quarantine(s, req),
        Route::CreateConnectLink => admin::create_connect_link(s, req).await,
        Route::ListConnectLinks => admin::list_connect_links(s, req),
        Route::RevokeConnectLink => admin::revoke_connect_link(s, req, p(0)).await,
        Route::Backup => backup::backup(s, req).await,
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
        Route::TestEvent => flow::send_test_event(s, req, p(0)).await,
        Route::MessageStatus => flow::message_status(s, req, p(0)),
        Route::Connect => oauth::connect(s, req).await,
        Route::Signup => oauth::signup(s, req),
        Route::OAuthCallback => oauth::callback(s, req).await,
        Route::Backoffice(page) => Ok(backoffice::handle(s, req, page, params).await),
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
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                if item.get(method).is_some() {
                    out.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    /// The API routes are exactly the documented ones. Browser routes are left
    /// out of both sides, and so can hide nothing: a documented browser route
    /// counts as "not served" here.
    #[test]
    fn the_openapi_document_lists_exactly_the_api_routes_served() {
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .filter(|(_, _, _, audience)| *audience == Api)
            .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
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
            "in static/openapi.json but not served as API routes: {unserved:?}"
        );
    }

    /// The browser mark cannot take a route of the API out of the drift test.
    #[test]
    fn no_browser_route_lives_under_the_api() {
        for (method, pattern, route, audience) in ROUTES {
            let browser = *audience == Browser;
            assert!(
                !(browser && pattern.starts_with("/api/")),
                "{method} {pattern} is marked Browser but is part of /api/"
            );
            let browser_handler = matches!(
                route,
                Route::Connect | Route::Signup | Route::OAuthCallback | Route::Backoffice(_)
            );
            assert_eq!(
                browser, browser_handler,
                "{method} {pattern}: the mark must follow the handler"
            );
        }
    }

    #[test]
    fn every_route_is_reachable_with_its_parameters() {
        for (method, pattern, route, _) in ROUTES {
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
            Resolved::WrongMethod(Api, "GET".into())
        );
        assert_eq!(
            resolve(&Method::PUT, "/admin/setup"),
            Resolved::WrongMethod(Browser, "GET, POST".into())
        );
        assert_eq!(
            resolve(&Method::GET, "/api/v1/phone-numbers//messages"),
            Resolved::NotFound
        );
        assert_eq!(
            resolve(&Method::GET, "/api/v1/media/12%2034"),
            Resolved::Found(Route::DownloadMedia, vec!["12 34".into()])
        );
        assert_eq!(resolve(&Method::GET, "/admin/nope"), Resolved::NotFound);
        assert_eq!(
            resolve(&Method::POST, "/admin/listeners/L1/explode"),
            Resolved::NotFound
        );
        assert_eq!(
            resolve(&Method::GET, "/admin/"),
            Resolved::Found(Route::Backoffice(Page::Home), vec![])
        );
    }
}
