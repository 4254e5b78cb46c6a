//! WhatsApp calls through one of the caller's phone numbers: call actions,
//! a user's call permission, the number's calling settings. Routes with input
//! take the caller only; the use case checks the input, then the number.

use hyper::StatusCode;

use crate::error::Error;
use crate::http::body::read_json;
use crate::http::guards::{Caller, OwnedNumber};
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::calls;

/// A call action (connect, pre_accept, accept, reject, terminate): Meta's
/// call body without `messaging_product`.
pub async fn act(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId").to_string();
    let request = read_json(req.body).await?;
    let answer = calls::act(state, &account, &number, request).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// Whether the business may call `{user}` now, and may ask for permission.
pub async fn permission(
    state: &AppState,
    Caller(account): Caller,
    req: Req,
) -> Result<Resp, Error> {
    let answer = calls::permission(
        state,
        &account,
        req.param("phoneNumberId"),
        req.param("user"),
    )
    .await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// The number's calling settings as Meta has them.
pub async fn settings(state: &AppState, owned: OwnedNumber, _: Req) -> Result<Resp, Error> {
    let answer = calls::settings(state, &owned.account, &owned.number).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// Changes the calling settings given (Meta's `calling` object).
pub async fn update_settings(
    state: &AppState,
    Caller(account): Caller,
    req: Req,
) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId").to_string();
    let calling = read_json(req.body).await?;
    let answer = calls::update_settings(state, &account, &number, calling).await?;
    Ok(response::json(StatusCode::OK, &answer))
}
