//! Who is calling: the admin (admin token) or an account (its API key).

use hyper::header::AUTHORIZATION;
use hyper::http::request::Parts;

use super::AppState;
use crate::domain::ids::{constant_time_eq, token_hash};
use crate::domain::model::Account;
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
    let token = bearer(parts).ok_or(Error::Unauthorized)?;
    if constant_time_eq(
        token_hash(token).as_bytes(),
        state.admin_token_hash.as_bytes(),
    ) {
        Ok(())
    } else {
        Err(Error::Unauthorized)
    }
}

pub fn require_account(state: &AppState, parts: &Parts) -> Result<Account, Error> {
    let token = bearer(parts).ok_or(Error::Unauthorized)?;
    state
        .store
        .account_by_key_hash(&token_hash(token))?
        .ok_or(Error::Unauthorized)
}
