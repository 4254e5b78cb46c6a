//! Every route, declared once: method, path with named parameters, audience
//! and handler. Matching, dispatch, `405` with `Allow`, and the OpenAPI drift
//! check all read this table.
//!
//! A JSON handler is `async fn(&AppState, G, Req) -> Result<Resp, Error>`
//! where `G` is a [`Guard`](super::guards::Guard) — the caller and what the
//! path names, resolved and checked before the handler runs (`api!`). The
//! backoffice's pages (`page!`) and forms (`form!`) get the admin's session,
//! a form checked for its CSRF token, and a way back (see `backoffice`).
//!
//! Routes marked [`Audience::Browser`] answer a person: the backoffice, the
//! customer's `/connect`, the Embedded Signup page and the OAuth callback.
//! `static/openapi.json` leaves them out, and none may live under `/api/`.

pub mod admin;
pub mod backoffice;
pub mod backup;
pub mod listeners;
pub mod media;
pub mod messages;
pub mod numbers;
pub mod oauth;
pub mod ops;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;

use hyper::Method;

use super::guards::Guard;
use super::request::Req;
use super::response::Resp;
use super::AppState;
use crate::domain::paths;
use crate::error::Error;
use backoffice::Back;

/// Whom a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A program: JSON (or the webhook's and the operator's formats), described
    /// in `static/openapi.json`.
    Api,
    /// A person's browser: pages, forms, redirects and their assets; not in the document.
    Browser,
}

pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Resp, Error>> + Send + 'a>>;
pub type Handler = for<'a> fn(&'a AppState, Req) -> Answer<'a>;

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub audience: Audience,
    pub handler: Handler,
}

