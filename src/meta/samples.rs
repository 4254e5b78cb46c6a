//! Webhook bodies shaped exactly like Meta's (`whatsapp_business_account`
//! notifications), one event per body, of every kind a flow may see. The
//! simulator sends them; benchmarks and tests may build on them.

use serde_json::{json, Value};

/// Every kind of event the simulator can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    Text,
    Image,
    Video,
    Audio,
    Document,
    Sticker,
    Location,
    Contacts,
    ButtonReply,
    ListReply,
    Button,
    Reaction,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl SampleKind {
    pub const ALL: [SampleKind; 16] = [
        SampleKind::Text,
        SampleKind::Image,
        SampleKind::Video,
        SampleKind::Audio,
        SampleKind::Document,
        SampleKind::Sticker,
        SampleKind::Location,
        SampleKind::Contacts,
        SampleKind::ButtonReply,
        SampleKind::ListReply,
        SampleKind::Button,
        SampleKind::Reaction,
        SampleKind::Sent,
        SampleKind::Delivered,
        SampleKind::Read,
        SampleKind::Failed,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SampleKind::Text => "text",
            SampleKind::Image => "image",
            SampleKind::Video => "video",
            SampleKind::Audio => "audio",
            SampleKind::Document => "document",
            SampleKind::Sticker => "sticker",
            SampleKind::Location => "location",
            SampleKind::Contacts => "contacts",
            SampleKind::ButtonReply => "button-reply",
            SampleKind::ListReply => "list-reply",
            SampleKind::Button => "button",
            SampleKind::Reaction => "reaction",
            SampleKind::Sent => "sent",
            SampleKind::Delivered => "delivered",
            SampleKind::Read => "read",
            SampleKind::Failed => "failed",
        }
    }

    /// `messages`, `statuses`, or a single kind by name.
    pub fn parse_list(raw: &str) -> Result<Vec<SampleKind>, String> {
        let mut out = Vec::new();
        for word in raw.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "all" => out.extend(SampleKind::ALL),
                "messages" => out.extend(SampleKind::ALL.iter().filter(|k| !k.is_status())),
                "statuses" => out.extend(SampleKind::ALL.iter().filter(|k| k.is_status())),
                name => out.push(
                    SampleKind::ALL
                        .into_iter()
                        .find(|k| k.name() == name)
                        .ok_or_else(|| {
                            format!(
                                "unknown event kind {name:?}; use all, messages, statuses or one of: {}",
                                SampleKind::ALL.map(SampleKind::name).join(", ")
                            )
                        })?,
                ),
            }
        }
        if out.is_empty() {
            return Err("name at least one event kind".into());
        }
        Ok(out)
    }

    pub fn is_status(self) -> bool {
        matches!(
            self,
            SampleKind::Sent | SampleKind::Delivered | SampleKind::Read | SampleKind::Failed
        )
    }
}

/// Who sends to whom, as Meta's `metadata` and `contacts` describe it.
#[derive(Debug, Clone)]
pub struct SampleContext {
    pub waba_id: String,
    pub phone_number_id: String,
    /// The business's number as shown to users (`metadata.display_phone_number`).
    pub display_phone_number: String,
    /// The user's phone number (`wa_id`, `from`, `recipient_id`).
    pub from: String,
    /// The user's business-scoped user ID (BSUID).
    pub user_id: String,
    pub name: String,
    /// Unix seconds, as Meta's `timestamp` strings.
    pub timestamp: u64,
}

/// One sample: the body Meta would POST and the id of the event it carries.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: SampleKind,
    /// The message id (`wamid.…`) the event is about.
    pub message_id: String,
    pub body: Vec<u8>,
}

