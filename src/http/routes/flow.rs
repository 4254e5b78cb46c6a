//! The flow API: what a flow tool does with its account's API key.

use std::net::IpAddr;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::admin::AccountView;
use super::subscriptions::subscribe;
use crate::domain::ids::{new_id, new_webhook_secret};
use crate::domain::model::{Account, Delivery, DeliveryState, EventKind, Listener, StatusRecord};
use crate::domain::statuses;
use crate::domain::subscription::{Filters, Format, Requested};
use crate::domain::test_event::test_event;
use crate::domain::time::{now_ms, rfc3339_ms};
use crate::domain::urlguard::{parse_listener_url, UrlGuard};
use crate::error::Error;
use crate::http::auth::require_account;
use crate::http::body::{page_limit, read_json};
use crate::http::query::query_value;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::meta::hint_for;

pub fn me(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    Ok(response::json(StatusCode::OK, &AccountView::from(&account)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewListener {
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
    }
}

pub async fn create_listener(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    let account = require_account(state, &parts)?;
    let new: NewListener = read_json(body).await?;
    let requested = Requested {
        event: new.event,
        events: new.events,
        filters: new.filters,
        format: new.format,
    };
    let (listener, subscription) =
        register_listener(state, &account, &new.waba_id, &requested, &new.url).await?;
    let mut view = serde_json::to_value(listener_view(&listener, true))
        .map_err(|e| Error::internal("the listener view", e))?;
    view["subscription"] = subscription;
    Ok(response::json(StatusCode::CREATED, &view))
}

/// Checks and stores a listener of `account` (also the backoffice's form):
/// the WABA must be the account's, the subscription valid, the URL one the
/// guard permits; the WABA is subscribed to the Meta App first. Returns the
/// listener and Meta's answer to the subscription.
pub async fn register_listener(
    state: &AppState,
    account: &Account,
    waba_id: &str,
    requested: &Requested,
    url: &str,
) -> Result<(Listener, Value), Error> {
    let waba_id = waba_id.trim().to_string();
    if !account.waba_ids.contains(&waba_id) {
        return Err(Error::Forbidden(format!(
            "WABA {waba_id} is not one of this account's WhatsApp Business Accounts ({})",
            account.waba_ids.join(", ")
        )));
    }
    let wanted = requested.check()?;
    let url = check_target(&state.guard, url.trim()).await?;
    let subscription = subscribe(state, account, &waba_id).await?;
    let listener = Listener {
        id: new_id("lst"),
        account_id: account.id.clone(),
        waba_id,
        event: wanted.event,
        events: wanted.events,
        filters: wanted.filters,
        format: wanted.format,
        url,
        secret: new_webhook_secret(),
        created_at: now_ms(),
        stopped_reason: None,
        paused: false,
    };
    state.store.insert_listener(listener.clone()).await?;
    tracing::info!(listener = %listener.id, account = %account.id, waba = %listener.waba_id, events = %listener.events.join(","), "listener registered");
    Ok((listener, subscription))
}

/// The URL must parse and its host must resolve to an address the guard permits.
async fn check_target(guard: &UrlGuard, raw: &str) -> Result<String, Error> {
    let url = parse_listener_url(raw)?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Error::invalid("url", format!("cannot resolve {host}: {e}")))?
            .map(|a| a.ip())
            .collect(),
    };
    // Delivery connects only to permitted addresses (checked again at each attempt),
    // so one is enough here: `localhost` may also resolve to ::1 outside the allowed net.
    match addrs.iter().find(|ip| guard.permits(**ip)) {
        Some(_) => Ok(url.to_string()),
        None => Err(Error::invalid(
            "url",
            addrs
                .first()
                .map(|ip| guard.refusal(*ip))
                .unwrap_or_else(|| format!("{host} has no address")),
        )),
    }
}

fn own_listener(state: &AppState, account: &Account, id: &str) -> Result<Listener, Error> {
    match state.store.listener(id)? {
        Some(l) if l.account_id == account.id => Ok(l),
        _ => Err(Error::NotFound("listener")),
    }
}

pub fn list_listeners(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    let mine: Vec<ListenerView> = state
        .store
        .listeners()?
        .iter()
        .filter(|l| l.account_id == account.id)
        .map(|l| listener_view(l, false))
        .collect();
    Ok(response::json(StatusCode::OK, &json!({"listeners": mine})))
}

pub fn get_listener(state: &AppState, req: Request<Incoming>, id: &str) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    let l = own_listener(state, &account, id)?;
    Ok(response::json(StatusCode::OK, &listener_view(&l, true)))
}

