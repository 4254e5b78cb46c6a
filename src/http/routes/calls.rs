//! WhatsApp calls through one of the caller's phone numbers: call actions,
//! a user's call permission, the number's calling settings. Every route has
//! input to check, so each takes the caller only; the use case checks the
//! input, then the number (CONTRACT §4).

use hyper::StatusCode;

use crate::error::Error;
use crate::http::body::read_json;
use crate::http::guards::Caller;
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

/// The number's calling settings as Meta has them;
/// `?includeSipCredentials=true` adds the SIP password Meta made for it.
pub async fn settings(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let sip_credentials = match req.query("includeSipCredentials").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(Error::invalid(
                "includeSipCredentials",
                "must be true or false",
            ))
        }
    };
    let number = req.param("phoneNumberId");
    let answer = calls::settings(state, &account, number, sip_credentials).await?;
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
