//! One event out of one item of a change (or out of the whole change): the
//! data listeners receive, the key that dedupes Meta's redeliveries, and the
//! envelope around them.

use serde_json::{json, Map, Value};

use super::contacts::Contacts;
use super::fields::{
    as_string, content_hash, media_id, object_of, put, put_user, secs_of, str_field, value_bytes,
};
use super::Change;
use crate::domain::events::{
    CALL, CALL_STATUS, MESSAGE_ECHO, MESSAGE_RECEIVED, MESSAGE_STANDBY, MESSAGE_STATUS,
};
use crate::domain::model::{InboundEvent, InboundSender, MetaSource, StatusRecord};
use crate::domain::sandbox;
use crate::domain::time::rfc3339_secs;
use crate::domain::window::opens_window;

/// What every event of one change for one WABA shares.
pub(super) struct Ctx<'a> {
    pub(super) change: &'a Change<'a>,
    pub(super) waba_id: &'a str,
    pub(super) business_id: Option<&'a str>,
    pub(super) contacts: &'a Contacts<'a>,
}

impl Ctx<'_> {
    pub(super) fn item_event(
        &self,
        event_type: &str,
        list: &'static str,
        i: usize,
        item: &Value,
    ) -> InboundEvent {
        let mut event = match (event_type, list) {
            (MESSAGE_RECEIVED | MESSAGE_STANDBY, "messages") | (MESSAGE_ECHO, _) => {
                self.message_event(event_type, item)
            }
            (MESSAGE_STATUS, _) => self.status_event(item),
            _ => self.other_event(event_type, item, true),
        };
        event.source.item = Some((list, i));
        event
    }

    pub(super) fn whole_event(&self, event_type: &str) -> InboundEvent {
        self.other_event(event_type, &self.change.value, false)
    }

    fn message_event(&self, event_type: &str, message: &Value) -> InboundEvent {
        let echo = event_type == MESSAGE_ECHO;
        // An echo is the business's own message: the user is its recipient.
        let (user, user_id) = if echo {
            (str_field(message, "to"), str_field(message, "to_user_id"))
        } else {
            (
                str_field(message, "from"),
                str_field(message, "from_user_id"),
            )
        };
        let contact_at = self.contact_at(user.as_deref(), user_id.as_deref());
        let contact = contact_at.map(|i| self.contacts.get(i));
        let mut data = object_of(message);
        put_user(&mut data, contact, user);
        put(
            &mut data,
            "userId",
            contact.and_then(|c| str_field(c, "user_id")).or(user_id),
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
            "username",
            contact
                .and_then(|c| c.pointer("/profile/username"))
                .and_then(as_string),
        );
        put(&mut data, "groupId", str_field(message, "group_id"));
        if echo {
            data.insert("direction".into(), json!("outbound"));
        }
        let prefix = match event_type {
            MESSAGE_RECEIVED => "m",
            MESSAGE_STANDBY => "sb",
            _ => "e",
        };
        let key = match str_field(message, "id") {
            Some(id) => format!("{prefix}:{id}"),
            None => format!("{prefix}#{}", content_hash(message)),
        };
        let message_type = str_field(message, "type");
        let sender = (!echo).then(|| self.sender(message, &data)).flatten();
        let media_id = (!echo).then(|| media_id(message)).flatten();
        let mut event = self.event(event_type, key, message, data);
        event.sender = sender;
        event.media_id = media_id;
        event.facet = message_type;
        event.source.contact = contact_at;
        event
    }

    /// The author's identifiers, when this message opens their window. A
    /// message written in a group opens the window with the whole group
    /// (Meta's Groups pricing page), not with its author: its "sender" is
    /// then the group id.
    fn sender(&self, message: &Value, data: &Map<String, Value>) -> Option<InboundSender> {
        let message_type = str_field(message, "type").unwrap_or_default();
        if !opens_window(&message_type) {
            return None;
        }
        let ids: Vec<String> = match data.get("groupId").and_then(as_string) {
            Some(group) => vec![group],
            None => ["waId", "userId", "parentUserId"]
                .iter()
                .filter_map(|k| data.get(*k).and_then(as_string))
                .collect(),
        };
        let at_ms = secs_of(message)
            .map(|secs| secs.saturating_mul(1000))
            .unwrap_or(self.change.fallback_secs().saturating_mul(1000));
        (!ids.is_empty()).then_some(InboundSender { ids, at_ms })
    }

    fn status_event(&self, status: &Value) -> InboundEvent {
        let id = str_field(status, "id").unwrap_or_default();
        let state = str_field(status, "status").unwrap_or_else(|| "unknown".into());
        let recipient_id = str_field(status, "recipient_id");
        let participant = str_field(status, "recipient_participant_id");
        let participant_user = str_field(status, "recipient_participant_user_id");
        // A group's receipt is one participant's: `contacts[]` describes them,
        // while `recipient_id` is the group.
        let group = str_field(status, "recipient_type").as_deref() == Some("group");
        let contact_at = if group {
            self.contacts
                .find(participant.as_deref(), participant_user.as_deref())
        } else {
            self.contact_at(
                recipient_id.as_deref(),
                str_field(status, "recipient_user_id").as_deref(),
            )
        };
        let contact = contact_at.map(|i| self.contacts.get(i));
        let (recipient_user_id, participant_user) = if group {
            (
                str_field(status, "recipient_user_id"),
                participant_user.or_else(|| contact.and_then(|c| str_field(c, "user_id"))),
            )
        } else {
            let user = str_field(status, "recipient_user_id")
                .or_else(|| contact.and_then(|c| str_field(c, "user_id")));
            (user, participant_user)
        };
        let record = StatusRecord {
            message_id: id.clone(),
            status: state.clone(),
            timestamp: str_field(status, "timestamp"),
            recipient_id: recipient_id.clone(),
            recipient_user_id: recipient_user_id.clone(),
            errors: status.get("errors").cloned(),
            conversation: status.get("conversation").cloned(),
            pricing: status.get("pricing").cloned(),
            biz_opaque_callback_data: str_field(status, "biz_opaque_callback_data"),
            recipient_type: str_field(status, "recipient_type"),
            recipient_participant_id: participant,
            recipient_participant_user_id: participant_user,
            group_id: str_field(status, "group_id"),
            waba_id: self.waba_id.to_string(),
            phone_number_id: self.change.phone_number_id.clone().unwrap_or_default(),
            received_at: self.change.received_at_ms,
        };
        let mut data = Map::new();
        data.insert("id".into(), json!(id));
        put(&mut data, "recipientId", recipient_id);
        put(&mut data, "recipientUserId", recipient_user_id);
        if !group {
            put(
                &mut data,
                "recipientParentUserId",
                str_field(status, "recipient_parent_user_id")
                    .or_else(|| contact.and_then(|c| str_field(c, "parent_user_id"))),
            );
        }
        data.insert("status".into(), json!(state));
        put(&mut data, "groupId", record.group_id.clone());
        for (from, to) in [
            ("timestamp", "timestamp"),
            ("conversation", "conversation"),
            ("pricing", "pricing"),
            ("errors", "errors"),
            ("biz_opaque_callback_data", "bizOpaqueCallbackData"),
            ("recipient_type", "recipient_type"),
            ("recipient_participant_id", "recipient_participant_id"),
            (
                "recipient_participant_user_id",
                "recipient_participant_user_id",
            ),
            (
                "recipient_participant_parent_user_id",
                "recipient_participant_parent_user_id",
            ),
            ("group_id", "group_id"),
            ("type", "statusType"),
        ] {
            if let Some(v) = status.get(from) {
                data.insert(to.into(), v.clone());
            }
        }
        // A group message has one receipt per member, all with the message's
        // id; a member who hides their number is known by BSUID only.
        let member = record
            .recipient_participant_id
            .clone()
            .or_else(|| record.recipient_participant_user_id.clone());
        let key = match (id.is_empty(), &member) {
            (true, _) => format!("s#{}", content_hash(status)),
            (false, Some(member)) => format!("s:{id}:{state}:{member}"),
            (false, None) => format!("s:{id}:{state}"),
        };
        let mut event = self.event(MESSAGE_STATUS, key, status, data);
        event.status = Some(record);
        event.facet = Some(state);
        event.source.contact = contact_at;
        event
    }

    /// Every other event: Meta's item (or the change's value) as it came.
    fn other_event(&self, event_type: &str, item: &Value, is_item: bool) -> InboundEvent {
        let mut data = object_of(item);
        let id = str_field(item, "id");
        let key = match (event_type, &id) {
            (CALL, Some(id)) => {
                format!("c:{id}:{}", str_field(item, "event").unwrap_or_default())
            }
            (CALL_STATUS, Some(id)) => {
                format!("cs:{id}:{}", str_field(item, "status").unwrap_or_default())
            }
            // Whole changes and id-less items: Meta redelivers them byte for byte.
            _ => format!(
                "{}:{}:{}#{}",
                self.change.field,
                self.waba_id,
                self.change.entry_secs.unwrap_or_default(),
                content_hash(item)
            ),
        };
        let contact_at = is_item.then(|| self.item_contact(item)).flatten();
        let user = str_field(item, "from");
        let mut facet = None;
        if event_type == CALL || event_type == CALL_STATUS {
            put_user(&mut data, contact_at.map(|i| self.contacts.get(i)), user);
            facet = str_field(item, "status");
        }
        put(
            &mut data,
            "businessId",
            self.business_id.map(str::to_string),
        );
        let raw = if is_item { item } else { &Value::Null };
        let mut event = self.event(event_type, key, raw, data);
        event.facet = facet;
        event.source.contact = contact_at;
        event
    }

    fn event(
        &self,
        event_type: &str,
        dedupe_key: String,
        raw: &Value,
        mut data: Map<String, Value>,
    ) -> InboundEvent {
        data.insert("field".into(), json!(self.change.field));
        data.insert("wabaId".into(), json!(self.waba_id));
        if let Some(phone) = &self.change.phone_number_id {
            data.insert("phoneNumberId".into(), json!(phone));
        }
        let secs = secs_of(raw)
            .or_else(|| secs_of(&self.change.value))
            .unwrap_or(self.change.fallback_secs());
        let mut envelope = json!({
            "type": event_type,
            "timestamp": rfc3339_secs(secs),
            "data": Value::Object(data),
        });
        if sandbox::is_sandbox_id(self.waba_id) {
            envelope["sandbox"] = json!(true);
        }
        InboundEvent {
            event_type: event_type.to_string(),
            waba_id: self.waba_id.to_string(),
            phone_number_id: self.change.phone_number_id.clone().unwrap_or_default(),
            dedupe_key,
            body: value_bytes(&envelope),
            source: MetaSource {
                field: self.change.field.to_string(),
                value: self.change.value.clone(),
                entry_time: self.change.entry_secs,
                item: None,
                contact: None,
            },
            ..InboundEvent::default()
        }
    }

    /// The user of a call, preference or similar item: it may name them as its
    /// sender, its recipient (a business-initiated call) or plainly.
    fn item_contact(&self, item: &Value) -> Option<usize> {
        let pairs = [
            ("from", "from_user_id"),
            ("to", "to_user_id"),
            ("wa_id", "user_id"),
            ("recipient_id", "recipient_user_id"),
        ];
        let named: Vec<(Option<String>, Option<String>)> = pairs
            .iter()
            .map(|(p, u)| (str_field(item, p), str_field(item, u)))
            .filter(|(p, u)| p.is_some() || u.is_some())
            .collect();
        if named.is_empty() {
            return self.contact_at(None, None);
        }
        named
            .iter()
            .find_map(|(p, u)| self.contact_at(p.as_deref(), u.as_deref()))
    }

    /// The `contacts[]` entry describing this user: by phone or by BSUID; the only
    /// entry only when the event names no user at all. An event for a user who is
    /// not listed (a failed status, a system message batched with another user's
    /// event) gets none: another user's name or BSUID must never stick to it.
    fn contact_at(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<usize> {
        if wa_id.is_none() && user_id.is_none() {
            return (self.contacts.list.len() == 1).then_some(0);
        }
        self.contacts.find(wa_id, user_id)
    }
}