/// Resolves the handler's guard, then runs it.
pub async fn guarded<'a, G, F, Fut>(
    state: &'a AppState,
    req: Req,
    handler: F,
) -> Result<Resp, Error>
where
    G: Guard,
    F: FnOnce(&'a AppState, G, Req) -> Fut,
    Fut: Future<Output = Result<Resp, Error>> + 'a,
{
    let guard = G::resolve(state, &req.parts, &req.params).await?;
    handler(state, guard, req).await
}

macro_rules! api {
    ($handler:path) => {
        |state, req| Box::pin(guarded(state, req, $handler))
    };
}

/// A backoffice page: the admin's session first (a visitor is sent to the
/// login), then the page or an error page in the layout. `untouched`: the
/// request does not count as the admin's activity (pages that refresh themselves).
macro_rules! page {
    ($page:path) => {
        page!(@touch true, $page)
    };
    ($page:path, untouched) => {
        page!(@touch false, $page)
    };
    (@touch $touch:expr, $page:path) => {
        |state, req| {
            Box::pin(async move {
                let cx = match backoffice::session(state, req, $touch) {
                    Ok(cx) => cx,
                    Err(refused) => return Ok(*refused),
                };
                let shown = $page(&cx).await;
                Ok(backoffice::shown(&cx, shown))
            })
        }
    };
}

/// A backoffice form: the admin's session, the form with its CSRF token
/// checked, the action, then a redirect with a message: to where the action
/// leads, or on failure `back` to the page it came from.
macro_rules! form {
    ($back:expr, $action:path) => {
        |state, req| {
            Box::pin(async move {
                let (cx, form) = match backoffice::open_form(state, req).await {
                    Ok(opened) => opened,
                    Err(refused) => return Ok(*refused),
                };
                let done = $action(&cx, &form).await;
                Ok(backoffice::finish_form(&cx, $back, done))
            })
        }
    };
}

macro_rules! routes {
    ($($method:ident $path:expr, $audience:ident => $handler:expr;)*) => {
        pub const ROUTES: &[Route] = &[$(Route {
            method: Method::$method,
            path: $path,
            audience: Audience::$audience,
            handler: $handler,
        }),*];
    };
}

routes! {
    GET "/healthz", Api => api!(ops::healthz);
    GET "/metrics", Api => api!(ops::metrics);
    GET "/api/openapi.json", Api => api!(ops::openapi);
    GET paths::EVENTS, Api => api!(webhook::verify);
    POST paths::EVENTS, Api => api!(webhook::receive);

    // The admin API.
    GET "/api/v1/admin/config", Api => api!(admin::get_config);
    PUT "/api/v1/admin/config", Api => api!(admin::put_config);
    GET "/api/v1/admin/accounts", Api => api!(admin::list_accounts);
    POST "/api/v1/admin/accounts", Api => api!(admin::add_account);
    DELETE "/api/v1/admin/accounts/{accountId}", Api => api!(admin::delete_account);
    GET "/api/v1/admin/quarantine", Api => api!(admin::list_quarantine);
    POST "/api/v1/admin/connect-links", Api => api!(admin::create_connect_link);
    GET "/api/v1/admin/connect-links", Api => api!(admin::list_connect_links);
    DELETE "/api/v1/admin/connect-links/{linkId}", Api => api!(admin::revoke_connect_link);
    POST "/api/v1/admin/backup", Api => api!(backup::backup);

    // The flow API, with an account's key.
    GET "/api/v1/me", Api => api!(admin::me);
    GET "/api/v1/business-accounts", Api => api!(numbers::business_accounts);
    GET "/api/v1/business-accounts/{wabaId}/phone-numbers", Api => api!(numbers::phone_numbers);
    GET "/api/v1/business-accounts/{wabaId}/templates", Api => api!(numbers::templates);
    GET "/api/v1/phone-numbers/{phoneNumberId}", Api => api!(numbers::phone_number);
    GET "/api/v1/phone-numbers/{phoneNumberId}/registration-status", Api => api!(numbers::registration_status);
    POST "/api/v1/phone-numbers/{phoneNumberId}/register", Api => api!(numbers::register);
    POST "/api/v1/phone-numbers/{phoneNumberId}/deregister", Api => api!(numbers::deregister);
    POST "/api/v1/phone-numbers/{phoneNumberId}/ensure-registered", Api => api!(numbers::ensure_registered);
    POST "/api/v1/phone-numbers/{phoneNumberId}/messages", Api => api!(messages::send);
    POST "/api/v1/phone-numbers/{phoneNumberId}/messages/{messageId}/read", Api => api!(messages::mark_read);
    GET "/api/v1/phone-numbers/{phoneNumberId}/windows/{user}", Api => api!(messages::window);
    POST "/api/v1/phone-numbers/{phoneNumberId}/media", Api => api!(media::upload);
    GET "/api/v1/phone-numbers/{phoneNumberId}/business-profile", Api => api!(numbers::get_profile);
    POST "/api/v1/phone-numbers/{phoneNumberId}/business-profile", Api => api!(numbers::update_profile);
    GET "/api/v1/media/{mediaId}", Api => api!(media::download);
    GET "/api/v1/listeners", Api => api!(listeners::list);
    POST "/api/v1/listeners", Api => api!(listeners::create);
    GET "/api/v1/listeners/{listenerId}", Api => api!(listeners::get);
    DELETE "/api/v1/listeners/{listenerId}", Api => api!(listeners::delete);
    GET "/api/v1/listeners/{listenerId}/deliveries", Api => api!(listeners::deliveries);
    POST "/api/v1/listeners/{listenerId}/deliveries/{deliveryId}/redeliver", Api => api!(listeners::redeliver);
    POST "/api/v1/listeners/{listenerId}/redeliver-failed", Api => api!(listeners::redeliver_failed);
    POST "/api/v1/listeners/{listenerId}/test", Api => api!(listeners::test);
    GET "/api/v1/messages/{messageId}", Api => api!(messages::status);

    // The customer connecting their WhatsApp account (docs/connect.md).
    GET paths::CONNECT, Browser => api!(oauth::connect);
    GET paths::SIGNUP, Browser => api!(oauth::signup);
    GET paths::CALLBACK, Browser => api!(oauth::callback);
    POST paths::CALLBACK, Browser => api!(oauth::callback);

    // The backoffice: pages are GETs, actions are POSTed forms.
    GET "/admin/static/{file}", Browser => api!(backoffice::asset);
    GET "/admin", Browser => page!(backoffice::home);
    GET "/admin/login", Browser => api!(backoffice::login::page);
    POST "/admin/login", Browser => api!(backoffice::login::submit);
    POST "/admin/logout", Browser => api!(backoffice::login::logout);
    GET "/admin/setup", Browser => page!(backoffice::setup::page);
    POST "/admin/setup", Browser => form!(Back::Setup, backoffice::setup::save);
    GET "/admin/setup/checklist", Browser => page!(backoffice::setup::checklist, untouched);
    POST "/admin/password", Browser => form!(Back::Setup, backoffice::setup::set_password);
    GET "/admin/accounts", Browser => page!(backoffice::accounts::page);
    POST "/admin/accounts", Browser => form!(Back::Accounts, backoffice::accounts::add);
    POST "/admin/accounts/{accountId}/rotate-key", Browser => form!(Back::Accounts, backoffice::accounts::rotate_key);
    POST "/admin/accounts/{accountId}/remove", Browser => form!(Back::Accounts, backoffice::accounts::remove);
    GET "/admin/accounts/{accountId}/test-send", Browser => page!(backoffice::test_send::page);
    POST "/admin/accounts/{accountId}/test-send", Browser => form!(Back::TestSend, backoffice::test_send::send);
    POST "/admin/connect-links", Browser => form!(Back::Accounts, backoffice::accounts::mint_link);
    POST "/admin/connect-links/{linkId}/revoke", Browser => form!(Back::Accounts, backoffice::accounts::revoke_link);
    GET "/admin/subscriptions", Browser => page!(backoffice::subscriptions::page);
    POST "/admin/subscriptions/{wabaId}/subscribe", Browser => form!(Back::Subscriptions, backoffice::subscriptions::subscribe_waba);
    GET "/admin/listeners", Browser => page!(backoffice::listeners::page);
    POST "/admin/listeners", Browser => form!(Back::Listeners, backoffice::listeners::add);
    GET "/admin/listeners/{listenerId}", Browser => page!(backoffice::listeners::detail);
    POST "/admin/listeners/{listenerId}/pause", Browser => form!(Back::Listener, backoffice::listeners::pause);
    POST "/admin/listeners/{listenerId}/resume", Browser => form!(Back::Listener, backoffice::listeners::resume);
    POST "/admin/listeners/{listenerId}/redeliver-failed", Browser => form!(Back::Listener, backoffice::listeners::redeliver_failed);
    POST "/admin/listeners/{listenerId}/test", Browser => form!(Back::Listener, backoffice::listeners::test);
    POST "/admin/listeners/{listenerId}/deliveries/{deliveryId}/redeliver", Browser => form!(Back::Listener, backoffice::listeners::redeliver);
    GET "/admin/messages", Browser => page!(backoffice::messages::page);
    GET "/admin/messages/{messageId}", Browser => page!(backoffice::messages::timeline);
    GET "/admin/events", Browser => page!(backoffice::events::page);
}

#[cfg(test)]
mod tests;
