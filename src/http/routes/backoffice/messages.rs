//! Messages: find one by id or recipient, its status timeline, and the messages
//! that got `sent` but never `delivered` (the 24-hour window's silent drops).

use askama::Template;
use hyper::StatusCode;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

use super::views::{stamp, utc, Chrome, Stamp};
use super::{html, redirect, Ctx};
use crate::domain::model::StatusRecord;
use crate::domain::sandbox::is_sandbox_id;
use crate::domain::statuses;
use crate::error::Error;
use crate::http::response::Resp;
use crate::meta::hint_for;

const DEFAULT_MINUTES: u64 = 10;
const MAX_MINUTES: u64 = 7 * 24 * 60;
const LIST_LIMIT: usize = 100;

pub struct MessageRow {
    pub id: String,
    pub link: String,
    pub status: String,
    pub pill: &'static str,
    pub recipient: String,
    pub waba_id: String,
    /// A message sent from a sandbox's number.
    pub sandbox: bool,
    pub at: Stamp,
}

pub struct Step {
    pub status: String,
    pub pill: &'static str,
    /// When Meta says it happened.
    pub meta_time: String,
    pub received: Stamp,
    pub errors: Vec<StepError>,
    pub category: String,
}

pub struct StepError {
    pub code: String,
    pub message: String,
    pub hint: String,
}

#[derive(Template)]
#[template(path = "admin/messages.html")]
struct MessagesPage {
    chrome: Chrome,
    q: String,
    searched: bool,
    found: Vec<MessageRow>,
    minutes: u64,
    awaiting: Vec<MessageRow>,
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct TimelinePage {
    chrome: Chrome,
    id: String,
    current: String,
    pill: &'static str,
    recipient: String,
    waba_id: String,
    sandbox: bool,
    phone_number_id: String,
    steps: Vec<Step>,
    /// Only `sent` so far, for longer than the default wait.
    silent: bool,
}

#[derive(Template)]
#[template(path = "admin/message_pending.html")]
struct NoStatusPage {
    chrome: Chrome,
    id: String,
    /// The id, percent-encoded for this page's own address.
    link: String,
}

pub async fn page(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let query = cx.query();
    let q = query.get("q").trim().to_string();
    let minutes = query
        .get("minutes")
        .trim()
        .parse::<u64>()
        .unwrap_or(DEFAULT_MINUTES)
        .min(MAX_MINUTES);
    let store = &cx.state.store;
    if !q.is_empty() && !store.status_history(&q)?.is_empty() {
        return Ok(redirect(&format!("/admin/messages/{}", link(&q))));
    }
    let found = if q.is_empty() {
        Vec::new()
    } else {
        let mut ids = store.messages_to(&q, LIST_LIMIT)?;
        let plain = phone_digits(&q);
        if ids.is_empty() && plain != q {
            ids = store.messages_to(&plain, LIST_LIMIT)?;
        }
        rows(cx, ids)?
    };
    let sent_before = cx.now.saturating_sub(minutes * 60_000);
    let awaiting = store
        .awaiting_delivery(sent_before, LIST_LIMIT)?
        .into_iter()
        .map(|a| a.message_id)
        .collect();
    let page = MessagesPage {
        chrome: cx.chrome("messages"),
        searched: !q.is_empty(),
        q,
        found,
        minutes,
        awaiting: rows(cx, awaiting)?,
    };
    Ok(html(StatusCode::OK, &page))
}

/// "+420 777-123 456" → "420777123456", the way Meta writes `wa_id`.
fn phone_digits(q: &str) -> String {
    q.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '+' | '.'))
        .collect()
}

fn link(id: &str) -> String {
    utf8_percent_encode(id, NON_ALPHANUMERIC).to_string()
}

pub(super) fn pill(status: &str) -> &'static str {
    match status {
        "delivered" | "read" | "played" => "ok",
        "sent" => "warn",
        "failed" => "bad",
        _ => "muted",
    }
}

