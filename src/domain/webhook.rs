//! Meta's webhook body → the events we route (CONTRACT §5.1): every change,
//! by its `field`; one event per item of the lists a field carries, one per
//! change otherwise; each tagged with its WABA and, where it has one, its
//! phone number ID. A field wabridge does not know is delivered all the same.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::events::{
    self, CALL, CALL_STATUS, MESSAGE_ECHO, MESSAGE_RECEIVED, MESSAGE_STANDBY, MESSAGE_STATUS,
};
use super::ids::token_hash;
use super::model::{InboundEvent, InboundSender, MetaSource, StatusRecord};
use super::time::rfc3339_secs;
use super::window::opens_window;
use crate::error::Error;

/// Why a correctly signed body cannot be used; such a body goes to quarantine.
#[derive(Debug, Clone, PartialEq)]
pub struct Unusable(pub String);

/// The WABAs wabridge knows of a business portfolio: some events (a partner
/// added, an Embedded Signup finished) arrive with the business as `entry.id`.
pub type BusinessWabas<'a> = &'a dyn Fn(&str) -> Vec<String>;

/// Parses a verified webhook body, knowing no business portfolio.
pub fn parse(body: &[u8], received_at_ms: u64) -> Result<Vec<InboundEvent>, Unusable> {
    parse_with(body, received_at_ms, &|_| Vec::new())
}

/// Parses a verified webhook body. `received_at_ms` stands in for a missing timestamp.
pub fn parse_with(
    body: &[u8],
    received_at_ms: u64,
    businesses: BusinessWabas<'_>,
) -> Result<Vec<InboundEvent>, Unusable> {
    let mut root: Value =
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
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Unusable("no entry[] array".into()))?;
    let mut events = Vec::new();
    for entry in entries {
        let entry_id = id_string(entry.get("id"))
            .ok_or_else(|| Unusable("an entry has no id (WABA ID)".into()))?;
        let entry_secs = entry.get("time").and_then(Value::as_u64);
        for change in entry
            .get_mut("changes")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            // Taken, not copied: the events share it (see `MetaSource`).
            let Some(value) = change.get_mut("value").map(Value::take) else {
                continue;
            };
            // Hand-written bodies (and Meta's oldest samples) may leave `field` out.
            let field = change
                .get("field")
                .and_then(Value::as_str)
                .unwrap_or("messages");
            let change = Change::new(&entry_id, field, value, entry_secs, received_at_ms)?;
            change.events(businesses, &mut events);
        }
    }
    Ok(events)
}

/// One `changes[]` element and what every event made of it shares.
struct Change<'a> {
    entry_id: &'a str,
    field: &'a str,
    value: Arc<Value>,
    phone_number_id: Option<String>,
    entry_secs: Option<u64>,
    received_at_ms: u64,
}

impl<'a> Change<'a> {
    fn new(
        entry_id: &'a str,
        field: &'a str,
        value: Value,
        entry_secs: Option<u64>,
        received_at_ms: u64,
    ) -> Result<Self, Unusable> {
        // Handovers name the business's number as their recipient.
        let phone_number_id = id_string(value.pointer("/metadata/phone_number_id"))
            .or_else(|| id_string(value.pointer("/recipient/phone_number_id")));
        let carries_messages = value.get("messages").is_some() || value.get("statuses").is_some();
        if field == "messages" && carries_messages && phone_number_id.is_none() {
            return Err(Unusable(
                "a change has messages or statuses but no metadata.phone_number_id".into(),
            ));
        }
        Ok(Change {
            entry_id,
            field,
            value: Arc::new(value),
            phone_number_id,
            entry_secs,
            received_at_ms,
        })
    }

    /// When an item says nothing of its time: the entry's, else when it came.
    fn fallback_secs(&self) -> u64 {
        self.entry_secs.unwrap_or(self.received_at_ms / 1000)
    }