/// The `n`th sample of a run: `run` keeps ids unique across runs, so the
/// gateway's dedupe does not swallow a second run's events. An inbound message
/// gets the id `wamid.SIM<run>IN<n>`; a status is about the message the
/// business sent, `wamid.SIM<run>OUT<n>` (so sent, delivered and read of the
/// same `n` make one message's history; a failed one gets its own id).
pub fn sample(ctx: &SampleContext, kind: SampleKind, run: &str, n: u64) -> Sample {
    let message_id = match kind {
        SampleKind::Failed => format!("wamid.SIM{run}OUT{n:08}F"),
        k if k.is_status() => format!("wamid.SIM{run}OUT{n:08}"),
        _ => format!("wamid.SIM{run}IN{n:08}"),
    };
    let body = if kind.is_status() {
        status_body(ctx, kind, &message_id)
    } else {
        webhook_body(
            ctx,
            messages_value(ctx, vec![message(ctx, kind, &message_id, run)]),
        )
    };
    Sample {
        kind,
        message_id,
        body,
    }
}

/// Meta's webhook reporting status `kind` of the message `message_id` sent
/// to `ctx.from` (or, without it, to `ctx.user_id`).
pub fn status_body(ctx: &SampleContext, kind: SampleKind, message_id: &str) -> Vec<u8> {
    webhook_body(
        ctx,
        statuses_value(ctx, vec![status(ctx, kind, message_id)]),
    )
}

fn webhook_body(ctx: &SampleContext, value: Value) -> Vec<u8> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": ctx.waba_id, "changes": [{"field": "messages", "value": value}]}],
    });
    // A `Value`'s keys are strings and its numbers finite, and a `Vec` takes
    // any write: this cannot fail, and a sample has no error to report.
    serde_json::to_vec(&body).expect("a serde_json::Value always encodes")
}

fn metadata(ctx: &SampleContext) -> Value {
    json!({"display_phone_number": ctx.display_phone_number, "phone_number_id": ctx.phone_number_id})
}

fn messages_value(ctx: &SampleContext, messages: Vec<Value>) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(ctx),
        "contacts": [{"profile": {"name": ctx.name}, "wa_id": ctx.from, "user_id": ctx.user_id}],
        "messages": messages,
    })
}

fn statuses_value(ctx: &SampleContext, statuses: Vec<Value>) -> Value {
    json!({"messaging_product": "whatsapp", "metadata": metadata(ctx), "statuses": statuses})
}

