//! Sending messages, marking them read, the 24-hour window, and a message's
//! status history.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::model::StatusRecord;
use crate::domain::sandbox::is_sandbox_id;
use crate::domain::statuses;
use crate::domain::time::{rfc3339_ms, rfc3339_secs};
use crate::error::Error;
use crate::http::body::{read_json, read_limited};
use crate::http::guards::Caller;
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::meta::hint_for;
use crate::usecase::messages;

/// `?requireOpenWindow=true|false`; absent: the admin's default.
fn strict_window(req: &Req) -> Result<Option<bool>, Error> {
    match req.query("requireOpenWindow").as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(Error::invalid("requireOpenWindow", "must be true or false")),
    }
}

/// Send{Text,Image,…}Message: checks the message, the number and the window,
/// then `POST /{phone-number-id}/messages`.
pub async fn send(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let strict = strict_window(&req)?;
    let number = req.param("phoneNumberId").to_string();
    let message = read_json(req.body).await?;
    let view = messages::send(state, &account, &number, message, strict).await?;
    Ok(response::json(StatusCode::OK, &view))
}

/// A marketing template through Meta's Marketing Messages Lite API: the
/// same checks as a send, then `POST /{phone-number-id}/marketing_messages`.
pub async fn send_marketing(
    state: &AppState,
    Caller(account): Caller,
    req: Req,
) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId").to_string();
    let message = read_json(req.body).await?;
    let view = messages::send_marketing(state, &account, &number, message).await?;
    Ok(response::json(StatusCode::OK, &view))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReadRequest {
    #[serde(default)]
    typing_indicator: bool,
}

/// Marks an inbound message read, optionally with the typing indicator.
pub async fn mark_read(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId").to_string();
    let message_id = req.param("messageId").to_string();
    let raw = read_limited(req.body, 4096).await?;
    let request: ReadRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        ReadRequest::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| Error::invalid("body", format!("not the expected JSON: {e}")))?
    };
    let success = messages::mark_read(
        state,
        &account,
        &number,
        &message_id,
        request.typing_indicator,
    )
    .await?;
    Ok(response::json(StatusCode::OK, &json!({"success": success})))
}

/// The window with one user, by phone number (any common writing) or BSUID.
pub async fn window(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId");
    let w = messages::window_with(state, &account, number, req.param("user")).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({
            "phoneNumberId": number,
            "user": w.user,
            "window": w.window.state,
            "windowExpiresAt": w.window.expires_at.map(rfc3339_ms),
            "lastInboundAt": w.last_inbound_at.map(rfc3339_ms),
        }),
    ))
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
    /// For a group message: whose receipt this is (phone number and/or BSUID).
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_participant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient_participant_user_id: Option<String>,
}

fn step(r: &StatusRecord) -> StatusStep {
    StatusStep {
        status: r.status.clone(),
        timestamp: r
            .timestamp
            .as_deref()
            .and_then(|t| t.parse().ok())
            .map(rfc3339_secs),
        received_at: rfc3339_ms(r.received_at),
        errors: r.errors.clone().map(with_hints),
        conversation: r.conversation.clone(),
        pricing: r.pricing.clone(),
        recipient_participant_id: r.recipient_participant_id.clone(),
        recipient_participant_user_id: r.recipient_participant_user_id.clone(),
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

/// `GET /api/v1/messages/{messageId}`: the message's status history.
pub async fn status(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let id = req.param("messageId");
    let history = messages::history(state, &account, id)?;
    let current =
        statuses::current(&history).ok_or(Error::NotFound("status history for this message"))?;
    let mut view = json!({
        "messageId": id,
        "status": current.status,
        "wabaId": current.waba_id,
        "phoneNumberId": current.phone_number_id,
        "recipientId": history.iter().find_map(|r| r.recipient_id.clone()),
        "recipientUserId": history.iter().find_map(|r| r.recipient_user_id.clone()),
        "recipientType": history.iter().find_map(|r| r.recipient_type.clone()),
        "groupId": history.iter().find_map(|r| r.group_id.clone()),
        "history": history.iter().map(step).collect::<Vec<_>>(),
    });
    // Only a group message has these.
    if let Some(map) = view.as_object_mut() {
        map.retain(|k, v| !(v.is_null() && (k == "recipientType" || k == "groupId")));
    }
    if is_sandbox_id(&current.waba_id) {
        // A sandbox message: its statuses came from wabridge, not Meta.
        view["sandbox"] = json!(true);
    }
    Ok(response::json(StatusCode::OK, &view))
}
