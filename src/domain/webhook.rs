//! Meta's webhook body → the events we route: one per `messages[]` item and one
//! per `statuses[]` item, each tagged with its WABA and phone number ID.

use serde_json::{json, Map, Value};

use super::ids::token_hash;
use super::model::{EventKind, InboundEvent, StatusRecord};
use super::time::rfc3339_secs;

/// Why a correctly signed body cannot be used; such a body goes to quarantine.
#[derive(Debug, Clone, PartialEq)]
pub struct Unusable(pub String);

/// Parses a verified webhook body. `now_secs` stands in for a missing timestamp.
pub fn parse(body: &[u8], received_at_ms: u64) -> Result<Vec<InboundEvent>, Unusable> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| Unusable(format!("not valid JSON: {e}")))?;
    let object = root
        .get("object")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if object != "whatsapp_business_account" {
        return Err(Unusable(format!(
            "object is {:?}, not \"whatsapp_business_account\"",
            object
        )));
    }
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| Unusable("no entry[] array".into()))?;
    let mut events = Vec::new();
    for entry in entries {
        let waba_id = id_string(entry.get("id"))
            .ok_or_else(|| Unusable("an entry has no id (WABA ID)".into()))?;
        for change in entry
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(value) = change.get("value") {
                parse_change(&waba_id, value, received_at_ms, &mut events)?;
            }
        }
    }
    Ok(events)
}

fn parse_change(
    waba_id: &str,
    value: &Value,
    received_at_ms: u64,
    out: &mut Vec<InboundEvent>,
) -> Result<(), Unusable> {
    let messages = value.get("messages").and_then(Value::as_array);
    let statuses = value.get("statuses").and_then(Value::as_array);
    if messages.is_none() && statuses.is_none() {
        // Other fields (template updates, account alerts) have no listeners yet.
        return Ok(());
    }
    let phone_number_id =
        id_string(value.pointer("/metadata/phone_number_id")).ok_or_else(|| {
            Unusable("a change has messages or statuses but no metadata.phone_number_id".into())
        })?;
    let contacts: &[Value] = value
        .get("contacts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let ctx = Ctx {
        waba_id,
        phone_number_id: &phone_number_id,
        contacts,
        received_at_ms,
    };
    for message in messages.into_iter().flatten() {
        out.push(ctx.message_event(message));
    }
    for status in statuses.into_iter().flatten() {
        out.push(ctx.status_event(status));
    }
    Ok(())
}

struct Ctx<'a> {
    waba_id: &'a str,
    phone_number_id: &'a str,
    contacts: &'a [Value],
    received_at_ms: u64,
}

