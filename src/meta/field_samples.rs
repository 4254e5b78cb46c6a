//! One webhook body per Meta field, shaped as Meta's reference shows it (the
//! files in tests/fixtures/fields): what `wabridge simulate --fields` sends and
//! what a test event of a non-message type is made from.

use serde_json::{json, Value};

/// (sample name, Meta's body). Most names are the field's; a few fields have
/// more than one sample (`account_update_business`, `messages_group`).
pub const FIELD_SAMPLES: &[(&str, &str)] = &[
    (
        "account_alerts",
        include_str!("../../tests/fixtures/fields/account_alerts.json"),
    ),
    (
        "account_review_update",
        include_str!("../../tests/fixtures/fields/account_review_update.json"),
    ),
    (
        "account_settings_update",
        include_str!("../../tests/fixtures/fields/account_settings_update.json"),
    ),
    (
        "account_update",
        include_str!("../../tests/fixtures/fields/account_update.json"),
    ),
    (
        "account_update_business",
        include_str!("../../tests/fixtures/fields/account_update_business.json"),
    ),
    (
        "automatic_events",
        include_str!("../../tests/fixtures/fields/automatic_events.json"),
    ),
    (
        "business_capability_update",
        include_str!("../../tests/fixtures/fields/business_capability_update.json"),
    ),
    (
        "business_username_updates",
        include_str!("../../tests/fixtures/fields/business_username_updates.json"),
    ),
    (
        "calls",
        include_str!("../../tests/fixtures/fields/calls.json"),
    ),
    (
        "flows",
        include_str!("../../tests/fixtures/fields/flows.json"),
    ),
    (
        "group_lifecycle_update",
        include_str!("../../tests/fixtures/fields/group_lifecycle_update.json"),
    ),
    (
        "group_participants_update",
        include_str!("../../tests/fixtures/fields/group_participants_update.json"),
    ),
    (
        "group_settings_update",
        include_str!("../../tests/fixtures/fields/group_settings_update.json"),
    ),
    (
        "group_status_update",
        include_str!("../../tests/fixtures/fields/group_status_update.json"),
    ),
    (
        "history",
        include_str!("../../tests/fixtures/fields/history.json"),
    ),
    (
        "message_template_components_update",
        include_str!("../../tests/fixtures/fields/message_template_components_update.json"),
    ),
    (
        "message_template_quality_update",
        include_str!("../../tests/fixtures/fields/message_template_quality_update.json"),
    ),
    (
        "message_template_status_update",
        include_str!("../../tests/fixtures/fields/message_template_status_update.json"),
    ),
    (
        "messages_errors",
        include_str!("../../tests/fixtures/fields/messages_errors.json"),
    ),
    (
        "messages_group",
        include_str!("../../tests/fixtures/fields/messages_group.json"),
    ),
    (
        "messaging_handovers",
        include_str!("../../tests/fixtures/fields/messaging_handovers.json"),
    ),
    (
        "partner_solutions",
        include_str!("../../tests/fixtures/fields/partner_solutions.json"),
    ),
    (
        "payment_configuration_update",
        include_str!("../../tests/fixtures/fields/payment_configuration_update.json"),
    ),
    (
        "phone_number_name_update",
        include_str!("../../tests/fixtures/fields/phone_number_name_update.json"),
    ),
    (
        "phone_number_quality_update",
        include_str!("../../tests/fixtures/fields/phone_number_quality_update.json"),
    ),
    (
        "security",
        include_str!("../../tests/fixtures/fields/security.json"),
    ),
    (
        "smb_app_state_sync",
        include_str!("../../tests/fixtures/fields/smb_app_state_sync.json"),
    ),
    (
        "smb_message_echoes",
        include_str!("../../tests/fixtures/fields/smb_message_echoes.json"),
    ),
    (
        "standby",
        include_str!("../../tests/fixtures/fields/standby.json"),
    ),
    (
        "template_category_update",
        include_str!("../../tests/fixtures/fields/template_category_update.json"),
    ),
    (
        "unknown_field",
        include_str!("../../tests/fixtures/fields/unknown_field.json"),
    ),
    (
        "user_id_update",
        include_str!("../../tests/fixtures/fields/user_id_update.json"),
    ),
    (
        "user_preferences",
        include_str!("../../tests/fixtures/fields/user_preferences.json"),
    ),
];

/// The sample `name` for `waba_id`: every entry is that WABA's (except a
/// business-level one, which keeps its portfolio id), dated `secs`, and Meta's
/// message and call ids carry `run`, so a second run is not taken for a redelivery.
pub fn field_sample(name: &str, waba_id: &str, run: &str, secs: u64) -> Option<Vec<u8>> {
    let (_, raw) = FIELD_SAMPLES.iter().find(|(n, _)| *n == name)?;
    let raw = raw
        .replace("wamid.", &format!("wamid.SIM{run}"))
        .replace("wacid.", &format!("wacid.SIM{run}"));
    let mut body: Value = serde_json::from_str(&raw).ok()?;
    let business_level = name.ends_with("_business") || name == "partner_solutions";
    for entry in body["entry"].as_array_mut()? {
        if !business_level {
            entry["id"] = json!(waba_id);
        }
        entry["time"] = json!(secs);
    }
    serde_json::to_vec(&body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook;

    #[test]
    fn every_sample_parses_into_events_of_its_wabas() {
        for (name, _) in FIELD_SAMPLES {
            let body = field_sample(name, "W9", "r1", 1_700_000_000).unwrap();
            let events = webhook::parse(&body, 0).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(!events.is_empty(), "{name}");
            for e in &events {
                assert!(e.event_type.starts_with("whatsapp."), "{name}");
            }
        }
    }
}
