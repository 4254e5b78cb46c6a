//! Every route, declared once: method, path with named parameters, audience
//! and handler. Matching, dispatch, `405` with `Allow`, and the OpenAPI drift
//! check all read this table.
//!
//! A handler is `async fn(&AppState, G, Req) -> Result<Resp, Error>` where
//! `G` is a [`Guard`](super::guards::Guard) — the caller and what the path
//! names, resolved and checked before the handler runs (`handler!`). A route
//! whose input must be checked before Meta is asked anything (a message, a
//! PIN, a file) takes the caller only, and its use case checks the phone
//! number after the input (CONTRACT §4). The
//! backoffice's pages (`page!`) and forms (`form!`) get the admin's session,
//! a form checked for its CSRF token, and a way back (see `backoffice`).
//!
//! Routes marked [`Audience::Browser`] answer a person: the backoffice, the
//! customer's `/connect`, the Embedded Signup page and the OAuth callback.
//! `static/openapi.json` leaves them out, and none may live under `/api/`.

pub mod admin;
pub mod backoffice;
pub mod backup;
pub mod calls;
pub mod flows;
pub mod groups;
pub mod listeners;
pub mod media;
pub mod messages;
pub mod numbers;
pub mod oauth;
pub mod ops;
pub mod sandbox;
pub mod templates;
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

