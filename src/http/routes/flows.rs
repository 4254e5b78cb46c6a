//! The WhatsApp Flows data endpoint (CONTRACT §4.1): a flow tool sets it up
//! for one of its numbers with its key, and Meta posts the encrypted
//! requests of that number's Flows to `/flows/{phoneNumberId}`.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::error::Error;
use crate::http::body::page_limit;
use crate::http::body::{read_budgeted, read_json};
use crate::http::guards::{OwnedNumber, OwnedWaba, Public};
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::access::Paging;
use crate::usecase::flows;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointInput {
    url: String,
}

/// Meta's Flows requests are a few KiB of encrypted JSON.
const FLOWS_BODY_LIMIT: usize = 1024 * 1024;

/// `PUT …/flows-endpoint {url}`: the key pair, made if the number has none,
/// its public key uploaded to Meta, the flow tool's URL and secret.
pub async fn put(state: &AppState, owned: OwnedNumber, req: Req) -> Result<Resp, Error> {
    let input: EndpointInput = read_json(req.body).await?;
    let view = flows::configure(state, &owned.account, &owned.number, &input.url).await?;
    Ok(response::json(StatusCode::OK, &view))
}

pub async fn get(state: &AppState, owned: OwnedNumber, _: Req) -> Result<Resp, Error> {
    Ok(response::json(
        StatusCode::OK,
        &flows::get(state, &owned.account, &owned.number)?,
    ))
}

pub async fn delete(state: &AppState, owned: OwnedNumber, _: Req) -> Result<Resp, Error> {
    flows::remove(state, &owned.account, &owned.number).await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

/// `POST /flows/{phoneNumberId}` from Meta: the answer is base64 text.
pub async fn exchange(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let phone = req.param("phoneNumberId").to_string();
    let signature = req.header("x-hub-signature-256").map(str::to_string);
    // Meta's bodies share the webhook's budget; read before any refusal, as
    // an unread body makes hyper close the connection.
    let body = read_budgeted(req.body, FLOWS_BODY_LIMIT, &state.body_budget).await?;
    let sealed = flows::exchange(state, &phone, body.to_vec(), signature.as_deref())
        .await
        .inspect_err(|e| match e {
            // Anyone can send these: not worth a warning each.
            Error::FlowSignature(_) | Error::NotFound(_) | Error::NotConfigured(_) => {
                tracing::debug!(phone_number = %phone, error = %e, "Flows data request refused")
            }
            _ => tracing::warn!(phone_number = %phone, error = %e, "Flows data request failed"),
        })?;
    Ok(response::text(StatusCode::OK, sealed))
}

/// `GET /api/v1/business-accounts/{wabaId}/flows?limit=&after=`: the WABA's
/// Flows as Meta lists them (id, name, status, categories, validation errors).
pub async fn list(state: &AppState, owned: OwnedWaba, req: Req) -> Result<Resp, Error> {
    let paging = Paging {
        limit: req.query("limit").as_deref().map_or(Ok(100), page_limit)?,
        after: req.query("after").filter(|c| !c.is_empty()),
    };
    let page = flows::list(state, &owned.account, &owned.waba, paging).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"wabaId": owned.waba, "flows": page.items, "nextCursor": page.next_cursor}),
    ))
}