impl Ctx<'_> {
    fn message_event(&self, message: &Value) -> InboundEvent {
        let from = str_field(message, "from");
        let from_user_id = str_field(message, "from_user_id");
        let contact = self.contact_for(from.as_deref(), from_user_id.as_deref());
        let mut data = message.as_object().cloned().unwrap_or_default();
        self.tag(&mut data);
        put(
            &mut data,
            "waId",
            contact.and_then(|c| str_field(c, "wa_id")).or(from),
        );
        put(
            &mut data,
            "userId",
            contact
                .and_then(|c| str_field(c, "user_id"))
                .or(from_user_id),
        );
        put(
            &mut data,
            "parentUserId",
            contact
                .and_then(|c| str_field(c, "parent_user_id"))
                .or_else(|| str_field(message, "from_parent_user_id")),
        );
        put(
            &mut data,
            "name",
            contact
                .and_then(|c| c.pointer("/profile/name"))
                .and_then(as_string),
        );
        put(
            &mut data,
            "username",
            contact
                .and_then(|c| c.pointer("/profile/username"))
                .and_then(as_string),
        );
        let key = match str_field(message, "id") {
            Some(id) => format!("m:{id}"),
            None => format!("m#{}", content_hash(message)),
        };
        self.event(EventKind::Messages, key, message, data, None)
    }

    fn status_event(&self, status: &Value) -> InboundEvent {
        let id = str_field(status, "id").unwrap_or_default();
        let state = str_field(status, "status").unwrap_or_else(|| "unknown".into());
        let recipient_id = str_field(status, "recipient_id");
        let contact = self.contact_for(
            recipient_id.as_deref(),
            str_field(status, "recipient_user_id").as_deref(),
        );
        let recipient_user_id = str_field(status, "recipient_user_id")
            .or_else(|| contact.and_then(|c| str_field(c, "user_id")));
        let record = StatusRecord {
            message_id: id.clone(),
            status: state.clone(),
            timestamp: str_field(status, "timestamp"),
            recipient_id: recipient_id.clone(),
            recipient_user_id: recipient_user_id.clone(),
            errors: status.get("errors").cloned(),
            conversation: status.get("conversation").cloned(),
            pricing: status.get("pricing").cloned(),
            waba_id: self.waba_id.to_string(),
            phone_number_id: self.phone_number_id.to_string(),
            received_at: self.received_at_ms,
        };
        let mut data = Map::new();
        data.insert("id".into(), json!(id));
        put(&mut data, "recipientId", recipient_id);
        put(&mut data, "recipientUserId", recipient_user_id);
        put(
            &mut data,
            "recipientParentUserId",
            str_field(status, "recipient_parent_user_id")
                .or_else(|| contact.and_then(|c| str_field(c, "parent_user_id"))),
        );
        data.insert("status".into(), json!(state));
        for (from, to) in [
            ("timestamp", "timestamp"),
            ("conversation", "conversation"),
            ("pricing", "pricing"),
            ("errors", "errors"),
            ("biz_opaque_callback_data", "bizOpaqueCallbackData"),
        ] {
            if let Some(v) = status.get(from) {
                data.insert(to.into(), v.clone());
            }
        }
        self.tag(&mut data);
        let key = if id.is_empty() {
            format!("s#{}", content_hash(status))
        } else {
            format!("s:{id}:{state}")
        };
        self.event(EventKind::Statuses, key, status, data, Some(record))
    }

    fn tag(&self, data: &mut Map<String, Value>) {
        data.insert("wabaId".into(), json!(self.waba_id));
        data.insert("phoneNumberId".into(), json!(self.phone_number_id));
    }

    fn event(
        &self,
        kind: EventKind,
        dedupe_key: String,
        raw: &Value,
        data: Map<String, Value>,
        status: Option<StatusRecord>,
    ) -> InboundEvent {
        let secs = str_field(raw, "timestamp")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(self.received_at_ms / 1000);
        let envelope = json!({
            "type": kind.webhook_type(),
            "timestamp": rfc3339_secs(secs),
            "data": Value::Object(data),
        });
        InboundEvent {
            kind,
            waba_id: self.waba_id.to_string(),
            phone_number_id: self.phone_number_id.to_string(),
            dedupe_key,
            body: serde_json::to_vec(&envelope).unwrap_or_default(),
            status,
        }
    }

    /// The `contacts[]` entry describing this user: by phone or by BSUID; the only
    /// entry only when the event names no user at all. An event for a user who is
    /// not listed (a failed status, a system message batched with another user's
    /// event) gets none: another user's name or BSUID must never stick to it.
    fn contact_for(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<&Value> {
        if wa_id.is_none() && user_id.is_none() {
            return match self.contacts {
                [only] => Some(only),
                _ => None,
            };
        }
        let matches = |c: &&Value| {
            (wa_id.is_some() && str_field(c, "wa_id").as_deref() == wa_id)
                || (user_id.is_some() && str_field(c, "user_id").as_deref() == user_id)
        };
        self.contacts.iter().find(matches)
    }
}

/// Meta sends ids as strings, but a hand-written test body may use numbers.
fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    id_string(v.get(key))
}

fn as_string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), Value::String(v));
    }
}

