//! Meta-shaped webhook bodies (`whatsapp_business_account` notifications).

use serde_json::{json, Value};

/// A notification with one entry per (WABA id, changes' values).
pub fn notification(entries: &[(&str, Vec<Value>)]) -> Vec<u8> {
    let entry: Vec<Value> = entries
        .iter()
        .map(|(waba, values)| {
            let changes: Vec<Value> = values
                .iter()
                .map(|v| json!({"field": "messages", "value": v}))
                .collect();
            json!({"id": waba, "changes": changes})
        })
        .collect();
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": entry})).unwrap()
}

/// A change value carrying inbound messages for a phone number.
pub fn messages_value(phone_number_id: &str, contacts: Vec<Value>, messages: Vec<Value>) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
        "contacts": contacts,
        "messages": messages,
    })
}

/// A change value carrying statuses for a phone number.
pub fn statuses_value(phone_number_id: &str, statuses: Vec<Value>) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
        "statuses": statuses,
    })
}

pub fn contact(wa_id: &str, name: &str) -> Value {
    json!({"profile": {"name": name}, "wa_id": wa_id, "user_id": format!("US.{wa_id}")})
}

pub fn text(id: &str, from: &str, body: &str) -> Value {
    json!({"from": from, "id": id, "timestamp": "1764000000", "type": "text", "text": {"body": body}})
}

/// A single text message from one sender to one phone number of one WABA.
pub fn single_text(waba: &str, phone_number_id: &str, id: &str, body: &str) -> Vec<u8> {
    notification(&[(
        waba,
        vec![messages_value(
            phone_number_id,
            vec![contact("420777123456", "Jana")],
            vec![text(id, "420777123456", body)],
        )],
    )])
}

pub fn status(id: &str, status: &str, recipient: &str) -> Value {
    json!({
        "id": id,
        "status": status,
        "timestamp": "1764000100",
        "recipient_id": recipient,
        "conversation": {"id": "conv-1", "origin": {"type": "service"}},
        "pricing": {"billable": true, "pricing_model": "PMP", "category": "service", "type": "regular"},
    })
}

/// A webhook body kept under `tests/fixtures/`, byte for byte as it will be signed and posted.
pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("cannot read fixture {full}: {e}"))
}

/// The same fixture, parsed.
pub fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// Unix seconds as RFC 3339 UTC (`2025-11-24T16:00:00Z`), computed here independently
/// of the gateway (days-to-civil after Howard Hinnant).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// A status for a message, with whatever else Meta attached (`errors`, `conversation`…).
pub fn status_with(id: &str, status: &str, timestamp: &str, extra: Value) -> Value {
    let mut out =
        json!({"id": id, "status": status, "timestamp": timestamp, "recipient_id": "420777123456"});
    if let (Some(fields), Value::Object(extra)) = (out.as_object_mut(), extra) {
        fields.extend(extra);
    }
    out
}

/// A notification carrying only these statuses, for one WABA and phone number.
pub fn statuses(waba: &str, phone_number_id: &str, statuses: Vec<Value>) -> Vec<u8> {
    notification(&[(waba, vec![statuses_value(phone_number_id, statuses)])])
}
