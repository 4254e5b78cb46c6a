//! Reading Meta's JSON the way it is sent: ids as strings or numbers,
//! timestamps as strings, lists nested under a field's own key.

use serde_json::{Map, Value};

use crate::domain::events;
use crate::domain::ids::token_hash;

/// Where a field keeps its lists and their contacts: `value`, or the object
/// nested in it (`value.standby`).
pub(super) fn items_root<'v>(field: &str, value: &'v Value) -> &'v Value {
    nest_of(field, value)
        .and_then(|nest| value.get(nest))
        .unwrap_or(value)
}

/// The key of `value` the field's lists are nested under, when they are:
/// a field that may nest them (`standby`) can also send them at the top.
pub(super) fn nest_of(field: &str, value: &Value) -> Option<&'static str> {
    events::field(field)
        .and_then(|f| f.nested)
        .filter(|nest| value.get(*nest).is_some_and(Value::is_object))
}

/// Meta's `timestamp` of an item or value (unix seconds, as a string or a number).
pub(super) fn secs_of(v: &Value) -> Option<u64> {
    match v.get("timestamp")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// An item as a JSON object; anything else is kept under `value`.
pub(super) fn object_of(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        other => Map::from_iter([("value".to_string(), other.clone())]),
    }
}

/// The id of the file an inbound media message carries.
pub(super) fn media_id(message: &Value) -> Option<String> {
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
pub(super) fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn str_field(v: &Value, key: &str) -> Option<String> {
    id_string(v.get(key))
}

pub(super) fn as_string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// `waId` and `name` of the event's user: from their `contacts[]` entry, else
/// the number the item names them by.
pub(super) fn put_user(
    data: &mut Map<String, Value>,
    contact: Option<&Value>,
    wa_id: Option<String>,
) {
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

pub(super) fn put(map: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), Value::String(v));
    }
}

/// The JSON of a `Value` built here. It cannot fail: a `Value`'s map keys are
/// strings, its numbers finite, and writing into a `Vec` has no I/O error. So
/// parsing keeps one error, `Unusable`, which is about Meta's body and would
/// send ours to quarantine.
pub(super) fn value_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a serde_json::Value always encodes")
}

/// Stands in for a missing Meta id, so a redelivered copy still dedupes.
pub(super) fn content_hash(v: &Value) -> String {
    token_hash(&v.to_string())[..16].to_string()
}
