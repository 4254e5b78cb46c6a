//! Business accounts, sender phone numbers (registration included), message
//! templates and the business profile: the connector guide's management actions.

use hyper::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::Error;
use crate::http::body::{page_limit, read_json};
use crate::http::guards::{Caller, OwnedNumber, OwnedWaba};
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::access::Paging;
use crate::usecase::numbers::{self, TEMPLATE_FILTERS};

/// The path's phone number and the JSON body, for the use cases that check
/// the input before the number (CONTRACT §4).
async fn number_and_json<T: DeserializeOwned>(req: Req) -> Result<(String, T), Error> {
    let number = req.param("phoneNumberId").to_string();
    Ok((number, read_json(req.body).await?))
}

/// ListBusinessAccounts: the account's WABAs with what Meta says of each.
pub async fn business_accounts(
    state: &AppState,
    Caller(account): Caller,
    _: Req,
) -> Result<Resp, Error> {
    let list = numbers::business_accounts(state, &account).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"businessAccounts": list}),
    ))
}

/// ListPhoneNumbers of one of the account's WABAs.
pub async fn phone_numbers(state: &AppState, owned: OwnedWaba, _: Req) -> Result<Resp, Error> {
    let list = numbers::phone_numbers(state, &owned.account, &owned.waba).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"wabaId": owned.waba, "phoneNumbers": list}),
    ))
}

/// ListMessageTemplates, following Meta's paging up to `limit` (default 100,
/// at most 1000); `nextCursor` continues with `?after=`.
pub async fn templates(state: &AppState, owned: OwnedWaba, req: Req) -> Result<Resp, Error> {
    let mut paging = Paging {
        limit: 100,
        after: None,
    };
    let mut filters = Vec::new();
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "limit" => paging.limit = page_limit(&v)?,
            "after" => paging.after = Some(v).filter(|c| !c.is_empty()),
            k if TEMPLATE_FILTERS.contains(&k) => filters.push((k.to_string(), v)),
            _ => {}
        }
    }
    let page = numbers::templates(state, &owned.account, &owned.waba, filters, paging).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"wabaId": owned.waba, "templates": page.items, "nextCursor": page.next_cursor}),
    ))
}

/// GetPhoneNumber.
pub async fn phone_number(state: &AppState, owned: OwnedNumber, _: Req) -> Result<Resp, Error> {
    let view = numbers::phone_number(state, &owned.account, &owned.number).await?;
    Ok(response::json(StatusCode::OK, &view))
}

/// GetRegistrationStatus: read-only.
pub async fn registration_status(
    state: &AppState,
    owned: OwnedNumber,
    _: Req,
) -> Result<Resp, Error> {
    let status = numbers::registration_status(state, &owned.account, &owned.number).await?;
    Ok(response::json(StatusCode::OK, &status))
}

/// RegisterPhoneNumber: always calls Meta's register.
pub async fn register(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let (number, input) = number_and_json(req).await?;
    let answer = numbers::register(state, &account, &number, input).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// DeregisterPhoneNumber.
pub async fn deregister(state: &AppState, owned: OwnedNumber, _: Req) -> Result<Resp, Error> {
    let answer = numbers::deregister(state, &owned.account, &owned.number).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// EnsurePhoneNumberRegistered: registers only when the number is not on
/// the Cloud API yet, so it is safe to run on every flow start.
pub async fn ensure_registered(
    state: &AppState,
    Caller(account): Caller,
    req: Req,
) -> Result<Resp, Error> {
    let (number, input) = number_and_json(req).await?;
    let answer = numbers::ensure_registered(state, &account, &number, input).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// The business profile Meta shows on WhatsApp for a number.
pub async fn get_profile(state: &AppState, owned: OwnedNumber, _: Req) -> Result<Resp, Error> {
    let profile = numbers::get_profile(state, &owned.account, &owned.number).await?;
    Ok(response::json(StatusCode::OK, &profile))
}

/// Updates the business profile; only the fields given change.
pub async fn update_profile(
    state: &AppState,
    Caller(account): Caller,
    req: Req,
) -> Result<Resp, Error> {
    let (number, input) = number_and_json(req).await?;
    let answer = numbers::update_profile(state, &account, &number, input).await?;
    Ok(response::json(StatusCode::OK, &answer))
}