/// Stands in for a missing Meta id, so a redelivered copy still dedupes.
fn content_hash(v: &Value) -> String {
    token_hash(&v.to_string())[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(changes: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": changes}]})).unwrap()
    }

    fn data(e: &InboundEvent) -> Value {
        serde_json::from_slice::<Value>(&e.body).unwrap()["data"].clone()
    }

    #[test]
    fn a_text_message_carries_its_sender() {
        let b = body(json!([{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
            "contacts": [{"profile": {"name": "Jana"}, "wa_id": "420777123456", "user_id": "CZ.1"}],
            "messages": [{"from": "420777123456", "id": "wamid.A", "timestamp": "1700000000", "type": "text", "text": {"body": "hi"}}]
        }}]));
        let events = parse(&b, 0).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(
            (e.kind, e.waba_id.as_str(), e.phone_number_id.as_str()),
            (EventKind::Messages, "WABA1", "PN1")
        );
        assert_eq!(e.dedupe_key, "m:wamid.A");
        let envelope: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(envelope["type"], "whatsapp.message.received");
        assert_eq!(envelope["timestamp"], "2023-11-14T22:13:20Z");
        let d = data(e);
        assert_eq!(d["text"]["body"], "hi");
        assert_eq!(d["waId"], "420777123456");
        assert_eq!(d["userId"], "CZ.1");
        assert_eq!(d["name"], "Jana");
        assert_eq!(d["wabaId"], "WABA1");
    }

    #[test]
    fn a_bsuid_only_sender_is_identified_by_user_id() {
        let b = body(json!([{"field": "messages", "value": {
            "metadata": {"phone_number_id": "PN1"},
            "contacts": [{"profile": {"name": "Bob", "username": "@bob"}, "user_id": "US.13491208655302741918"}],
            "messages": [{"from_user_id": "US.13491208655302741918", "id": "wamid.B", "timestamp": "1700000000", "type": "text", "text": {"body": "hey"}}]
        }}]));
        let d = data(&parse(&b, 0).unwrap()[0]);
        assert_eq!(d["userId"], "US.13491208655302741918");
        assert_eq!(d["username"], "@bob");
        assert!(d.get("waId").is_none());
    }

    #[test]
    fn statuses_are_keyed_by_id_and_status() {
        let b = body(json!([{"field": "messages", "value": {
            "metadata": {"phone_number_id": "PN1"},
            "statuses": [
                {"id": "wamid.S", "status": "sent", "timestamp": "1700000001", "recipient_id": "420777123456",
                 "conversation": {"id": "c1"}, "pricing": {"billable": true}},
                {"id": "wamid.S", "status": "failed", "timestamp": "1700000002", "recipient_id": "420777123456",
                 "errors": [{"code": 131047, "title": "Re-engagement message"}]}
            ]
        }}]));
        let events = parse(&b, 5).unwrap();
        assert_eq!(events[0].dedupe_key, "s:wamid.S:sent");
        assert_eq!(events[1].dedupe_key, "s:wamid.S:failed");
        let d = data(&events[1]);
        assert_eq!(d["recipientId"], "420777123456");
        assert_eq!(d["errors"][0]["code"], 131047);
        assert_eq!(events[1].status.as_ref().unwrap().status, "failed");
        assert_eq!(events[0].status.as_ref().unwrap().received_at, 5);
    }

    #[test]
    fn an_unlisted_user_does_not_borrow_the_only_contact() {
        let b = body(json!([{"field": "messages", "value": {
            "metadata": {"phone_number_id": "PN1"},
            "contacts": [{"profile": {"name": "Jana"}, "wa_id": "420777123456", "user_id": "CZ.1"}],
            "statuses": [
                {"id": "wamid.F", "status": "failed", "timestamp": "1700000002", "recipient_id": "420601234567"}
            ]
        }}]));
        let d = data(&parse(&b, 0).unwrap()[0]);
        assert_eq!(d["recipientId"], "420601234567");
        assert!(d.get("recipientUserId").is_none(), "{d}");
    }

    #[test]
    fn garbage_is_unusable_not_a_panic() {
        assert!(parse(b"not json", 0).is_err());
        assert!(parse(br#"{"object":"page","entry":[]}"#, 0).is_err());
        assert!(parse(br#"{"object":"whatsapp_business_account"}"#, 0).is_err());
        assert!(parse(
            br#"{"object":"whatsapp_business_account","entry":[{"changes":[]}]}"#,
            0
        )
        .is_err());
        let no_phone = body(json!([{"value": {"messages": [{"id": "x"}]}}]));
        assert!(parse(&no_phone, 0).is_err());
    }

    #[test]
    fn other_fields_yield_no_events() {
        let b = body(
            json!([{"field": "message_template_status_update", "value": {"event": "APPROVED"}}]),
        );
        assert!(parse(&b, 0).unwrap().is_empty());
    }
}
