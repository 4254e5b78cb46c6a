//! Sending messages (marketing templates through MM Lite too), marking them
//! read, the 24-hour window they depend on, and a message's status history.

use std::sync::PoisonError;

use serde_json::{json, Value};

use super::access::{self, own_phone_number, Number};
use super::{sandbox, Services};
use crate::domain::marketing;
use crate::domain::model::{Account, StatusRecord};
use crate::domain::outbound::{self, Outbound};
use crate::domain::recipient::{self, Recipient};
use crate::domain::statuses;
use crate::domain::throughput::retry_after_secs;
use crate::domain::time::{now_ms, rfc3339_ms};
use crate::domain::window::{self, Window, WindowState};
use crate::error::Error;

/// When the person known by any of `keys` last wrote to this number.
fn last_inbound(
    app: &Services,
    phone_number_id: &str,
    keys: &[String],
) -> Result<Option<u64>, Error> {
    let mut last = None;
    for key in keys {
        last = last.max(app.store.last_inbound(phone_number_id, key)?);
    }
    Ok(last)
}

/// The ids Meta's send answer gives the recipient (`wa_id`, `user_id`) that
/// the request did not use: Brazil's and Mexico's numbers are often written
/// one way by the flow and another by WhatsApp.
fn other_ids(answer: &Value, who: &Recipient) -> Vec<String> {
    ["/contacts/0/wa_id", "/contacts/0/user_id"]
        .iter()
        .filter_map(|p| answer.pointer(p).and_then(Value::as_str))
        .filter(|id| !id.is_empty() && *id != who.key())
        .map(str::to_string)
        .collect()
}

/// Remembers the ids Meta gave for the recipient, and returns the window as
/// known by all of them.
async fn learn_recipient(
    app: &Services,
    phone_number_id: &str,
    who: &Recipient,
    answer: &Value,
    before: Window,
) -> Window {
    let others = match who {
        // A group's id names no person: nothing to learn.
        Recipient::Group(_) => Vec::new(),
        _ => other_ids(answer, who),
    };
    if others.is_empty() {
        return before;
    }
    let mut ids = vec![who.key().to_string()];
    ids.extend(others);
    // The message is sent: failing to remember the link must not fail the answer.
    if let Err(e) = app.store.link_ids(ids.clone(), now_ms()).await {
        tracing::warn!(error = %e, "could not remember the recipient's other ids");
    }
    match last_inbound(app, phone_number_id, &ids) {
        Ok(last) if before.state != WindowState::Open => window::window(last, now_ms()),
        _ => before,
    }
}

/// Checks a message (Meta's message object without `messaging_product`), then
/// that the number `phone_number_id` is the account's, then the window (with
/// `strict`, or the admin's `requireOpenWindow`), sends it with the account's
/// token, and answers `{messageId, waId, window, …}`. Input Meta would refuse
/// is refused before Meta is asked anything (CONTRACT §4). Also the
/// backoffice's test send.
pub async fn send(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    request: Value,
    strict: Option<bool>,
) -> Result<Value, Error> {
    let message = outbound::prepare(request)?;
    send_checked(
        app,
        account,
        phone_number_id,
        message,
        strict,
        Endpoint::Messages,
    )
    .await
}

/// A marketing template through Meta's Marketing Messages Lite API
/// (`POST /{phone-number-id}/marketing_messages`): the message and MM Lite's
/// own fields are checked (`domain::marketing`), then everything an ordinary
/// send checks, then Meta is asked. The answer is the send's.
pub async fn send_marketing(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    request: Value,
) -> Result<Value, Error> {
    let message = marketing::prepare(request)?;
    send_checked(
        app,
        account,
        phone_number_id,
        message,
        None,
        Endpoint::Marketing,
    )
    .await
}

/// Where a checked message goes at Meta.
#[derive(Clone, Copy)]
enum Endpoint {
    /// Cloud API's `/{phone-number-id}/messages`.
    Messages,
    /// The Marketing Messages Lite API's `/{phone-number-id}/marketing_messages`.
    Marketing,
}

impl Endpoint {
    fn edge(self) -> &'static str {
        match self {
            Endpoint::Messages => "messages",
            Endpoint::Marketing => "marketing_messages",
        }
    }
}

/// A checked message: the number is the account's, the window allows it,
/// the number's send rate has room; then Meta's `endpoint`, the history, the
/// recipient's other ids and the answer.
async fn send_checked(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    message: Outbound,
    strict: Option<bool>,
    endpoint: Endpoint,
) -> Result<Value, Error> {
    let number = own_phone_number(app, account, phone_number_id).await?;
    let strict = strict.unwrap_or_else(|| app.settings().require_open_window);
    let id = number.id().as_str();
    let last = last_inbound(app, id, &message.recipient.lookup_keys())?;
    let window = window::window(last, now_ms());
    let free_form = window::is_free_form(&message.message_type);
    if free_form && strict && window.state != WindowState::Open {
        return Err(Error::WindowClosed(format!(
            "not sent: the 24-hour customer-service window with this recipient is {}, and Meta would silently drop a {} message (requireOpenWindow is on)",
            state_name(window.state),
            message.message_type
        )));
    }
    pace(app, &number)?;
    let path = format!("{id}/{}", endpoint.edge());
    let answer = access::post(app, account, path, message.body.clone()).await?;
    record_accepted(app, &number, &message, &answer).await;
    if let Some(sandbox) = &account.sandbox {
        sandbox::feed_back(app, sandbox, &answer);
    }
    let window = learn_recipient(app, id, &message.recipient, &answer, window).await;
    let mut view = json!({
        "messageId": answer.pointer("/messages/0/id"),
        "messageStatus": answer.pointer("/messages/0/message_status"),
        "waId": answer.pointer("/contacts/0/wa_id"),
        "userId": answer.pointer("/contacts/0/user_id"),
        "window": window.state,
        "windowExpiresAt": window.expires_at.map(rfc3339_ms),
    });
    if let Some(warning) = window::warning(window.state).filter(|_| free_form) {
        view["warning"] = json!(warning);
    }
    if account.sandbox.is_some() {
        // Answered by wabridge, not Meta: said in the answer, as in event bodies.
        view["sandbox"] = json!(true);
    }
    Ok(strip_nulls(view))
}

