//! Who is calling: the admin (admin token) or an account (its API key).

use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;

use std::net::{IpAddr, Ipv4Addr};

use super::server::ConnInfo;
use super::AppState;
use crate::domain::ids::{constant_time_eq, token_hash};
use crate::domain::model::Account;
use crate::domain::time::now_ms;
use crate::error::Error;

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

pub fn require_admin(state: &AppState, parts: &Parts) -> Result<(), Error> {
    checked(state, parts, |token| {
        Ok(constant_time_eq(
            token_hash(token).as_bytes(),
            state.admin_token_hash.as_bytes(),
        )
        .then_some(()))
    })
}

pub fn require_account(state: &AppState, parts: &Parts) -> Result<Account, Error> {
    checked(state, parts, |token| {
        state.store.account_by_key_hash(&token_hash(token))
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
