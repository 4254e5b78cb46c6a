//! Meta's webhook body → the events we route (CONTRACT §5.1): every change,
//! by its `field`; one event per item of the lists a field carries, one per
//! change otherwise; each tagged with its WABA and, where it has one, its
//! phone number ID. A field wabridge does not know is delivered all the same.
//!
//! Here the body is walked change by change; `event` makes each event (its
//! data, dedupe key and envelope), `contacts` finds the user an item is
//! about, `meta_body` rebuilds Meta's shape for `format: "meta"` listeners.

mod contacts;
mod event;
mod fields;
mod meta_body;

use std::sync::Arc;

use serde_json::Value;

use super::events;
use super::model::InboundEvent;
use contacts::Contacts;
use event::Ctx;
use fields::{id_string, items_root};

pub use meta_body::{business_link, marketing_terms_signed, meta_body};

/// Most bytes a body's events may copy from the fields they share into their
/// Meta-format bodies. Meta's batches copy a few hundred bytes per event; a
/// body whose thousands of items would each copy one large field would
/// otherwise grow a hundred thousandfold in the writer's one transaction.
const MAX_COPIED_BYTES: usize = 16 << 20;

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
    let mut copied = 0usize;
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
            copied = copied.saturating_add(change.events(businesses, &mut events));
            if copied > MAX_COPIED_BYTES {
                return Err(Unusable(format!(
                    "its {} events would copy over {} MiB of the fields they share into their Meta-format bodies; at most {} MiB are taken",
                    events.len(),
                    copied >> 20,
                    MAX_COPIED_BYTES >> 20
                )));
            }
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

    /// Adds the change's events to `out`; returns how many bytes their Meta
    /// bodies would copy from the change, at most.
    fn events(&self, businesses: BusinessWabas<'_>, out: &mut Vec<InboundEvent>) -> usize {
        let before = out.len();
        let mut whole_change = false;
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
                whole_change = true;
                out.push(ctx.whole_event(&whole));
            }
        }
        // Sized once per change, not per event: every event of it, in every
        // WABA of a fan-out, copies the same.
        let each = if whole_change {
            meta_body::json_size(&self.value)
        } else {
            meta_body::copied_per_event(self.field, &self.value)
        };
        (out.len() - before).saturating_mul(each)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod props;
