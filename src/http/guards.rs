//! Who is calling, and what they may touch, settled before a handler runs.
//!
//! A handler names a guard as its second parameter; the route table resolves
//! it from the request first: the admin token, an account's API key, and on
//! top of the key the WABA, phone number or listener the path names, which
//! must be that account's. So a handler body starts with a caller and a
//! resource it may use, and cannot forget the check.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};

use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;

use super::request::Params;
use super::server::ConnInfo;
use super::web::Web;
use super::AppState;
use crate::domain::ids::{constant_time_eq, token_hash, ListenerId, WabaId};
use crate::domain::model::{Account, Listener};
use crate::domain::time::now_ms;
use crate::error::Error;
use crate::usecase::access::{own_phone_number, own_waba, Number};
use crate::usecase::listeners;

/// Resolved from a request before its handler runs.
pub trait Guard: Sized + Send {
    /// From the request's head and the route's parameters (never its body).
    fn resolve(
        state: &AppState,
        head: &Parts,
        params: &Params,
    ) -> impl Future<Output = Result<Self, Error>> + Send;
}

/// Anyone: Meta's webhook, monitors, the OpenAPI document, browser pages
/// that check their own session or one-time state.
pub struct Public;

impl Guard for Public {
    async fn resolve(_: &AppState, _: &Parts, _: &Params) -> Result<Self, Error> {
        Ok(Public)
    }
}

/// The admin token.
pub struct Admin;

impl Guard for Admin {
    async fn resolve(state: &AppState, head: &Parts, _: &Params) -> Result<Self, Error> {
        is_admin(state, head).map(|()| Admin)
    }
}

/// An account, by its API key.
pub struct Caller(pub Account);

impl Guard for Caller {
    async fn resolve(state: &AppState, head: &Parts, _: &Params) -> Result<Self, Error> {
        checked(state, head, |token| {
            state.store.account_by_key_hash(&token_hash(token))
        })
        .map(Caller)
    }
}

/// The WABA `{wabaId}`, one of the caller's.
pub struct OwnedWaba {
    pub account: Account,
    pub waba: WabaId,
}

impl Guard for OwnedWaba {
    async fn resolve(state: &AppState, head: &Parts, params: &Params) -> Result<Self, Error> {
        let Caller(account) = Caller::resolve(state, head, params).await?;
        let waba = own_waba(&account, params.get("wabaId"))?;
        Ok(OwnedWaba { account, waba })
    }
}

/// The phone number `{phoneNumberId}`, of one of the caller's WABAs.
pub struct OwnedNumber {
    pub account: Account,
    pub number: Number,
}

impl Guard for OwnedNumber {
    async fn resolve(state: &AppState, head: &Parts, params: &Params) -> Result<Self, Error> {
        let Caller(account) = Caller::resolve(state, head, params).await?;
        let number = own_phone_number(state, &account, params.get("phoneNumberId")).await?;
        Ok(OwnedNumber { account, number })
    }
}

/// The listener `{listenerId}`, registered by the caller; another
/// account's is "not found", as if it did not exist.
pub struct OwnedListener {
    pub listener: Listener,
}

impl Guard for OwnedListener {
    async fn resolve(state: &AppState, head: &Parts, params: &Params) -> Result<Self, Error> {
        let Caller(account) = Caller::resolve(state, head, params).await?;
        let id = ListenerId::new(params.get("listenerId"));
        let listener = listeners::owned(state, &account, &id)?;
        Ok(OwnedListener { listener })
    }
}

/// Whether the request comes from an admin logged into the backoffice (their
/// session cookie). `/connect` lets such an admin start a connection without a
/// link (CONTRACT §2). Counts as the admin's activity.
pub fn is_admin_browser(state: &AppState, parts: &Parts) -> bool {
    Web::of(state, parts, now_ms(), true)
        .session
        .is_some_and(|s| s.admin)
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether the request carries the admin token (a wrong one counts as a guess).
pub fn is_admin(state: &AppState, parts: &Parts) -> Result<(), Error> {
    checked(state, parts, |token| {
        Ok(constant_time_eq(
            token_hash(token).as_bytes(),
            state.admin_token_hash.as_bytes(),
        )
        .then_some(()))
    })
}

/// Checks the Bearer token with `check` (`None`: wrong token). Wrong tokens
/// are counted per client address; past the limit the address gets 429s
/// without any check until the window slides. A request without a token is
/// not a guess and is not counted.
fn checked<T>(
    state: &AppState,
    parts: &Parts,
    check: impl FnOnce(&str) -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    let token = bearer(parts).ok_or(Error::Unauthorized)?;
    state
        .api_throttle
        .check(client(parts), now_ms(), || check(token))
        .map_err(|retry_after| Error::Throttled { retry_after })??
        .ok_or(Error::Unauthorized)
}

fn client(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnInfo>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.client)
}
