//! Events: what Meta sent lately, and the quarantine of signed bodies we could not use.

use askama::Template;
use hyper::StatusCode;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;

use super::chart::{Chart, Svg};
use super::views::{stamp, Chrome, Stamp};
use super::{html, Ctx};
use crate::domain::events::{MESSAGE_ECHO, MESSAGE_RECEIVED, MESSAGE_STANDBY, MESSAGE_STATUS};
use crate::error::Error;
use crate::http::response::Resp;
use crate::store::RecentEvent;

const SHOWN: usize = 100;
/// Event types the chart draws apart; the rest are one "other" line.
const CHARTED_TYPES: usize = 4;
/// Quarantined bodies can be large; the page shows their start.
const BODY_PREVIEW: usize = 4_000;
const TEXT_PREVIEW: usize = 140;

pub struct EventRow {
    /// What kind of event, in a word or two: message, status, template.status…
    pub kind: String,
    /// Received messages stand out; the rest are muted.
    pub kind_pill: &'static str,
    pub waba_id: String,
    pub phone_number_id: String,
    pub at: Stamp,
    /// Who wrote, or whom a status is about.
    pub who: String,
    /// The text of a message, its type otherwise; the status of a status event.
    pub summary: String,
    /// For status events: the message, its timeline page, and the status's colour.
    pub message_id: String,
    pub message_link: Option<String>,
    pub status_pill: &'static str,
    /// A test event sent to one listener ("Send a test event"), not from Meta.
    pub test: bool,
    /// An event of a sandbox WABA, from `wabridge simulate` or a sandbox send.
    pub sandbox: bool,
}

pub struct QuarantineRow {
    pub id: u64,
    pub at: Stamp,
    pub reason: String,
    pub body: String,
    pub truncated: bool,
}

#[derive(Template)]
#[template(path = "admin/events.html")]
struct EventsPage {
    chrome: Chrome,
    events: Vec<EventRow>,
    quarantine: Vec<QuarantineRow>,
    /// Events per type over the last 24 hours.
    traffic: Svg,
}

pub async fn page(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let store = &cx.state.store;
    let events = store
        .recent_events(SHOWN)?
        .iter()
        .map(|e| event_row(e, cx.now))
        .collect();
    let quarantine = store
        .quarantined(SHOWN)?
        .into_iter()
        .map(|q| QuarantineRow {
            id: q.id,
            at: stamp(q.received_at, cx.now),
            reason: q.reason,
            truncated: q.body.chars().count() > BODY_PREVIEW,
            body: q.body.chars().take(BODY_PREVIEW).collect(),
        })
        .collect();
    let page = EventsPage {
        chrome: cx.chrome("events"),
        events,
        quarantine,
        traffic: Chart {
            id: "events-chart",
            what: "Events stored",
            series: &cx.state.traffic.events_by_type(cx.now, CHARTED_TYPES),
        }
        .draw(),
    };
    Ok(html(StatusCode::OK, &page))
}

fn event_row(e: &RecentEvent, now: u64) -> EventRow {
    let body = serde_json::from_slice::<Value>(&e.body).unwrap_or(Value::Null);
    let test = body.get("test") == Some(&Value::Bool(true));
    let sandbox = body.get("sandbox") == Some(&Value::Bool(true));
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
    let message_id = s("id").to_string();
    // Events stored before schema 6 say "messages" or "statuses".
    let kind = e.kind.as_str();
    let (who, summary, message_link) = if kind == "statuses" || kind == MESSAGE_STATUS {
        let who = first_of(&[s("recipientId"), s("recipientUserId")]);
        let link = utf8_percent_encode(s("id"), NON_ALPHANUMERIC).to_string();
        (who, s("status").to_string(), Some(link))
    } else {
        let number = first_of(&[s("waId"), s("userId"), s("from")]);
        let who = match s("name") {
            "" => number,
            name => format!("{name} · {number}"),
        };
        let summary = if matches!(
            kind,
            "messages" | MESSAGE_RECEIVED | MESSAGE_STANDBY | MESSAGE_ECHO
        ) {
            message_summary(&data)
        } else {
            // Template, account, call and other events: what happened, in Meta's word.
            first_of(&[s("event"), s("status"), s("decision"), s("field")])
        };
        (who, summary, None)
    };
    let (kind_label, kind_pill) = kind_label(kind);
    EventRow {
        kind: kind_label,
        kind_pill,
        waba_id: e.waba_id.clone(),
        phone_number_id: e.phone_number_id.clone(),
        at: stamp(e.received_at, now),
        who,
        status_pill: super::messages::pill(&summary),
        summary,
        message_id,
        message_link,
        test,
        sandbox,
    }
}

fn first_of(values: &[&str]) -> String {
    values
        .iter()
        .find(|v| !v.is_empty())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// The text a user wrote (shortened), or what kind of message it was.
fn message_summary(data: &Value) -> String {
    let kind = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    let text = data
        .pointer("/text/body")
        .or_else(|| data.pointer(&format!("/{kind}/caption")))
        .and_then(Value::as_str);
    match text {
        Some(t) if t.chars().count() > TEXT_PREVIEW => {
            format!("{}…", t.chars().take(TEXT_PREVIEW).collect::<String>())
        }
        Some(t) => t.to_string(),
        None => format!("[{kind}]"),
    }
}

/// An event's kind in a word or two, and its pill: received messages stand
/// out. Events stored before schema 6 say "messages" or "statuses".
fn kind_label(kind: &str) -> (String, &'static str) {
    match kind {
        "messages" | MESSAGE_RECEIVED => ("message".into(), "info"),
        "statuses" | MESSAGE_STATUS => ("status".into(), "muted"),
        other => (
            other.strip_prefix("whatsapp.").unwrap_or(other).into(),
            "muted",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_of_event_is_named_not_only_messages_and_statuses() {
        assert_eq!(kind_label(MESSAGE_RECEIVED), ("message".into(), "info"));
        assert_eq!(kind_label("messages"), ("message".into(), "info"));
        assert_eq!(kind_label(MESSAGE_STATUS), ("status".into(), "muted"));
        assert_eq!(kind_label("whatsapp.template.status").0, "template.status");
        assert_eq!(kind_label("whatsapp.call").0, "call");
    }

    #[test]
    fn a_message_shows_its_text_or_its_kind() {
        assert_eq!(
            message_summary(&json!({"type": "text", "text": {"body": "hi"}})),
            "hi"
        );
        assert_eq!(
            message_summary(&json!({"type": "image", "image": {"caption": "look"}})),
            "look"
        );
        assert_eq!(message_summary(&json!({"type": "location"})), "[location]");
        let long = "x".repeat(500);
        assert_eq!(
            message_summary(&json!({"type": "text", "text": {"body": long}}))
                .chars()
                .count(),
            TEXT_PREVIEW + 1
        );
    }
}
