//! The flow API's listeners (flow webhooks) and their deliveries.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::model::{Delivery, DeliveryState, EventKind, Listener};
use crate::domain::sandbox::is_sandbox_id;
use crate::domain::subscription::{Filters, Format, Requested};
use crate::domain::time::rfc3339_ms;
use crate::error::Error;
use crate::http::body::{page_limit, read_json};
use crate::http::guards::{Caller, OwnedListener};
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::listeners::{self, NewListener};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListenerRequest {
    waba_id: String,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    events: Option<Value>,
    #[serde(default)]
    filters: Option<Value>,
    #[serde(default)]
    format: Option<String>,
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListenerView {
    id: String,
    waba_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<EventKind>,
    events: Vec<String>,
    filters: Filters,
    format: Format,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_reason: Option<String>,
    /// Paused by the admin: no new events are queued for it.
    paused: bool,
    /// `true` for a listener of a sandbox WABA (its events come from `wabridge simulate`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sandbox: bool,
    /// Meta's answer to subscribing the WABA, when the listener was just made.
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription: Option<Value>,
}

fn listener_view(l: &Listener, with_secret: bool) -> ListenerView {
    ListenerView {
        id: l.id.clone(),
        waba_id: l.waba_id.clone(),
        event: l.event,
        events: l.subscribed(),
        filters: l.filters.clone(),
        format: l.format,
        url: l.url.clone(),
        secret: with_secret.then(|| l.secret.clone()),
        created_at: rfc3339_ms(l.created_at),
        stopped_reason: l.stopped_reason.clone(),
        paused: l.paused,
        sandbox: is_sandbox_id(&l.waba_id),
        subscription: None,
    }
}

pub async fn create(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let new: ListenerRequest = read_json(req.body).await?;
    let requested = Requested {
        event: new.event,
        events: new.events,
        filters: new.filters,
        format: new.format,
    };
    let asked = NewListener {
        waba_id: &new.waba_id,
        requested: &requested,
        url: &new.url,
    };
    let (listener, subscription) = listeners::register(state, &account, asked).await?;
    let view = ListenerView {
        subscription: Some(subscription),
        ..listener_view(&listener, true)
    };
    Ok(response::json(StatusCode::CREATED, &view))
}

pub async fn list(state: &AppState, Caller(account): Caller, _: Req) -> Result<Resp, Error> {
    let mine: Vec<ListenerView> = listeners::of_account(state, &account)?
        .iter()
        .map(|l| listener_view(l, false))
        .collect();
    Ok(response::json(StatusCode::OK, &json!({"listeners": mine})))
}

pub async fn get(_: &AppState, owned: OwnedListener, _: Req) -> Result<Resp, Error> {
    Ok(response::json(
        StatusCode::OK,
        &listener_view(&owned.listener, true),
    ))
}

pub async fn delete(state: &AppState, owned: OwnedListener, _: Req) -> Result<Resp, Error> {
    listeners::remove(state, &owned.listener).await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryView {
    id: u64,
    webhook_id: String,
    state: DeliveryState,
    attempts: u32,
    next_attempt_at: Option<String>,
    last_attempt_at: Option<String>,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    created_at: String,
}

fn delivery_view(d: &Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        webhook_id: d.webhook_id.clone(),
        state: d.state,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at.map(rfc3339_ms),
        last_attempt_at: d.last_attempt_at.map(rfc3339_ms),
        last_status_code: d.last_status_code,
        last_error: d.last_error.clone(),
        created_at: rfc3339_ms(d.created_at),
    }
}

/// `?state=` of the deliveries listing.
fn wanted_state(raw: Option<String>) -> Result<Option<DeliveryState>, Error> {
    raw.map(|v| {
        serde_json::from_value(json!(v))
            .map_err(|_| Error::invalid("state", "must be pending, succeeded, failed or cancelled"))
    })
    .transpose()
}

pub async fn deliveries(state: &AppState, owned: OwnedListener, req: Req) -> Result<Resp, Error> {
    let limit = req.query("limit").as_deref().map_or(Ok(50), page_limit)?;
    let wanted = wanted_state(req.query("state"))?;
    let list: Vec<DeliveryView> = listeners::deliveries(state, &owned.listener, wanted, limit)?
        .iter()
        .map(delivery_view)
        .collect();
    Ok(response::json(StatusCode::OK, &json!({"deliveries": list})))
}

pub async fn redeliver(state: &AppState, owned: OwnedListener, req: Req) -> Result<Resp, Error> {
    let d = listeners::redeliver(state, &owned.listener, req.param("deliveryId")).await?;
    Ok(response::json(StatusCode::ACCEPTED, &delivery_view(&d)))
}

pub async fn redeliver_failed(
    state: &AppState,
    owned: OwnedListener,
    _: Req,
) -> Result<Resp, Error> {
    let redelivering = listeners::redeliver_failed(state, &owned.listener).await?;
    Ok(response::json(
        StatusCode::ACCEPTED,
        &json!({"redelivering": redelivering}),
    ))
}

/// `POST /api/v1/listeners/{id}/test`: a sample event for this listener alone.
pub async fn test(state: &AppState, owned: OwnedListener, _: Req) -> Result<Resp, Error> {
    let d = listeners::queue_test(state, &owned.listener).await?;
    Ok(response::json(StatusCode::ACCEPTED, &delivery_view(&d)))
}
