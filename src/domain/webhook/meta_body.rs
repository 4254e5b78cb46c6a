//! What is built later from a stored event: Meta's own envelope for a
//! `format: "meta"` listener, the business link an `account_update` makes,
//! and the MM Lite onboarding one reports.

use serde_json::{json, Map, Value};

use super::fields::{id_string, items_root, nest_of, object_of};
use crate::domain::model::InboundEvent;
use crate::domain::{events, marketing};
use crate::error::Error;

/// Meta's own envelope holding this one event: the change's value with only
/// the event's item in its list and only its user in `contacts`. What a
/// `format: "meta"` listener receives.
pub fn meta_body(event: &InboundEvent) -> Result<Vec<u8>, Error> {
    let src = &event.source;
    let value = match src.item {
        Some((list, i)) => {
            let lists = lists_of(&src.field);
            let root = items_root(&src.field, &src.value);
            let mut only: Map<String, Value> = root
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !one_per_event(lists, k))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect();
            if let Some(item) = root.get(list).and_then(|l| l.get(i)) {
                only.insert(list.into(), json!([item]));
            }
            if let Some(contact) = src.contact.and_then(|c| root.get("contacts")?.get(c)) {
                only.insert("contacts".into(), json!([contact]));
            }
            match nest_of(&src.field, &src.value) {
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

/// At most how many bytes each item's event of a change copies into its Meta
/// body beside the item: the change's fields beside its item lists, and its
/// largest contact. What bounds a body whose many items would each carry a
/// copy of one large field. (An event of a whole change copies the value.)
pub(super) fn copied_per_event(field: &str, value: &Value) -> usize {
    let lists = lists_of(field);
    let root = items_root(field, value);
    let mut bytes = size_beside(root, |k| one_per_event(lists, k));
    if let Some(nest) = nest_of(field, value) {
        bytes += size_beside(value, |k| k == nest);
    }
    let largest_contact = root
        .get("contacts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(json_size)
        .max();
    bytes + largest_contact.unwrap_or(0)
}

/// Whether a Meta body holds only its own event's entry of `key` (a list of
/// the field's items, or `contacts`), not the change's whole member.
fn one_per_event(lists: &[(&str, &str)], key: &str) -> bool {
    key == "contacts" || lists.iter().any(|(list, _)| *list == key)
}

/// The field's item lists, with their event types.
fn lists_of(field: &str) -> &'static [(&'static str, &'static str)] {
    events::field(field).map_or(&[], |f| f.lists)
}

/// The JSON size of `v`'s members but those `skip` names (all of `v` if it
/// is not an object), give or take their punctuation.
fn size_beside(v: &Value, skip: impl Fn(&str) -> bool) -> usize {
    match v.as_object() {
        Some(members) => members
            .iter()
            .filter(|(k, _)| !skip(k))
            .map(|(k, x)| k.len() + 4 + json_size(x))
            .sum(),
        None => json_size(v),
    }
}

pub(super) fn json_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
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

/// The WABA an `account_update` says has accepted the Marketing Messages Lite
/// terms (`event: "MM_LITE_TERMS_SIGNED"`, the WABA in `waba_info`), with
/// Meta's event name: what lets wabridge show the WABA's MM Lite onboarding.
pub fn marketing_terms_signed(event: &InboundEvent) -> Option<(String, String)> {
    if event.event_type != events::ACCOUNT_UPDATE {
        return None;
    }
    let value = &event.source.value;
    let name = value.get("event").and_then(Value::as_str)?;
    if name != marketing::TERMS_SIGNED_EVENT {
        return None;
    }
    let waba = value
        .get("waba_info")
        .and_then(|info| id_string(info.get("waba_id")))
        .or_else(|| Some(event.waba_id.clone()).filter(|w| !w.is_empty()))?;
    Some((waba, name.to_string()))
}
