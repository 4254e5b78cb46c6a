//! The backoffice: the admin's browser UI at `/admin`, rendered on the server with
//! askama. Every page needs an admin session; every POST needs the session's CSRF
//! token and an Origin (or Referer) of this gateway; every answer carries a strict
//! Content-Security-Policy (no inline script: the little JS there is lives in
//! `static/admin/`). Errors become a page or a message on a page, never a raw 500.

mod accounts;
mod assets;
mod events;
mod listeners;
mod login;
mod messages;
mod setup;
mod subscriptions;
mod test_send;
mod views;
mod web;

use std::collections::HashMap;

use askama::Template;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL};
use hyper::{Method, Request, StatusCode};

use crate::domain::time::now_ms;
use crate::error::Error;
use crate::http::body::read_budgeted;
use crate::http::response::{self, Resp};
use crate::http::session::{Flash, SessionInfo};
use crate::http::AppState;
use views::Chrome;
use web::Web;

/// Forms are a few fields; a pasted token is the largest.
const FORM_LIMIT: usize = 64 * 1024;

const SETUP: &str = "/admin/setup";
const ACCOUNTS: &str = "/admin/accounts";
const LISTENERS: &str = "/admin/listeners";
const SUBSCRIPTIONS: &str = "/admin/subscriptions";
/// Where `/admin` lands after login.
const HOME: &str = SETUP;

/// A page or form of the backoffice; the router's table says which path and
/// method lead to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The CSS and JS (`{file}`), which need no session.
    Asset,
    Home,
    Login,
    SubmitLogin,
    Logout,
    Setup,
    SaveSetup,
    Checklist,
    SetPassword,
    Accounts,
    AddAccount,
    RotateKey,
    RemoveAccount,
    TestSend,
    SendTest,
    MintConnectLink,
    RevokeConnectLink,
    Subscriptions,
    Subscribe,
    Listeners,
    AddListener,
    Listener,
    PauseListener,
    ResumeListener,
    RedeliverFailed,
    TestListener,
    Redeliver,
    Messages,
    Message,
    Events,
    /// A path under `/admin` that is none of the above.
    Unknown,
}

/// Answers a backoffice request; `params` are the route's `{…}` values in order.
pub async fn handle(
    state: &AppState,
    req: Request<Incoming>,
    page: Page,
    params: &[String],
) -> Resp {
    let mut resp = match page {
        Page::Asset => assets::serve(param(params, 0), req.headers()),
        _ => route(state, req, page, params).await,
    };
    harden(resp.headers_mut());
    resp
}

/// A backoffice path asked with a method it does not take.
pub fn method_not_allowed() -> Resp {
    let mut resp = views::notice(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not here",
        "This address only answers GET and POST.",
    );
    harden(resp.headers_mut());
    resp
}

fn param(params: &[String], i: usize) -> &str {
    params.get(i).map(String::as_str).unwrap_or_default()
}

/// Whether the request comes from an admin logged into the backoffice (their
/// session cookie). `/connect` lets such an admin start a connection without a
/// link (CONTRACT §2). Counts as the admin's activity.
pub fn admin_session(state: &AppState, req: &Request<Incoming>, now: u64) -> bool {
    Web::of(state, req, now, true)
        .session
        .is_some_and(|s| s.admin)
}

/// One request's view of the backoffice: who is asking, and when.
pub(super) struct Ctx<'a> {
    pub state: &'a AppState,
    pub session: SessionInfo,
    pub now: u64,
}

impl Ctx<'_> {
    /// What every page's layout needs; takes the flash message, so it shows once.
    pub fn chrome(&self, nav: &'static str) -> Chrome {
        Chrome {
            nav,
            csrf: self.session.csrf.clone(),
            flash: self.state.backoffice.sessions.take_flash(&self.session.id),
            version: crate::app::VERSION,
            storage: self
                .state
                .store
                .refusal()
                .as_ref()
                .map(views::storage_warning),
        }
    }
}

/// A form's fields; a missing field reads as empty.
pub(super) struct Form(HashMap<String, String>);

impl Form {
    fn parse(bytes: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }

    /// A field holding several values separated by commas, spaces or lines.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// What a successful form leads to: a page, and a message on it.
pub(super) struct Done {
    pub to: String,
    pub flash: Flash,
}

impl Done {
    pub fn to(to: impl Into<String>, flash: Flash) -> Done {
        Done {
            to: to.into(),
            flash,
        }
    }
}

async fn route(state: &AppState, req: Request<Incoming>, page: Page, params: &[String]) -> Resp {
    let now = now_ms();
    // The checklist refreshes itself; that must not keep an idle session alive.
    let web = Web::of(state, &req, now, page != Page::Checklist);
    let method = req.method().clone();
    match page {
        Page::Login => return login::page(state, &web, now),
        Page::SubmitLogin => return login::submit(state, &web, req, now).await,
        _ => {}
    }
    let Some(session) = web.session.clone().filter(|s| s.admin) else {
        return match method {
            Method::GET => redirect("/admin/login"),
            _ => views::notice(
                StatusCode::FORBIDDEN,
                "Your session has ended",
                "You were logged out (after a while without activity, or because wabridge restarted). Log in again and repeat the action.",
            ),
        };
    };
    let cx = Ctx {
        state,
        session,
        now,
    };
    match method {
        Method::GET => {
            let query = req.uri().query().unwrap_or_default().to_string();
            get(&cx, page, params, &Form::parse(query.as_bytes()))
                .await
                .unwrap_or_else(|e| views::error_page(&cx, &e))
        }
        Method::POST => post(&cx, &web, req, page, params).await,
        _ => views::notice(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not here",
            "This address only answers GET and POST.",
        ),
    }
}

async fn get(cx: &Ctx<'_>, page: Page, params: &[String], query: &Form) -> Result<Resp, Error> {
    let id = param(params, 0);
    match page {
        Page::Home => Ok(redirect(HOME)),
        Page::Setup => setup::page(cx),
        Page::Checklist => setup::checklist(cx),
        Page::Accounts => accounts::page(cx),
        Page::Listeners => listeners::page(cx),
        Page::Listener => listeners::detail(cx, id),
        Page::Messages => messages::page(cx, query),
        Page::Message => messages::timeline(cx, id),
        Page::Events => events::page(cx),
        Page::Subscriptions => subscriptions::page(cx).await,
        Page::TestSend => test_send::page(cx, id).await,
        _ => Err(Error::NotFound("page")),
    }
}

async fn post(
    cx: &Ctx<'_>,
    web: &Web,
    req: Request<Incoming>,
    page: Page,
    params: &[String],
) -> Resp {
    let form = match read_budgeted(req.into_body(), FORM_LIMIT, &cx.state.form_budget).await {
        Ok(bytes) => Form::parse(&bytes),
        Err(e) => return views::notice(StatusCode::BAD_REQUEST, "Form refused", &e.to_string()),
    };
    if let Err(why) = web.check_csrf(&cx.session, form.get("csrf")) {
        return views::csrf_refused(why);
    }
    let id = param(params, 0);
    let (back, result) = match page {
        Page::Logout => return login::logout(cx, web),
        Page::SaveSetup => (SETUP, setup::save(cx, &form).await),
        Page::SetPassword => (SETUP, setup::set_password(cx, &form).await),
        Page::AddAccount => (ACCOUNTS, accounts::add(cx, &form).await),
        Page::RotateKey => (ACCOUNTS, accounts::rotate_key(cx, id).await),
        Page::RemoveAccount => (ACCOUNTS, accounts::remove(cx, id).await),
        Page::SendTest => (ACCOUNTS, test_send::send(cx, id, &form).await),
        Page::MintConnectLink => (ACCOUNTS, accounts::mint_link(cx).await),
        Page::RevokeConnectLink => (ACCOUNTS, accounts::revoke_link(cx, id).await),
        Page::Subscribe => (SUBSCRIPTIONS, subscriptions::subscribe_waba(cx, id).await),
        Page::AddListener => (LISTENERS, listeners::add(cx, &form).await),
        Page::PauseListener => (LISTENERS, listeners::act(cx, id, "pause").await),
        Page::ResumeListener => (LISTENERS, listeners::act(cx, id, "resume").await),
        Page::RedeliverFailed => (LISTENERS, listeners::act(cx, id, "redeliver-failed").await),
        Page::TestListener => (LISTENERS, listeners::act(cx, id, "test").await),
        Page::Redeliver => (
            LISTENERS,
            listeners::redeliver(cx, id, param(params, 1)).await,
        ),
        _ => return views::error_page(cx, &Error::NotFound("action")),
    };
    // A listener's forms, and the test send, return to their page when they fail.
    let store = &cx.state.store;
    let back = match page {
        Page::PauseListener
        | Page::ResumeListener
        | Page::RedeliverFailed
        | Page::Redeliver
        | Page::TestListener
            if store.listener(id).ok().flatten().is_some() =>
        {
            format!("{LISTENERS}/{id}")
        }
        Page::SendTest if store.account(id).ok().flatten().is_some() => {
            format!("{ACCOUNTS}/{id}/test-send")
        }
        _ => back.to_string(),
    };
    let done = result.unwrap_or_else(|e| Done::to(back, views::error_flash(&e)));
    cx.state
        .backoffice
        .sessions
        .set_flash(&cx.session.id, done.flash);
    redirect(&done.to)
}

/// 303 See Other: after a POST the browser GETs the page (no resubmit on reload).
/// `harden` then sets the backoffice's own headers over `response::redirect`'s
/// (its `no-referrer` becomes `same-origin`; `no-store` stays). A location that
/// is no valid header value still gets the 303, without a Location, as before.
pub(super) fn redirect(to: &str) -> Resp {
    response::redirect(to).unwrap_or_else(|_| response::empty(StatusCode::SEE_OTHER))
}

pub(super) fn html<T: Template>(status: StatusCode, page: &T) -> Resp {
    match page.render() {
        Ok(body) => response::with_type(status, "text/html; charset=utf-8", body),
        Err(e) => {
            tracing::error!(error = %e, "backoffice template failed");
            response::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be drawn; the server log has the details.",
            )
        }
    }
}

/// Headers every backoffice answer carries.
fn harden(h: &mut HeaderMap) {
    let fixed = [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(CACHE_CONTROL) {
        // Pages can show a one-time API key or connect link: keep them out of caches.
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