pub async fn delete_listener(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    own_listener(state, &account, id)?;
    state.store.delete_listener(id.to_string()).await?;
    tracing::info!(listener = %id, "listener removed");
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

pub fn list_deliveries(state: &AppState, req: Request<Incoming>, id: &str) -> Result<Resp, Error> {
    let limit = query_value(req.uri(), "limit");
    let wanted = query_value(req.uri(), "state");
    let account = require_account(state, &req.into_parts().0)?;
    own_listener(state, &account, id)?;
    let limit = limit.as_deref().map_or(Ok(50), page_limit)?;
    let wanted: Option<DeliveryState> = wanted
        .map(|v| {
            serde_json::from_value(json!(v)).map_err(|_| {
                Error::invalid("state", "must be pending, succeeded, failed or cancelled")
            })
        })
        .transpose()?;
    let list: Vec<DeliveryView> = state
        .store
        .deliveries_of(id, if wanted.is_some() { 100_000 } else { limit })?
        .iter()
        .filter(|d| wanted.is_none_or(|w| d.state == w))
        .take(limit)
        .map(delivery_view)
        .collect();
    Ok(response::json(StatusCode::OK, &json!({"deliveries": list})))
}

pub async fn redeliver(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
    delivery: &str,
) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    own_listener(state, &account, id)?;
    let delivery_id: u64 = delivery.parse().map_err(|_| Error::NotFound("delivery"))?;
    match state.store.delivery(delivery_id)? {
        Some(d) if d.listener_id == id => {}
        _ => return Err(Error::NotFound("delivery")),
    }
    let d = state.store.redeliver(delivery_id, now_ms()).await?;
    state.wake.notify_one();
    Ok(response::json(StatusCode::ACCEPTED, &delivery_view(&d)))
}

pub async fn redeliver_failed(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    own_listener(state, &account, id)?;
    let redelivering = redeliver_all_failed(state, id).await?;
    Ok(response::json(
        StatusCode::ACCEPTED,
        &json!({"redelivering": redelivering}),
    ))
}

/// Queues every failed delivery of the listener again (each keeps its
/// `webhook-id`); returns how many. Also the backoffice's button.
pub async fn redeliver_all_failed(state: &AppState, listener_id: &str) -> Result<usize, Error> {
    let failed: Vec<u64> = state
        .store
        .deliveries_of(listener_id, usize::MAX)?
        .iter()
        .filter(|d| d.state == DeliveryState::Failed)
        .map(|d| d.id)
        .collect();
    let now = now_ms();
    for delivery_id in &failed {
        state.store.redeliver(*delivery_id, now).await?;
    }
    state.wake.notify_one();
    Ok(failed.len())
}

/// `POST /api/v1/listeners/{id}/test`: a sample event of the listener's kind
/// for this listener alone, delivered like any other (signed, retried, listed
/// in its deliveries), its body marked `"test": true`.
pub async fn send_test_event(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    let listener = own_listener(state, &account, id)?;
    let d = queue_test(state, &listener).await?;
    Ok(response::json(StatusCode::ACCEPTED, &delivery_view(&d)))
}

/// Queues a test event for `listener` (also the backoffice's button). A paused
/// listener gets it (the admin asked for it); a stopped one cannot.
pub async fn queue_test(state: &AppState, listener: &Listener) -> Result<Delivery, Error> {
    if let Some(reason) = &listener.stopped_reason {
        return Err(Error::Conflict(format!(
            "the listener is stopped ({reason}): the flow tool must register it again"
        )));
    }
    let now = now_ms();
    let event = test_event(&listener.subscribed(), &listener.waba_id, now)?;
    let d = state
        .store
        .queue_test_event(event, listener.clone(), now)
        .await?;
    state.wake.notify_one();
    tracing::info!(listener = %listener.id, delivery = d.id, "test event queued");
    Ok(d)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusStep {
    status: String,
    timestamp: Option<String>,
    received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pricing: Option<Value>,
}

fn step(r: &StatusRecord) -> StatusStep {
    StatusStep {
        status: r.status.clone(),
        timestamp: r
            .timestamp
            .as_deref()
            .and_then(|t| t.parse().ok())
            .map(crate::domain::time::rfc3339_secs),
        received_at: rfc3339_ms(r.received_at),
        errors: r.errors.clone().map(with_hints),
        conversation: r.conversation.clone(),
        pricing: r.pricing.clone(),
    }
}

/// Adds the guide's hint to each of Meta's errors it knows.
fn with_hints(mut errors: Value) -> Value {
    for e in errors.as_array_mut().into_iter().flatten() {
        let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = e
            .get("message")
            .or_else(|| e.get("title"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let (Some(hint), Some(obj)) = (hint_for(code, message), e.as_object_mut()) {
            obj.insert("hint".into(), json!(hint));
        }
    }
    errors
}

pub fn message_status(state: &AppState, req: Request<Incoming>, id: &str) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    let history: Vec<StatusRecord> = state
        .store
        .status_history(id)?
        .into_iter()
        .filter(|r| account.waba_ids.contains(&r.waba_id))
        .collect();
    let history = statuses::ordered(history);
    let Some(current) = statuses::current(&history) else {
        return Err(Error::NotFound("status history for this message"));
    };
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "messageId": id,
            "status": current.status,
            "wabaId": current.waba_id,
            "phoneNumberId": current.phone_number_id,
            "recipientId": history.iter().find_map(|r| r.recipient_id.clone()),
            "recipientUserId": history.iter().find_map(|r| r.recipient_user_id.clone()),
            "history": history.iter().map(step).collect::<Vec<_>>(),
        }),
    ))
}