/// Counts the send against the number's `--send-rate-per-number` (20 a
/// second for a known coexistence number), last of the checks so that a
/// refused or invalid message uses no token, or refuses it with the wait
/// before Meta is asked.
fn pace(app: &Services, number: &Number) -> Result<(), Error> {
    let mut buckets = app.send_rate.lock().unwrap_or_else(PoisonError::into_inner);
    buckets
        .try_take(number.id(), now_ms())
        .map_err(|wait_ms| Error::RateLimited {
            phone_number_id: number.id().to_string(),
            rate: buckets.rate_for(number.id()),
            retry_after: retry_after_secs(wait_ms),
        })
}

/// Starts the message's status history with Meta's answer (`accepted`), so
/// `GET /api/v1/messages/{id}` knows the message before Meta's first status.
/// Meta has taken the message: failing to record it is logged, not answered.
async fn record_accepted(app: &Services, number: &Number, message: &Outbound, answer: &Value) {
    let Some(message_id) = answer.pointer("/messages/0/id").and_then(Value::as_str) else {
        return;
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let answered_wa_id = text(answer.pointer("/contacts/0/wa_id"));
    let answered_user_id = text(answer.pointer("/contacts/0/user_id"));
    let (recipient_id, recipient_user_id, group_id) = match &message.recipient {
        Recipient::Phone(digits) => (
            answered_wa_id.or(Some(digits.clone())),
            answered_user_id,
            None,
        ),
        Recipient::UserId(id) => (answered_wa_id, Some(id.clone()), None),
        Recipient::Group(id) => (Some(id.clone()), None, Some(id.clone())),
    };
    let now = now_ms();
    let record = StatusRecord {
        message_id: message_id.to_string(),
        status: text(answer.pointer("/messages/0/message_status"))
            .unwrap_or_else(|| "accepted".into()),
        timestamp: Some((now / 1000).to_string()),
        recipient_id,
        recipient_user_id,
        biz_opaque_callback_data: text(message.body.get("biz_opaque_callback_data")),
        recipient_type: text(message.body.get("recipient_type")),
        group_id,
        waba_id: number.waba().to_string(),
        phone_number_id: number.id().to_string(),
        received_at: now,
        ..StatusRecord::default()
    };
    if let Err(e) = app.store.record_sent(record).await {
        tracing::error!(message = %message_id, error = %e, "cannot record a sent message in its history");
    }
}

fn state_name(state: WindowState) -> &'static str {
    match state {
        WindowState::Open => "open",
        WindowState::Closed => "closed",
        WindowState::Unknown => {
            "unknown (wabridge has not seen this recipient write to this number)"
        }
    }
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|k, v| !v.is_null() || k == "windowExpiresAt");
    }
    v
}

/// Marks an inbound message read (blue ticks), optionally showing "typing…"
/// to the user until the reply is sent or 25 seconds pass.
pub async fn mark_read(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    message_id: &str,
    typing_indicator: bool,
) -> Result<bool, Error> {
    if message_id.is_empty()
        || message_id.len() > 512
        || !message_id.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(Error::invalid(
            "messageId",
            "must be the id (wamid…) of a message the user sent",
        ));
    }
    let mut body =
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": message_id});
    if typing_indicator {
        body["typing_indicator"] = json!({"type": "text"});
    }
    let number = own_phone_number(app, account, phone_number_id).await?;
    let answer = access::post(app, account, format!("{}/messages", number.id()), body).await?;
    Ok(answer
        .get("success")
        .and_then(Value::as_bool)
        .unwrap_or(false))
}

/// The window with one user, by phone number (any common writing) or BSUID.
pub struct UserWindow {
    /// The user as wabridge keys them.
    pub user: String,
    pub window: Window,
    pub last_inbound_at: Option<u64>,
}

pub async fn window_with(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    user: &str,
) -> Result<UserWindow, Error> {
    let who = recipient::user("user", user)?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let last = last_inbound(app, number.id().as_str(), &who.lookup_keys())?;
    Ok(UserWindow {
        user: who.key().to_string(),
        window: window::window(last, now_ms()),
        last_inbound_at: last,
    })
}

/// A message's statuses, in order, as far as the account's WABAs go.
pub fn history(
    app: &Services,
    account: &Account,
    message_id: &str,
) -> Result<Vec<StatusRecord>, Error> {
    Ok(statuses::ordered(
        app.store.status_history_in(message_id, &account.waba_ids)?,
    ))
}
