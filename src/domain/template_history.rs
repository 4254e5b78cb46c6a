//! A template's history: what Meta's template webhooks said of it, one entry
//! per event, kept by wabridge in the ingest commit so that reading one
//! template (`GET …/templates/{templateId}`) shows how it got where it is.
//!
//! Three fields are kept, each as Meta's reference describes its value
//! (developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/…):
//! - `message_template_status_update`: `event` (APPROVED, REJECTED, PAUSED,
//!   DISABLED, ARCHIVED, …) and `reason` (`NONE` when there is none), with
//!   `other_info.title`/`description` when Meta locks or unlocks it;
//! - `message_template_quality_update`: `previous_quality_score` →
//!   `new_quality_score` (GREEN, YELLOW, RED, UNKNOWN);
//! - `template_category_update`: `previous_category` → `new_category`, or,
//!   for a change Meta announces ahead, `correct_category`.
//!
//! `message_template_components_update` is left out: it says what the
//! template now reads, which reading the template already shows.
//! The entry keeps its WABA: a template id is read back only for its WABA.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::InboundEvent;

const STATUS_FIELD: &str = "message_template_status_update";
const QUALITY_FIELD: &str = "message_template_quality_update";
const CATEGORY_FIELD: &str = "template_category_update";

/// One entry of a template's history, as stored (absent fields omitted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateChange {
    /// `status`, `quality` or `category`.
    pub event: String,
    /// The WABA whose webhook said it.
    pub waba_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Meta's `other_info` (a locked or unlocked template): title, description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_quality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_category: Option<String>,
    /// When it happened, ms since the epoch: Meta's `entry.time`, else
    /// when wabridge received it.
    pub at: u64,
}

/// The template id and history entry a stored event makes, if it is one of
/// the template events above and names its template.
pub fn template_change(
    event: &InboundEvent,
    received_at_ms: u64,
) -> Option<(String, TemplateChange)> {
    let source = &event.source;
    let value = source.value.as_ref();
    let field = |k: &str| text(value.get(k));
    let mut change = TemplateChange {
        waba_id: event.waba_id.clone(),
        at: source
            .entry_time
            .map(|secs| secs.saturating_mul(1000))
            .unwrap_or(received_at_ms),
        ..TemplateChange::default()
    };
    match source.field.as_str() {
        STATUS_FIELD => {
            change.event = "status".into();
            change.status = field("event");
            change.reason = field("reason");
            change.title = text(value.pointer("/other_info/title"));
            change.description = text(value.pointer("/other_info/description"));
            change.category = field("message_template_category");
        }
        QUALITY_FIELD => {
            change.event = "quality".into();
            change.previous_quality = field("previous_quality_score");
            change.quality = field("new_quality_score");
        }
        CATEGORY_FIELD => {
            change.event = "category".into();
            change.previous_category = field("previous_category");
            change.category = field("new_category");
            change.correct_category = field("correct_category");
        }
        _ => return None,
    }
    Some((field("message_template_id")?, change))
}

/// A string or a number as text (Meta sends template ids as numbers).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::parse;

    fn fixture(name: &str) -> Vec<InboundEvent> {
        let path = format!(
            "{}/tests/fixtures/fields/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        parse(&std::fs::read(path).unwrap(), 7_000).unwrap()
    }

    fn only(name: &str) -> (String, TemplateChange) {
        let events = fixture(name);
        assert_eq!(events.len(), 1);
        template_change(&events[0], 7_000).expect("a template event")
    }

    #[test]
    fn a_status_update_keeps_the_status_its_reason_and_metas_time() {
        let (id, change) = only("message_template_status_update");
        assert_eq!(id, "1938475610293847");
        assert_eq!(
            change,
            TemplateChange {
                event: "status".into(),
                waba_id: "102290129340398".into(),
                status: Some("APPROVED".into()),
                reason: Some("NONE".into()),
                category: Some("UTILITY".into()),
                at: 1_796_213_200_000,
                ..TemplateChange::default()
            }
        );
    }

    #[test]
    fn a_quality_and_a_category_update_keep_before_and_after() {
        let (id, quality) = only("message_template_quality_update");
        assert_eq!(id, "1938475610293848");
        assert_eq!(quality.event, "quality");
        assert_eq!(quality.previous_quality.as_deref(), Some("GREEN"));
        assert_eq!(quality.quality.as_deref(), Some("YELLOW"));
        let (id, category) = only("template_category_update");
        assert_eq!(id, "1938475610293849");
        assert_eq!(category.event, "category");
        assert_eq!(category.previous_category.as_deref(), Some("UTILITY"));
        assert_eq!(category.category.as_deref(), Some("MARKETING"));
        assert_eq!(category.correct_category, None);
    }

    #[test]
    fn a_rejection_with_other_info_and_a_time_wabridge_chose() {
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "W1",
            "changes": [{"field": "message_template_status_update", "value": {
                "event": "REJECTED", "message_template_id": "55", "reason": "INCORRECT_CATEGORY",
                "other_info": {"title": "Locked", "description": "Too many edits"}}}]}]});
        let events = parse(&serde_json::to_vec(&body).unwrap(), 9_000).unwrap();
        let (id, change) = template_change(&events[0], 9_000).unwrap();
        assert_eq!(id, "55");
        assert_eq!(change.waba_id, "W1");
        assert_eq!(change.status.as_deref(), Some("REJECTED"));
        assert_eq!(change.reason.as_deref(), Some("INCORRECT_CATEGORY"));
        assert_eq!(change.title.as_deref(), Some("Locked"));
        assert_eq!(change.description.as_deref(), Some("Too many edits"));
        assert_eq!(change.at, 9_000, "no entry.time: when it came");
    }

    #[test]
    fn other_fields_and_template_events_without_an_id_make_no_entry() {
        for name in [
            "message_template_components_update",
            "account_update",
            "calls",
        ] {
            for event in fixture(name) {
                assert_eq!(template_change(&event, 1), None, "{name}");
            }
        }
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "W1",
            "changes": [{"field": "message_template_quality_update", "value": {"new_quality_score": "RED"}}]}]});
        let events = parse(&serde_json::to_vec(&body).unwrap(), 1).unwrap();
        assert_eq!(template_change(&events[0], 1), None);
    }

    #[test]
    fn an_entry_is_stored_compactly_and_reads_back() {
        let (_, change) = only("message_template_quality_update");
        let bytes = serde_json::to_vec(&change).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("null"));
        let back: TemplateChange = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, change);
    }
}