    /// The WABAs the change is for: `entry.id`, or the WABAs of the business
    /// portfolio it names (only events without a phone number come that way).
    /// An event that names its WABA (`waba_info`, as `PARTNER_ADDED` does)
    /// goes there, whatever portfolio `entry.id` is.
    fn wabas(&self, businesses: BusinessWabas<'_>) -> Vec<(String, bool)> {
        if self.phone_number_id.is_none() {
            if let Some(waba) = id_string(self.value.pointer("/waba_info/waba_id")) {
                return vec![(waba.clone(), waba != self.entry_id)];
            }
            let wabas = businesses(self.entry_id);
            if !wabas.is_empty() {
                return wabas.into_iter().map(|w| (w, true)).collect();
            }
        }
        vec![(self.entry_id.to_string(), false)]
    }

    fn events(&self, businesses: BusinessWabas<'_>, out: &mut Vec<InboundEvent>) {
        let spec = events::field(self.field);
        let lists = spec.map_or(&[][..], |f| f.lists);
        let root = items_root(self.field, &self.value);
        let contacts = Contacts::new(
            root.get("contacts")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        );
        for (waba_id, via_business) in self.wabas(businesses) {
            let ctx = Ctx {
                change: self,
                waba_id: &waba_id,
                business_id: via_business.then_some(self.entry_id),
                contacts: &contacts,
            };
            let mut any = false;
            for (list, event_type) in lists {
                let items = root.get(*list).and_then(Value::as_array);
                for (i, item) in items.into_iter().flatten().enumerate() {
                    any = true;
                    out.push(ctx.item_event(event_type, list, i, item));
                }
            }
            if !any {
                let whole = spec.map_or_else(
                    || events::unknown_field_type(self.field),
                    |f| f.whole.to_string(),
                );
                out.push(ctx.whole_event(&whole));
            }
        }
    }
}

struct Ctx<'a> {
    change: &'a Change<'a>,
    waba_id: &'a str,
    business_id: Option<&'a str>,
    contacts: &'a Contacts<'a>,
}

/// A change's `contacts[]`, found by phone (`wa_id`) or BSUID (`user_id`).
/// Meta sends one or two; a body with thousands of items and thousands of
/// contacts is looked up through maps, so parsing stays linear in its size.
struct Contacts<'a> {
    list: &'a [Value],
    by_wa_id: HashMap<String, usize>,
    by_user_id: HashMap<String, usize>,
}

/// Up to this many entries a scan is cheaper than building maps.
const CONTACTS_SCANNED: usize = 8;

impl<'a> Contacts<'a> {
    fn new(list: &'a [Value]) -> Contacts<'a> {
        let mut c = Contacts {
            list,
            by_wa_id: HashMap::new(),
            by_user_id: HashMap::new(),
        };
        if list.len() > CONTACTS_SCANNED {
            for (i, entry) in list.iter().enumerate() {
                if let Some(id) = str_field(entry, "wa_id") {
                    c.by_wa_id.entry(id).or_insert(i);
                }
                if let Some(id) = str_field(entry, "user_id") {
                    c.by_user_id.entry(id).or_insert(i);
                }
            }
        }
        c
    }

    fn get(&self, i: usize) -> &'a Value {
        &self.list[i]
    }

