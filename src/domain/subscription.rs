//! What a listener asked for (CONTRACT §5.1): the event types, the filters that
//! narrow them, and the shape its deliveries take. Checked once when the
//! listener is registered; applied to every event at ingest.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::events::{self, MESSAGE_ECHO, MESSAGE_RECEIVED, MESSAGE_STANDBY, MESSAGE_STATUS};
use super::model::EventKind;
use crate::error::Error;

/// How a listener's deliveries are shaped and signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{type, timestamp, data}`, signed per Standard Webhooks.
    #[default]
    Standard,
    /// Meta's own envelope, signed `X-Hub-Signature-256` as Meta signs.
    Meta,
}

/// Narrowing of the subscribed types; an empty list narrows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_number_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_types: Vec<String>,
}

/// What the filters look at in an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    pub event_type: &'a str,
    pub phone_number_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub message_type: Option<&'a str>,
}

/// Values one filter may list: the filters are read for every event routed
/// to the listener, so they stay small.
const MAX_FILTER_VALUES: usize = 100;

/// Statuses Meta reports for messages and for calls.
const STATUSES: [&str; 12] = [
    "accepted",
    "sent",
    "delivered",
    "read",
    "played",
    "failed",
    "deleted",
    "warning",
    "ringing",
    "rejected",
    "completed",
    "missed",
];

impl Filters {
    pub fn is_empty(&self) -> bool {
        self == &Filters::default()
    }

    /// Whether an event of a subscribed type passes the filters.
    pub fn admit(&self, facts: &Facts<'_>) -> bool {
        let listed = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_none_or(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)))
        };
        let is_status =
            facts.event_type == MESSAGE_STATUS || facts.event_type == events::CALL_STATUS;
        let is_message = matches!(
            facts.event_type,
            MESSAGE_RECEIVED | MESSAGE_STANDBY | MESSAGE_ECHO
        );
        listed(&self.phone_number_ids, facts.phone_number_id)
            && (!is_status || listed(&self.statuses, facts.status))
            && (!is_message || listed(&self.message_types, facts.message_type))
    }
}

/// A checked subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The old `event` name, when the listener was asked for that way.
    pub event: Option<EventKind>,
    pub events: Vec<String>,
    pub filters: Filters,
    pub format: Format,
}

/// The subscription part of a listener request, as the flow tool sent it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requested {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub events: Option<Value>,
    #[serde(default)]
    pub filters: Option<Value>,
    #[serde(default)]
    pub format: Option<String>,
}

impl Requested {
    pub fn check(&self) -> Result<Subscription, Error> {
        let (event, events) = match (&self.event, &self.events) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "events",
                    "give either `event` (\"messages\" or \"statuses\") or `events` (a list of types), not both",
                ))
            }
            (Some(e), None) => {
                let kind = EventKind::parse(e.trim()).ok_or_else(|| {
                    Error::invalid(
                        "event",
                        "must be \"messages\" or \"statuses\"; for other events use `events`, e.g. [\"whatsapp.template.*\"]",
                    )
                })?;
                (Some(kind), vec![kind.webhook_type().to_string()])
            }
            (None, Some(list)) => (None, check_events(list)?),
            (None, None) => {
                return Err(Error::invalid(
                    "events",
                    "is required: the event types to deliver, e.g. [\"whatsapp.message.received\"], [\"whatsapp.template.*\"] or [\"*\"]",
                ))
            }
        };
        Ok(Subscription {
            event,
            events,
            filters: self.filters.as_ref().map(check_filters).transpose()?.unwrap_or_default(),
            format: match self.format.as_deref().map(str::trim) {
                None | Some("standard") => Format::Standard,
                Some("meta") => Format::Meta,
                Some(other) => {
                    return Err(Error::invalid(
                        "format",
                        format!("{other:?} is not a format; use \"standard\" (Standard Webhooks) or \"meta\" (Meta's own envelope)"),
                    ))
                }
            },
        })
    }
}