macro_rules! handler {
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
    GET "/healthz", Api => handler!(ops::healthz);
    GET "/metrics", Api => handler!(ops::metrics);
    GET "/api/openapi.json", Api => handler!(ops::openapi);
    GET paths::EVENTS, Api => handler!(webhook::verify);
    POST paths::EVENTS, Api => handler!(webhook::receive);
    POST paths::FLOWS, Api => handler!(flows::exchange);

    // The admin API.
    GET "/api/v1/admin/config", Api => handler!(admin::get_config);
    PUT "/api/v1/admin/config", Api => handler!(admin::put_config);
    GET "/api/v1/admin/accounts", Api => handler!(admin::list_accounts);
    POST "/api/v1/admin/accounts", Api => handler!(admin::add_account);
    DELETE "/api/v1/admin/accounts/{accountId}", Api => handler!(admin::delete_account);
    GET "/api/v1/admin/quarantine", Api => handler!(admin::list_quarantine);
    POST "/api/v1/admin/connect-links", Api => handler!(admin::create_connect_link);
    GET "/api/v1/admin/connect-links", Api => handler!(admin::list_connect_links);
    DELETE "/api/v1/admin/connect-links/{linkId}", Api => handler!(admin::revoke_connect_link);
    POST "/api/v1/admin/backup", Api => handler!(backup::backup);

    // The flow API, with an account's key.
    GET "/api/v1/me", Api => handler!(admin::me);
    POST "/api/v1/sandbox/events", Api => handler!(sandbox::events);
    GET "/api/v1/business-accounts", Api => handler!(numbers::business_accounts);
    GET "/api/v1/business-accounts/{wabaId}/phone-numbers", Api => handler!(numbers::phone_numbers);
    GET "/api/v1/business-accounts/{wabaId}/templates", Api => handler!(numbers::templates);
    POST "/api/v1/business-accounts/{wabaId}/templates", Api => handler!(templates::create);
    DELETE "/api/v1/business-accounts/{wabaId}/templates", Api => handler!(templates::delete_by_name);
    GET "/api/v1/business-accounts/{wabaId}/templates/{templateId}", Api => handler!(templates::get);
    POST "/api/v1/business-accounts/{wabaId}/templates/{templateId}", Api => handler!(templates::edit);
    DELETE "/api/v1/business-accounts/{wabaId}/templates/{templateId}", Api => handler!(templates::delete);
    GET "/api/v1/business-accounts/{wabaId}/flows", Api => handler!(flows::list);
    GET "/api/v1/phone-numbers/{phoneNumberId}", Api => handler!(numbers::phone_number);
    GET "/api/v1/phone-numbers/{phoneNumberId}/registration-status", Api => handler!(numbers::registration_status);
    POST "/api/v1/phone-numbers/{phoneNumberId}/register", Api => handler!(numbers::register);
    POST "/api/v1/phone-numbers/{phoneNumberId}/deregister", Api => handler!(numbers::deregister);
    POST "/api/v1/phone-numbers/{phoneNumberId}/ensure-registered", Api => handler!(numbers::ensure_registered);
    POST "/api/v1/phone-numbers/{phoneNumberId}/messages", Api => handler!(messages::send);
    POST "/api/v1/phone-numbers/{phoneNumberId}/groups", Api => handler!(groups::create);
    GET "/api/v1/phone-numbers/{phoneNumberId}/groups", Api => handler!(groups::list);
    GET "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}", Api => handler!(groups::get);
    DELETE "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}", Api => handler!(groups::delete);
    GET "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}/invite-link", Api => handler!(groups::invite_link);
    POST "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}/invite-link", Api => handler!(groups::reset_invite_link);
    GET "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}/participants", Api => handler!(groups::participants);
    DELETE "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}/participants", Api => handler!(groups::remove_participants);
    GET "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}/join-requests", Api => handler!(groups::join_requests);
    POST "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}/join-requests", Api => handler!(groups::approve_join_requests);
    DELETE "/api/v1/phone-numbers/{phoneNumberId}/groups/{groupId}/join-requests", Api => handler!(groups::reject_join_requests);
    POST "/api/v1/phone-numbers/{phoneNumberId}/marketing-messages", Api => handler!(messages::send_marketing);
    POST "/api/v1/phone-numbers/{phoneNumberId}/messages/{messageId}/read", Api => handler!(messages::mark_read);
    GET "/api/v1/phone-numbers/{phoneNumberId}/windows/{user}", Api => handler!(messages::window);
    POST "/api/v1/phone-numbers/{phoneNumberId}/media", Api => handler!(media::upload);
    GET "/api/v1/phone-numbers/{phoneNumberId}/business-profile", Api => handler!(numbers::get_profile);
    POST "/api/v1/phone-numbers/{phoneNumberId}/business-profile", Api => handler!(numbers::update_profile);
    POST "/api/v1/phone-numbers/{phoneNumberId}/calls", Api => handler!(calls::act);
    GET "/api/v1/phone-numbers/{phoneNumberId}/call-permissions/{user}", Api => handler!(calls::permission);
    GET "/api/v1/phone-numbers/{phoneNumberId}/call-settings", Api => handler!(calls::settings);
    POST "/api/v1/phone-numbers/{phoneNumberId}/call-settings", Api => handler!(calls::update_settings);
    GET "/api/v1/phone-numbers/{phoneNumberId}/flows-endpoint", Api => handler!(flows::get);
    PUT "/api/v1/phone-numbers/{phoneNumberId}/flows-endpoint", Api => handler!(flows::put);
    DELETE "/api/v1/phone-numbers/{phoneNumberId}/flows-endpoint", Api => handler!(flows::delete);
    GET "/api/v1/media/{mediaId}", Api => handler!(media::download);
    GET "/api/v1/listeners", Api => handler!(listeners::list);
    POST "/api/v1/listeners", Api => handler!(listeners::create);
    GET "/api/v1/listeners/{listenerId}", Api => handler!(listeners::get);
    DELETE "/api/v1/listeners/{listenerId}", Api => handler!(listeners::delete);
    GET "/api/v1/listeners/{listenerId}/deliveries", Api => handler!(listeners::deliveries);
    POST "/api/v1/listeners/{listenerId}/deliveries/{deliveryId}/redeliver", Api => handler!(listeners::redeliver);
    POST "/api/v1/listeners/{listenerId}/redeliver-failed", Api => handler!(listeners::redeliver_failed);
    POST "/api/v1/listeners/{listenerId}/test", Api => handler!(listeners::test);
    GET "/api/v1/messages/{messageId}", Api => handler!(messages::status);

    // The customer connecting their WhatsApp account (docs/connect.md).
    GET paths::CONNECT, Browser => handler!(oauth::connect);
    GET paths::SIGNUP, Browser => handler!(oauth::signup);
    GET paths::CALLBACK, Browser => handler!(oauth::callback);
    POST paths::CALLBACK, Browser => handler!(oauth::callback);

    // The backoffice: pages are GETs, actions are POSTed forms.
    GET "/", Browser => handler!(backoffice::root);
    GET "/admin/static/{file}", Browser => handler!(backoffice::asset);
    GET "/admin", Browser => page!(backoffice::home);
    GET "/admin/login", Browser => handler!(backoffice::login::page);
    POST "/admin/login", Browser => handler!(backoffice::login::submit);
    POST "/admin/logout", Browser => handler!(backoffice::login::logout);
    GET "/admin/setup", Browser => page!(backoffice::setup::page);
    POST "/admin/setup", Browser => form!(Back::Setup, backoffice::setup::save);
    GET "/admin/setup/checklist", Browser => page!(backoffice::setup::checklist, untouched);
    POST "/admin/password", Browser => form!(Back::Setup, backoffice::setup::set_password);
    GET "/admin/accounts", Browser => page!(backoffice::accounts::page);
    POST "/admin/accounts", Browser => form!(Back::Accounts, backoffice::accounts::add);
    POST "/admin/accounts/sandbox", Browser => form!(Back::Accounts, backoffice::accounts::add_sandbox);
    POST "/admin/accounts/{accountId}/rotate-key", Browser => form!(Back::Accounts, backoffice::accounts::rotate_key);
    POST "/admin/accounts/{accountId}/remove", Browser => form!(Back::Accounts, backoffice::accounts::remove);
    GET "/admin/accounts/{accountId}/test-send", Browser => page!(backoffice::test_send::page);
    POST "/admin/accounts/{accountId}/test-send", Browser => form!(Back::TestSend, backoffice::test_send::send);
    POST "/admin/accounts/{accountId}/flows-endpoint", Browser => form!(Back::TestSend, backoffice::test_send::set_flows_endpoint);
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
