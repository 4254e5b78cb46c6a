//! The backoffice: the admin's browser UI at `/admin`, rendered on the server with
//! askama. Every page needs an admin session; every POST needs the session's CSRF
//! token and an Origin (or Referer) of this gateway; every answer carries a strict
//! Content-Security-Policy (no inline script: the little JS there is lives in
//! `static/admin/`). Errors become a page or a message on a page, never a raw 500.

pub mod accounts;
mod assets;
mod chart;
pub mod events;
pub mod listeners;
pub mod login;
pub mod messages;
pub mod setup;
pub mod subscriptions;
pub mod test_send;
mod views;

use std::collections::HashMap;

use askama::Template;
use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL};
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};

use crate::domain::time::now_ms;
use crate::error::Error;
use crate::http::body::read_budgeted;
use crate::http::guards::Public;
use crate::http::request::{Params, Req};
use crate::http::response::{self, Resp};
use crate::http::session::{Flash, SessionInfo};
use crate::http::web::Web;
use crate::http::AppState;
use views::Chrome;

/// Forms are a few fields; a pasted token is the largest.
const FORM_LIMIT: usize = 64 * 1024;

const SETUP: &str = "/admin/setup";
const ACCOUNTS: &str = "/admin/accounts";
const LISTENERS: &str = "/admin/listeners";
const SUBSCRIPTIONS: &str = "/admin/subscriptions";
const LOGIN: &str = "/admin/login";
/// Where `/admin` lands after login.
const HOME: &str = SETUP;

/// `/admin/static/{file}`: the CSS and JS, which need no session.
pub async fn asset(_: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    Ok(assets::serve(req.param("file"), &req.parts.headers))
}

/// `/`: someone who opens the gateway's address in a browser is an admin
/// looking for the backoffice (the login, for a visitor).
pub async fn root(_: &AppState, _: Public, _: Req) -> Result<Resp, Error> {
    Ok(redirect("/admin"))
}

/// `/admin`: the admin's first page.
pub async fn home(_: &Ctx<'_>) -> Result<Resp, Error> {
    Ok(redirect(HOME))
}

/// A backoffice path asked with a method it does not take.
pub fn method_not_allowed() -> Resp {
    views::notice(
        StatusCode::METHOD_NOT_ALLOWED,
        "Not here",
        "This address only answers GET and POST.",
    )
}

/// A path under `/admin` that is no page: the login for a visitor, a page in
/// the layout for the admin.
pub fn unknown(state: &AppState, req: Req) -> Resp {
    match session(state, req, true) {
        Ok(cx) => views::error_page(&cx, &Error::NotFound("page")),
        Err(refused) => *refused,
    }
}

/// One request's view of the backoffice: who is asking, when, and what the
/// path and query say.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub session: SessionInfo,
    web: Web,
    pub now: u64,
    parts: Parts,
    params: Params,
}

impl Ctx<'_> {
    /// What every page's layout needs; takes the flash message, so it shows once.
    pub fn chrome(&self, nav: &'static str) -> Chrome {
        Chrome {
            nav,
            csrf: self.session.csrf.clone(),
            flash: self.state.backoffice.sessions.take_flash(&self.session.id),
            version: crate::VERSION,
            storage: self
                .state
                .store
                .refusal()
                .as_ref()
                .map(views::storage_warning),
        }
    }

    /// The route's `{name}`.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }

    /// The query string's fields.
    pub fn query(&self) -> Form {
        Form::parse(self.parts.uri.query().unwrap_or_default().as_bytes())
    }
}

/// The admin's session, or the answer for someone without one: a GET goes
/// to the login, anything else is told the session ended. `touch`: whether
/// the request counts as the admin's activity.
pub fn session(state: &AppState, req: Req, touch: bool) -> Result<Ctx<'_>, Box<Resp>> {
    session_of(state, req.parts, req.params, touch)
}

fn session_of(
    state: &AppState,
    parts: Parts,
    params: Params,
    touch: bool,
) -> Result<Ctx<'_>, Box<Resp>> {
    let now = now_ms();
    let web = Web::of(state, &parts, now, touch);
    let Some(session) = web.session.clone().filter(|s| s.admin) else {
        return Err(Box::new(match parts.method {
            Method::GET => redirect(LOGIN),
            _ => views::notice(
                StatusCode::FORBIDDEN,
                "Your session has ended",
                "You were logged out (after a while without activity, or because wabridge restarted). Log in again and repeat the action.",
            ),
        }));
    };
    Ok(Ctx {
        state,
        session,
        web,
        now,
        parts,
        params,
    })
}

/// A page's answer; an error becomes a page in the layout.
pub fn shown(cx: &Ctx<'_>, page: Result<Resp, Error>) -> Resp {
    page.unwrap_or_else(|e| views::error_page(cx, &e))
}

/// The admin's session and a form from one of our pages (its CSRF token checked).
pub async fn open_form(state: &AppState, req: Req) -> Result<(Ctx<'_>, Form), Box<Resp>> {
    let Req {
        parts,
        body,
        params,
    } = req;
    let cx = session_of(state, parts, params, true)?;
    let form = match read_budgeted(body, FORM_LIMIT, &state.form_budget).await {
        Ok(bytes) => Form::parse(&bytes),
        Err(e) => {
            return Err(Box::new(views::notice(
                StatusCode::BAD_REQUEST,
                "Form refused",
                &e.to_string(),
            )))
        }
    };
    if let Err(why) = cx.web.check_csrf(&cx.session, form.get("csrf")) {
        return Err(Box::new(views::csrf_refused(why)));
    }
    Ok((cx, form))
}

/// Where a form goes back to when its action fails.
#[derive(Debug, Clone, Copy)]
pub enum Back {
    Setup,
    Accounts,
    Subscriptions,
    Listeners,
    /// The listener's page while it exists, else the list.
    Listener,
    /// The account's test-send page while the account exists, else the list.
    TestSend,
}

impl Back {
    fn to(self, cx: &Ctx<'_>) -> String {
        let store = &cx.state.store;
        match self {
            Back::Setup => SETUP.into(),
            Back::Accounts => ACCOUNTS.into(),
            Back::Subscriptions => SUBSCRIPTIONS.into(),
            Back::Listeners => LISTENERS.into(),
            Back::Listener => {
                let id = cx.param("listenerId");
                match store.listener(id) {
                    Ok(Some(_)) => format!("{LISTENERS}/{id}"),
                    _ => LISTENERS.into(),
                }
            }
            Back::TestSend => {
                let id = cx.param("accountId");
                match store.account(id) {
                    Ok(Some(_)) => format!("{ACCOUNTS}/{id}/test-send"),
                    _ => ACCOUNTS.into(),
                }
            }
        }
    }
}

/// After a form: a redirect with a message, where the action led, or back.
pub fn finish_form(cx: &Ctx<'_>, back: Back, done: Result<Done, Error>) -> Resp {
    let done = done.unwrap_or_else(|e| Done::to(back.to(cx), views::error_flash(&e)));
    cx.state
        .backoffice
        .sessions
        .set_flash(&cx.session.id, done.flash);
    redirect(&done.to)
}

/// A form's fields; a missing field reads as empty.
pub struct Form(HashMap<String, String>);

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
pub struct Done {
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

/// Headers every backoffice answer carries (the router sets them on every
/// answer under `/admin`).
pub fn harden(h: &mut HeaderMap) {
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