    /// The first entry with this phone or this BSUID.
    fn find(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<usize> {
        if self.list.len() > CONTACTS_SCANNED {
            let by_phone = wa_id.and_then(|w| self.by_wa_id.get(w));
            let by_user = user_id.and_then(|u| self.by_user_id.get(u));
            return by_phone.into_iter().chain(by_user).min().copied();
        }
        let matches = |c: &Value| {
            (wa_id.is_some() && str_field(c, "wa_id").as_deref() == wa_id)
                || (user_id.is_some() && str_field(c, "user_id").as_deref() == user_id)
        };
        self.list.iter().position(matches)
    }
}

impl Ctx<'_> {
    fn item_event(
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

    fn whole_event(&self, event_type: &str) -> InboundEvent {
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

    /// The author's identifiers, when this message opens their window.
    fn sender(&self, message: &Value, data: &Map<String, Value>) -> Option<InboundSender> {
        let message_type = str_field(message, "type").unwrap_or_default();
        if !opens_window(&message_type) {
            return None;
        }
        let ids: Vec<String> = ["waId", "userId", "parentUserId"]
            .iter()
            .filter_map(|k| data.get(*k).and_then(as_string))
            .collect();
        let at_ms = secs_of(message)
            .map(|secs| secs.saturating_mul(1000))
            .unwrap_or(self.change.fallback_secs().saturating_mul(1000));
        (!ids.is_empty()).then_some(InboundSender { ids, at_ms })
    }

    fn status_event(&self, status: &Value) -> InboundEvent {
        let id = str_field(status, "id").unwrap_or_default();
        let state = str_field(status, "status").unwrap_or_else(|| "unknown".into());
        let recipient_id = str_field(status, "recipient_id");
        let contact_at = self.contact_at(
            recipient_id.as_deref(),
            str_field(status, "recipient_user_id").as_deref(),
        );
        let contact = contact_at.map(|i| self.contacts.get(i));
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
            biz_opaque_callback_data: str_field(status, "biz_opaque_callback_data"),
            recipient_type: str_field(status, "recipient_type"),
            recipient_participant_id: str_field(status, "recipient_participant_id"),
            group_id: str_field(status, "group_id"),
            waba_id: self.waba_id.to_string(),
            phone_number_id: self.change.phone_number_id.clone().unwrap_or_default(),
            received_at: self.change.received_at_ms,
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
        put(&mut data, "groupId", record.group_id.clone());
        for (from, to) in [
            ("timestamp", "timestamp"),
            ("conversation", "conversation"),
            ("pricing", "pricing"),
            ("errors", "errors"),
            ("biz_opaque_callback_data", "bizOpaqueCallbackData"),
            ("recipient_type", "recipient_type"),
            ("recipient_participant_id", "recipient_participant_id"),
            ("group_id", "group_id"),
            ("type", "statusType"),
        ] {
            if let Some(v) = status.get(from) {
                data.insert(to.into(), v.clone());
            }
        }
        // A group message has one receipt per member, all with the message's id.
        let key = match (id.is_empty(), &record.recipient_participant_id) {
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
        let envelope = json!({
            "type": event_type,
            "timestamp": rfc3339_secs(secs),
            "data": Value::Object(data),
        });
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

/// Meta's own envelope holding this one event: the change's value with only
/// the event's item in its list and only its user in `contacts`. What a
/// `format: "meta"` listener receives.
pub fn meta_body(event: &InboundEvent) -> Result<Vec<u8>, Error> {
    let src = &event.source;
    let value = match src.item {
        Some((list, i)) => {
            let spec = events::field(&src.field);
            let lists: Vec<&str> = spec
                .map(|f| f.lists.iter().map(|(l, _)| *l).collect())
                .unwrap_or_default();
            let root = items_root(&src.field, &src.value);
            let mut only: Map<String, Value> = root
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "contacts" && !lists.contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect();
            if let Some(item) = root.get(list).and_then(|l| l.get(i)) {
                only.insert(list.into(), json!([item]));
            }
            if let Some(contact) = src.contact.and_then(|c| root.get("contacts")?.get(c)) {
                only.insert("contacts".into(), json!([contact]));
            }
            match spec.and_then(|f| f.nested) {
                Some(nest) => {
                    let mut whole = object_of(&src.value);
                    whole.insert(nest.into(), Value::Object(only));
                    Value::Object(whole)
                }
                None => Value::Object(only),
            }
        }
        None => src.value.as_ref().clone(),
    };
    let mut entry = json!({"id": event.waba_id, "changes": [{"field": src.field, "value": value}]});
    if let Some(time) = src.entry_time {
        entry["time"] = json!(time);
    }
    let envelope = json!({"object": "whatsapp_business_account", "entry": [entry]});
    serde_json::to_vec(&envelope).map_err(|e| Error::internal("the event's Meta body", e))
}

/// The business portfolio and WABA an `account_update` names (Embedded
/// Signup's `PARTNER_ADDED` carries `waba_info`): what lets later
/// business-level events of that portfolio reach that WABA's listeners.
pub fn business_link(event: &InboundEvent) -> Option<(String, String)> {
    if event.event_type != events::ACCOUNT_UPDATE {
        return None;
    }
    let info = event.source.value.get("waba_info")?;
    Some((
        id_string(info.get("owner_business_id"))?,
        id_string(info.get("waba_id"))?,
    ))
}

/// Where a field keeps its lists and their contacts: `value`, or the object
/// nested in it (`value.standby`).
fn items_root<'v>(field: &str, value: &'v Value) -> &'v Value {
    events::field(field)
        .and_then(|f| f.nested)
        .and_then(|nest| value.get(nest))
        .filter(|v| v.is_object())
        .unwrap_or(value)
}

/// Meta's `timestamp` of an item or value (unix seconds, as a string or a number).
fn secs_of(v: &Value) -> Option<u64> {
    match v.get("timestamp")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// An item as a JSON object; anything else is kept under `value`.
fn object_of(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        other => Map::from_iter([("value".to_string(), other.clone())]),
    }
}

/// The id of the file an inbound media message carries.
fn media_id(message: &Value) -> Option<String> {
    let message_type = str_field(message, "type")?;
    if !matches!(
        message_type.as_str(),
        "image" | "audio" | "video" | "document" | "sticker"
    ) {
        return None;
    }
    str_field(message.get(&message_type)?, "id")
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

/// `waId` and `name` of the event's user: from their `contacts[]` entry, else
/// the number the item names them by.
fn put_user(data: &mut Map<String, Value>, contact: Option<&Value>, wa_id: Option<String>) {
    put(
        data,
        "waId",
        contact.and_then(|c| str_field(c, "wa_id")).or(wa_id),
    );
    put(
        data,
        "name",
        contact
            .and_then(|c| c.pointer("/profile/name"))
            .and_then(as_string),
    );
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), Value::String(v));
    }
}

/// The JSON of a `Value` built here. It cannot fail: a `Value`'s map keys are
/// strings, its numbers finite, and writing into a `Vec` has no I/O error. So
/// parsing keeps one error, `Unusable`, which is about Meta's body and would
/// send ours to quarantine.
fn value_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a serde_json::Value always encodes")
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
            (
                e.event_type.as_str(),
                e.waba_id.as_str(),
                e.phone_number_id.as_str()
            ),
            (MESSAGE_RECEIVED, "WABA1", "PN1")
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
        let sender = e.sender.as_ref().unwrap();
        assert_eq!(sender.ids, ["420777123456", "CZ.1"]);
        assert_eq!(sender.at_ms, 1_700_000_000_000);
        assert_eq!(e.media_id, None);
    }

    #[test]
    fn media_ids_are_kept_and_system_notices_open_no_window() {
        let b = body(json!([{"field": "messages", "value": {
            "metadata": {"phone_number_id": "PN1"},
            "messages": [
                {"from": "420777123456", "id": "wamid.I", "timestamp": "1700000000", "type": "image", "image": {"id": "MEDIA1", "mime_type": "image/jpeg"}},
                {"from": "420777123456", "id": "wamid.S", "timestamp": "1700000000", "type": "system", "system": {"body": "changed number"}}
            ]
        }}]));
        let events = parse(&b, 0).unwrap();
        assert_eq!(events[0].media_id.as_deref(), Some("MEDIA1"));
        assert!(events[0].sender.is_some());
        assert_eq!(events[1].sender, None);
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
    fn a_big_batch_finds_each_users_contact_like_a_small_one() {
        let n = 50;
        let contacts: Vec<Value> = (0..n)
            .map(|i| json!({"profile": {"name": format!("User {i}")}, "wa_id": format!("4207{i:05}"), "user_id": format!("CZ.{i}")}))
            .collect();
        let messages: Vec<Value> = (0..n)
            .rev()
            .map(|i| {
                // Half name the user by phone, half by BSUID only.
                let mut m = json!({"id": format!("wamid.{i}"), "timestamp": "1764000000", "type": "text", "text": {"body": "hi"}});
                if i % 2 == 0 {
                    m["from"] = json!(format!("4207{i:05}"));
                } else {
                    m["from_user_id"] = json!(format!("CZ.{i}"));
                }
                m
            })
            .collect();
        let events = parse(
            &body(json!([{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "1", "phone_number_id": "PN1"},
                "contacts": contacts, "messages": messages}}])),
            0,
        )
        .unwrap();
        assert_eq!(events.len(), n);
        for e in &events {
            let d = data(e);
            let i: usize = d["id"].as_str().unwrap()[6..].parse().unwrap();
            assert_eq!(d["name"], format!("User {i}"), "{d}");
            assert_eq!(d["userId"], format!("CZ.{i}"), "{d}");
        }
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
    fn every_field_becomes_events_and_an_unknown_one_keeps_its_name() {
        let b = body(json!([
            {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 7}},
            {"field": "calls", "value": {"metadata": {"phone_number_id": "PN1"},
                "contacts": [{"wa_id": "420777123456", "profile": {"name": "Jana"}}],
                "calls": [{"id": "wacid.1", "from": "420777123456", "event": "connect", "timestamp": "1700000000"}]}},
            {"field": "standby", "value": {"metadata": {"phone_number_id": "PN1"}, "standby": {
                "messages": [{"from": "420777123456", "id": "wamid.SB", "timestamp": "1700000000", "type": "text", "text": {"body": "ai"}}]}}},
            {"field": "smb_message_echoes", "value": {"metadata": {"phone_number_id": "PN1"},
                "message_echoes": [{"from": "15550001111", "to": "420777123456", "id": "wamid.E", "timestamp": "1700000000", "type": "text", "text": {"body": "from the app"}}]}},
            {"field": "brand_new_field", "value": {"anything": [1, 2]}}
        ]));
        let events = parse(&b, 0).unwrap();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "whatsapp.template.status",
                CALL,
                MESSAGE_STANDBY,
                MESSAGE_ECHO,
                "whatsapp.brand_new_field"
            ]
        );
        let template = data(&events[0]);
        assert_eq!(
            (template["event"].as_str(), template["field"].as_str()),
            (Some("APPROVED"), Some("message_template_status_update"))
        );
        assert!(template.get("phoneNumberId").is_none());
        assert_eq!(events[0].phone_number_id, "");
        let call = data(&events[1]);
        assert_eq!(
            (call["waId"].as_str(), call["name"].as_str()),
            (Some("420777123456"), Some("Jana"))
        );
        assert_eq!(events[1].dedupe_key, "c:wacid.1:connect");
        assert_eq!(events[2].dedupe_key, "sb:wamid.SB");
        assert!(
            events[2].sender.is_some(),
            "a user who writes opens the window, AI or not"
        );
        let echo = data(&events[3]);
        assert_eq!(
            (echo["direction"].as_str(), echo["waId"].as_str()),
            (Some("outbound"), Some("420777123456"))
        );
        assert_eq!(events[3].sender, None, "an echo opens no window");
        assert_eq!(data(&events[4])["anything"], json!([1, 2]));
        // Meta's redelivery of the same body gives the same keys.
        let again = parse(&b, 99).unwrap();
        let keys = |v: &[InboundEvent]| v.iter().map(|e| e.dedupe_key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&events), keys(&again));
    }

    #[test]
    fn a_business_level_change_goes_to_the_wabas_of_that_business() {
        let b = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
            {"id": "BIZ1", "time": 1700000000, "changes": [{"field": "account_update", "value": {"event": "PARTNER_ADDED"}}]}
        ]})).unwrap();
        let wabas = |id: &str| {
            if id == "BIZ1" {
                vec!["W1".to_string(), "W2".to_string()]
            } else {
                vec![]
            }
        };
        let events = parse_with(&b, 0, &wabas).unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| e.waba_id.as_str())
                .collect::<Vec<_>>(),
            ["W1", "W2"]
        );
        assert_ne!(events[0].dedupe_key, events[1].dedupe_key);
        let d = data(&events[1]);
        assert_eq!(
            (d["wabaId"].as_str(), d["businessId"].as_str()),
            (Some("W2"), Some("BIZ1"))
        );
        let envelope: Value = serde_json::from_slice(&events[0].body).unwrap();
        assert_eq!(envelope["timestamp"], "2023-11-14T22:13:20Z");
        // Unknown business: kept under the id Meta sent.
        assert_eq!(parse(&b, 0).unwrap()[0].waba_id, "BIZ1");
    }

    #[test]
    fn a_partner_added_links_its_waba_to_the_owning_business() {
        let b = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
            {"id": "PARTNER", "changes": [{"field": "account_update", "value": {"event": "PARTNER_ADDED",
                "waba_info": {"waba_id": "W7", "owner_business_id": 42}}}]}
        ]})).unwrap();
        let events = parse(&b, 0).unwrap();
        assert_eq!(events[0].waba_id, "W7");
        assert_eq!(business_link(&events[0]), Some(("42".into(), "W7".into())));
        let other = body(
            json!([{"field": "account_alerts", "value": {"waba_info": {"waba_id": "W7", "owner_business_id": "42"}}}]),
        );
        assert_eq!(business_link(&parse(&other, 0).unwrap()[0]), None);
    }

    #[test]
    fn a_meta_body_holds_only_its_own_item_and_user() {
        let b = body(json!([{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
            "contacts": [{"wa_id": "1", "user_id": "US.1"}, {"wa_id": "2", "user_id": "US.2"}],
            "messages": [
                {"from": "1", "id": "wamid.1", "timestamp": "1700000000", "type": "text", "text": {"body": "a"}},
                {"from": "2", "id": "wamid.2", "timestamp": "1700000000", "type": "text", "text": {"body": "b"}}
            ]
        }}]));
        let events = parse(&b, 0).unwrap();
        let meta: Value = serde_json::from_slice(&meta_body(&events[1]).unwrap()).unwrap();
        assert_eq!(meta["object"], "whatsapp_business_account");
        assert_eq!(meta["entry"][0]["id"], "WABA1");
        let change = &meta["entry"][0]["changes"][0];
        assert_eq!(change["field"], "messages");
        assert_eq!(
            change["value"]["messages"],
            json!([{"from": "2", "id": "wamid.2", "timestamp": "1700000000", "type": "text", "text": {"body": "b"}}])
        );
        assert_eq!(
            change["value"]["contacts"],
            json!([{"wa_id": "2", "user_id": "US.2"}])
        );
        assert_eq!(change["value"]["metadata"]["phone_number_id"], "PN1");
    }

    #[test]
    fn group_statuses_keep_their_group_and_participant() {
        let b = body(json!([{"field": "messages", "value": {
            "metadata": {"phone_number_id": "PN1"},
            "statuses": [{"id": "wamid.G", "status": "read", "timestamp": "1700000001", "recipient_id": "G1",
                "recipient_type": "group", "recipient_participant_id": "420777123456", "group_id": "G1",
                "biz_opaque_callback_data": "order-7", "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"}}]
        }}]));
        let e = &parse(&b, 0).unwrap()[0];
        let d = data(e);
        assert_eq!(d["recipient_type"], "group");
        assert_eq!(d["recipient_participant_id"], "420777123456");
        assert_eq!(d["groupId"], "G1");
        assert_eq!(d["bizOpaqueCallbackData"], "order-7");
        assert_eq!(d["pricing"]["pricing_model"], "PMP");
        let r = e.status.as_ref().unwrap();
        assert_eq!(
            (r.group_id.as_deref(), r.biz_opaque_callback_data.as_deref()),
            (Some("G1"), Some("order-7"))
        );
        assert_eq!(e.facet.as_deref(), Some("read"));
    }
}

#[cfg(test)]
#[path = "webhook_props.rs"]
mod props;