fn check_events(list: &Value) -> Result<Vec<String>, Error> {
    let items = strings("events", list)?;
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !events::valid_pattern(&item) {
            return Err(Error::invalid(
                "events",
                format!(
                    "{item:?} is not an event type wabridge delivers; use \"*\", a prefix such as \"whatsapp.template.*\", or one of {}",
                    events::known_types().join(", ")
                ),
            ));
        }
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

fn check_filters(raw: &Value) -> Result<Filters, Error> {
    let Value::Object(map) = raw else {
        return Err(Error::invalid(
            "filters",
            "must be an object with phoneNumberIds, statuses and/or messageTypes",
        ));
    };
    let mut filters = Filters::default();
    for (key, value) in map {
        let field = format!("filters.{key}");
        let list = strings(&field, value)?;
        // Every event is checked against every listener's filters at ingest.
        if list.len() > MAX_FILTER_VALUES {
            return Err(Error::invalid(
                &field,
                format!("has {} values; a filter takes at most {MAX_FILTER_VALUES} (register more listeners to cover more)", list.len()),
            ));
        }
        match key.as_str() {
            "phoneNumberIds" => {
                if let Some(bad) = list
                    .iter()
                    .find(|id| !id.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(Error::invalid(
                        &field,
                        format!("{bad:?} is not a phone number ID (Meta's ids are digits)"),
                    ));
                }
                filters.phone_number_ids = list;
            }
            "statuses" => {
                let list: Vec<String> = list.iter().map(|s| s.to_ascii_lowercase()).collect();
                if let Some(bad) = list.iter().find(|s| !STATUSES.contains(&s.as_str())) {
                    return Err(Error::invalid(
                        &field,
                        format!(
                            "{bad:?} is not a status Meta reports; use {}",
                            STATUSES.join(", ")
                        ),
                    ));
                }
                filters.statuses = list;
            }
            "messageTypes" => {
                if let Some(bad) = list
                    .iter()
                    .find(|t| !t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                {
                    return Err(Error::invalid(
                        &field,
                        format!("{bad:?} is not a message type (text, image, interactive, …)"),
                    ));
                }
                filters.message_types = list;
            }
            _ => {
                return Err(Error::invalid(
                    &field,
                    "is not a filter; use phoneNumberIds, statuses or messageTypes",
                ))
            }
        }
    }
    Ok(filters)
}

/// A non-empty list of non-empty strings, trimmed.
fn strings(field: &str, v: &Value) -> Result<Vec<String>, Error> {
    let items = v
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid(field, "must be a non-empty list of strings"))?;
    items
        .iter()
        .map(|i| match i.as_str().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(Error::invalid(field, "must be a non-empty list of strings")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> Result<Subscription, Error> {
        serde_json::from_value::<Requested>(v).unwrap().check()
    }

    #[test]
    fn the_old_event_names_stand_for_one_type_each() {
        let s = req(json!({"event": "statuses"})).unwrap();
        assert_eq!(s.events, [MESSAGE_STATUS]);
        assert_eq!(s.event, Some(EventKind::Statuses));
        assert_eq!((s.format, s.filters.is_empty()), (Format::Standard, true));
        assert!(req(json!({"event": "templates"})).is_err());
        assert!(req(json!({})).is_err());
        assert!(req(json!({"event": "messages", "events": ["*"]})).is_err());
    }

    #[test]
    fn events_filters_and_format_are_checked() {
        let s = req(json!({"events": ["whatsapp.template.*", "whatsapp.call", "whatsapp.call"],
            "filters": {"phoneNumberIds": ["106540352242922"], "statuses": ["FAILED"]}, "format": "meta"}))
        .unwrap();
        assert_eq!(s.events, ["whatsapp.template.*", "whatsapp.call"]);
        assert_eq!(s.filters.statuses, ["failed"]);
        assert_eq!(s.format, Format::Meta);
        for bad in [
            json!({"events": []}),
            json!({"events": "whatsapp.call"}),
            json!({"events": ["whatsapp.nope"]}),
            json!({"events": ["*"], "filters": {"colour": ["red"]}}),
            json!({"events": ["*"], "filters": {"statuses": ["lost"]}}),
            json!({"events": ["*"], "filters": {"phoneNumberIds": ["abc"]}}),
            json!({"events": ["*"], "filters": {"messageTypes": []}}),
            json!({"events": ["*"], "filters": []}),
            json!({"events": ["*"], "format": "xml"}),
            json!({"events": ["*"], "filters": {"phoneNumberIds": (0..101).map(|i| i.to_string()).collect::<Vec<_>>()}}),
        ] {
            assert!(req(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_narrow_only_the_events_they_speak_of() {
        let f = Filters {
            phone_number_ids: vec!["P1".into()],
            statuses: vec!["failed".into()],
            message_types: vec!["text".into()],
        };
        let facts = |t, p, s, m| Facts {
            event_type: t,
            phone_number_id: p,
            status: s,
            message_type: m,
        };
        assert!(f.admit(&facts(MESSAGE_STATUS, Some("P1"), Some("failed"), None)));
        assert!(!f.admit(&facts(MESSAGE_STATUS, Some("P1"), Some("read"), None)));
        assert!(!f.admit(&facts(MESSAGE_STATUS, Some("P2"), Some("failed"), None)));
        assert!(f.admit(&facts(MESSAGE_RECEIVED, Some("P1"), None, Some("text"))));
        assert!(!f.admit(&facts(MESSAGE_RECEIVED, Some("P1"), None, Some("image"))));
        // An event without a phone number is not narrowed by phoneNumberIds.
        assert!(f.admit(&facts("whatsapp.template.status", None, None, None)));
        assert!(Filters::default().admit(&facts(MESSAGE_STATUS, Some("P9"), Some("read"), None)));
    }
}