/// A media object as Meta describes one: the id to download it with, its type and hash.
fn media(mime: &str, extra: Value) -> Value {
    let mut m = json!({"mime_type": mime, "sha256": "c2ltdWxhdGVkIG1lZGlhIHNoYTI1Ng==", "id": "1234567890123456"});
    if let (Some(m), Some(extra)) = (m.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    m
}

fn message(ctx: &SampleContext, kind: SampleKind, id: &str, run: &str) -> Value {
    let mut m = json!({
        "from": ctx.from,
        "from_user_id": ctx.user_id,
        "id": id,
        "timestamp": ctx.timestamp.to_string(),
    });
    // What a reply or a reaction refers to: a message the business sent earlier.
    let earlier = format!("wamid.SIM{run}BUSINESS");
    let context = json!({"from": ctx.display_phone_number, "id": earlier});
    let (type_name, content) = match kind {
        SampleKind::Text => ("text", json!({"body": "Hello from wabridge simulate 👋"})),
        SampleKind::Image => (
            "image",
            media("image/jpeg", json!({"caption": "A simulated photo"})),
        ),
        SampleKind::Video => (
            "video",
            media("video/mp4", json!({"caption": "A simulated video"})),
        ),
        SampleKind::Audio => (
            "audio",
            media("audio/ogg; codecs=opus", json!({"voice": true})),
        ),
        SampleKind::Document => (
            "document",
            media(
                "application/pdf",
                json!({"caption": "Invoice", "filename": "invoice.pdf"}),
            ),
        ),
        SampleKind::Sticker => ("sticker", media("image/webp", json!({"animated": false}))),
        SampleKind::Location => (
            "location",
            json!({"latitude": 50.0875, "longitude": 14.4213, "name": "Old Town Square", "address": "Staroměstské nám., Praha"}),
        ),
        SampleKind::Contacts => (
            "contacts",
            json!([{
                "name": {"formatted_name": "Jana Nováková", "first_name": "Jana", "last_name": "Nováková"},
                "phones": [{"phone": "+420 777 123 456", "type": "CELL", "wa_id": "420777123456"}]
            }]),
        ),
        SampleKind::ButtonReply => {
            m["context"] = context;
            (
                "interactive",
                json!({"type": "button_reply", "button_reply": {"id": "confirm", "title": "Confirm"}}),
            )
        }
        SampleKind::ListReply => {
            m["context"] = context;
            (
                "interactive",
                json!({"type": "list_reply", "list_reply": {"id": "slot-2", "title": "Tomorrow 10:00", "description": "Prague office"}}),
            )
        }
        SampleKind::Button => {
            m["context"] = context;
            (
                "button",
                json!({"text": "Yes, book it", "payload": "BOOK_YES"}),
            )
        }
        SampleKind::Reaction => ("reaction", json!({"message_id": earlier, "emoji": "👍"})),
        // Statuses are built by `status`.
        _ => ("unsupported", json!({})),
    };
    m["type"] = json!(type_name);
    m[type_name] = content;
    m
}

fn status(ctx: &SampleContext, kind: SampleKind, id: &str) -> Value {
    let mut s = json!({
        "id": id,
        "status": kind.name(),
        "timestamp": ctx.timestamp.to_string(),
    });
    // Meta names the recipient by whichever ids it has.
    if !ctx.from.is_empty() {
        s["recipient_id"] = json!(ctx.from);
    }
    if !ctx.user_id.is_empty() {
        s["recipient_user_id"] = json!(ctx.user_id);
    }
    match kind {
        SampleKind::Failed => {
            s["errors"] = json!([{
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
            }]);
        }
        SampleKind::Read => {}
        _ => {
            s["conversation"] =
                json!({"id": "CONVERSATION_SIMULATED", "origin": {"type": "service"}});
            s["pricing"] = json!({"billable": true, "pricing_model": "PMP", "category": "service", "type": "regular"});
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook;

    fn ctx() -> SampleContext {
        SampleContext {
            waba_id: "111".into(),
            phone_number_id: "PN1".into(),
            display_phone_number: "15550001111".into(),
            from: "420777123456".into(),
            user_id: "CZ.1".into(),
            name: "Jana".into(),
            timestamp: 1_764_000_000,
        }
    }

    #[test]
    fn every_kind_parses_as_one_event_of_the_right_kind() {
        for (n, kind) in SampleKind::ALL.into_iter().enumerate() {
            let s = sample(&ctx(), kind, "r1", n as u64);
            let events = webhook::parse(&s.body, 0).unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
            assert_eq!(events.len(), 1, "{kind:?}");
            let e = &events[0];
            let expected = if kind.is_status() {
                crate::domain::events::MESSAGE_STATUS
            } else {
                crate::domain::events::MESSAGE_RECEIVED
            };
            assert_eq!(
                (
                    e.event_type.as_str(),
                    e.waba_id.as_str(),
                    e.phone_number_id.as_str()
                ),
                (expected, "111", "PN1")
            );
            let data = &serde_json::from_slice::<Value>(&e.body).unwrap()["data"];
            if kind.is_status() {
                assert_eq!(data["status"], kind.name());
                assert_eq!(data["id"], s.message_id.as_str());
            } else {
                assert_eq!(data["id"], s.message_id.as_str());
                assert_eq!(data["waId"], "420777123456");
                assert_eq!(data["userId"], "CZ.1");
                let t = data["type"].as_str().unwrap();
                assert!(data.get(t).is_some(), "{kind:?} has its {t} object");
            }
        }
    }

    #[test]
    fn kinds_parse_by_name_and_group() {
        assert_eq!(SampleKind::parse_list("all").unwrap().len(), 16);
        assert_eq!(SampleKind::parse_list("statuses").unwrap().len(), 4);
        assert_eq!(
            SampleKind::parse_list("text,read").unwrap(),
            vec![SampleKind::Text, SampleKind::Read]
        );
        assert!(SampleKind::parse_list("txt").is_err());
    }
}
