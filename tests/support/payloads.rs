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