fn rows(cx: &Ctx<'_>, ids: Vec<String>) -> Result<Vec<MessageRow>, Error> {
    let mut out = Vec::new();
    for id in ids {
        let history = statuses::ordered(cx.state.store.status_history(&id)?);
        let Some(current) = statuses::current(&history) else {
            continue;
        };
        out.push(MessageRow {
            link: link(&id),
            status: current.status.clone(),
            pill: pill(&current.status),
            recipient: recipient(&history),
            waba_id: current.waba_id.clone(),
            sandbox: is_sandbox_id(&current.waba_id),
            at: stamp(current.received_at, cx.now),
            id,
        });
    }
    Ok(out)
}

fn recipient(history: &[StatusRecord]) -> String {
    history
        .iter()
        .find_map(|r| {
            r.recipient_id
                .clone()
                .or_else(|| r.recipient_user_id.clone())
        })
        .unwrap_or_default()
}

pub async fn timeline(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let id = cx.param("messageId");
    let history = statuses::ordered(cx.state.store.status_history(id)?);
    let Some(current) = statuses::current(&history).cloned() else {
        return Ok(no_status_yet(cx, id, StatusCode::NOT_FOUND));
    };
    if statuses::is_send_answer(&current.status) {
        // Only wabridge's own record of the send: Meta has said nothing yet.
        return Ok(no_status_yet(cx, id, StatusCode::OK));
    }
    let silent = current.status == "sent"
        && cx.now.saturating_sub(current.received_at) > DEFAULT_MINUTES * 60_000;
    let page = TimelinePage {
        chrome: cx.chrome("messages"),
        id: id.to_string(),
        pill: pill(&current.status),
        current: current.status.clone(),
        recipient: recipient(&history),
        waba_id: current.waba_id.clone(),
        sandbox: is_sandbox_id(&current.waba_id),
        phone_number_id: current.phone_number_id.clone(),
        steps: history.iter().map(|r| step(r, cx.now)).collect(),
        silent,
    };
    Ok(html(StatusCode::OK, &page))
}

/// A message with no status: just sent (Meta's `sent` takes a moment), sent
/// while the webhook was not set up, or a mistyped id. 404, with what to check.
fn no_status_yet(cx: &Ctx<'_>, id: &str, code: StatusCode) -> Resp {
    let page = NoStatusPage {
        chrome: cx.chrome("messages"),
        id: id.to_string(),
        link: percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    };
    html(code, &page)
}

fn step(r: &StatusRecord, now: u64) -> Step {
    let meta_time = r
        .timestamp
        .as_deref()
        .and_then(|t| t.parse::<u64>().ok())
        .map(|secs| utc(secs.saturating_mul(1000)))
        .unwrap_or_default();
    let category = r
        .pricing
        .as_ref()
        .and_then(|p| p.get("category"))
        .or_else(|| {
            r.conversation
                .as_ref()
                .and_then(|c| c.pointer("/origin/type"))
        })
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Step {
        status: r.status.clone(),
        pill: pill(&r.status),
        meta_time,
        received: stamp(r.received_at, now),
        errors: r
            .errors
            .as_ref()
            .and_then(Value::as_array)
            .map(|errors| errors.iter().map(step_error).collect())
            .unwrap_or_default(),
        category,
    }
}

fn step_error(e: &Value) -> StepError {
    let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
    let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
    let title = text("title");
    let detail = e
        .pointer("/error_data/details")
        .and_then(Value::as_str)
        .unwrap_or_else(|| text("message"));
    let message = match (title.is_empty(), detail.is_empty() || detail == title) {
        (false, false) => format!("{title}: {detail}"),
        (false, true) => title.to_string(),
        _ => detail.to_string(),
    };
    StepError {
        code: if code == 0 {
            String::new()
        } else {
            code.to_string()
        },
        hint: hint_for(code, &message).unwrap_or_default().to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phone_numbers_are_searched_as_meta_writes_them() {
        assert_eq!(phone_digits("+420 777-123 456"), "420777123456");
        assert_eq!(phone_digits("US.1349"), "US1349");
    }

    #[test]
    fn a_failed_status_carries_the_guides_hint() {
        let e = step_error(&json!({"code": 131047, "title": "Re-engagement message",
            "error_data": {"details": "Message failed to send because more than 24 hours have passed"}}));
        assert_eq!(e.code, "131047");
        assert!(e
            .message
            .starts_with("Re-engagement message: Message failed"));
        assert!(e.hint.contains("24 hours"));
    }
}
