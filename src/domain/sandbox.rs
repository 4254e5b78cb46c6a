//! The sandbox: a made-up WhatsApp Business Account and phone number that let
//! a newcomer wire a flow tool end to end before Meta has approved their app.
//! wabridge answers the sandbox's Graph calls itself. Its ids are digits, as
//! Meta's are, but start with `000`, which Meta's never do: an event or a
//! number carrying one is the sandbox's, without a lookup.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ids::random_bytes;
use crate::error::Error;

const PREFIX: &str = "000";

/// The sandbox's phone number, kept with its account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxNumber {
    pub waba_id: String,
    pub phone_number_id: String,
    /// In the 555-01xx range that North American numbering keeps for fiction.
    pub display_phone_number: String,
}

impl SandboxNumber {
    pub fn new() -> SandboxNumber {
        let digits = random_digits(13);
        SandboxNumber {
            waba_id: format!("{PREFIX}{}", &digits[..12]),
            phone_number_id: format!("{PREFIX}{}", random_digits(12)),
            display_phone_number: format!("+1 555-01{}{}", &digits[12..], random_digits(1)),
        }
    }

    /// The number as Meta lists a WABA's phone numbers.
    pub fn as_listed(&self) -> Value {
        json!({
            "id": self.phone_number_id,
            "display_phone_number": self.display_phone_number,
            "verified_name": "wabridge sandbox",
            "quality_rating": "GREEN",
            "code_verification_status": "VERIFIED",
            "platform_type": "CLOUD_API",
            "status": "CONNECTED",
            "name_status": "APPROVED",
            "throughput": {"level": "STANDARD"},
        })
    }
}

impl Default for SandboxNumber {
    fn default() -> Self {
        SandboxNumber::new()
    }
}

/// A WABA or phone number id of a sandbox.
pub fn is_sandbox_id(id: &str) -> bool {
    id.len() > PREFIX.len() && id.starts_with(PREFIX) && id.bytes().all(|b| b.is_ascii_digit())
}

/// A message id as the sandbox gives one: Meta's `wamid.` form, saying what it is.
pub fn new_message_id() -> String {
    format!("wamid.SANDBOX{}", random_digits(20))
}

/// Meta's answer to a send: the recipient as given and as a `wa_id`, and the
/// message id. A read receipt (`status: read`) gets Meta's `{success: true}`.
pub fn send_answer(message: &Value, message_id: &str) -> Value {
    if message.get("status").and_then(Value::as_str) == Some("read") {
        return json!({"success": true});
    }
    let to = message
        .get("to")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut contact = json!({"input": to});
    let digits = to.trim_start_matches('+');
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        contact["wa_id"] = json!(digits);
    } else if let Some(user) = message.get("recipient").and_then(Value::as_str) {
        contact["user_id"] = json!(user);
    }
    json!({
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [{"id": message_id}],
    })
}

/// The templates a sandbox WABA has: Meta's own `hello_world`, which every
/// new WABA gets.
pub fn templates() -> Value {
    json!({"data": [{
        "id": "0001",
        "name": "hello_world",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
            {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us."},
            {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"}
        ]
    }]})
}

/// wabridge's answer, for Meta, to a Graph GET made with a sandbox account.
pub fn graph_get(number: &SandboxNumber, path: &str) -> Result<Value, Error> {
    match path.split_once('/') {
        Some((waba, "phone_numbers")) if waba == number.waba_id => {
            Ok(json!({"data": [number.as_listed()]}))
        }
        Some((waba, "message_templates")) if waba == number.waba_id => Ok(templates()),
        Some((waba, "flows")) if waba == number.waba_id => Ok(json!({"data": []})),
        // No calls reach a made-up number: its calling is off, and stays so.
        Some((phone, "settings")) if phone == number.phone_number_id => {
            Ok(json!({"calling": {"status": "DISABLED"}}))
        }
        None if path == number.phone_number_id => Ok(number.as_listed()),
        None if path == number.waba_id => Ok(json!({
            "id": number.waba_id,
            "name": "wabridge sandbox",
            "currency": "USD",
            "message_template_namespace": "sandbox",
        })),
        _ => Err(unsupported(path)),
    }
}

/// wabridge's answer, for Meta, to a Graph POST made with a sandbox account.
pub fn graph_post(number: &SandboxNumber, path: &str, body: &Value) -> Result<Value, Error> {
    match path.split_once('/') {
        // A sandbox number has no groups (nor a Meta to create them).
        Some((_, "messages")) if body["recipient_type"] == "group" => Err(unsupported("groups")),
        // Marketing messages (MM Lite) are sends too.
        Some((phone, "messages" | "marketing_messages")) if phone == number.phone_number_id => {
            Ok(send_answer(body, &new_message_id()))
        }
        Some((phone, "media")) if phone == number.phone_number_id => {
            Ok(json!({"id": format!("{PREFIX}{}", random_digits(13))}))
        }
        // The Flows endpoint's public key: a sandbox number's Flows are
        // tried by posting to its endpoint as Meta would.
        Some((phone, "whatsapp_business_encryption")) if phone == number.phone_number_id => {
            Ok(json!({"success": true}))
        }
        _ => Err(unsupported(path)),
    }
}

/// wabridge's answer, for Meta, to a Graph DELETE made with a sandbox
/// account: its one template is Meta's `hello_world`, which stays.
pub fn graph_delete(path: &str) -> Result<Value, Error> {
    Err(unsupported(path))
}

fn unsupported(path: &str) -> Error {
    let what = path.rsplit('/').next().unwrap_or(path);
    Error::Sandbox(format!(
        "a sandbox account has no Meta behind it for {what}: wabridge answers only sends, read receipts, its phone number, templates, uploads, its Flows public key and its calling settings (off: a sandbox number takes and places no calls)"
    ))
}

fn random_digits(n: usize) -> String {
    random_bytes(n)
        .iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_ids_are_digits_that_meta_never_gives() {
        let n = SandboxNumber::new();
        for id in [&n.waba_id, &n.phone_number_id] {
            assert!(is_sandbox_id(id), "{id}");
            assert_eq!(id.len(), 15, "{id}");
        }
        assert_ne!(n.waba_id, n.phone_number_id);
        assert!(n.display_phone_number.starts_with("+1 555-01"));
        assert!(!is_sandbox_id("102290129340398"));
        assert!(!is_sandbox_id("000"));
        assert!(!is_sandbox_id("000abc"));
    }

    #[test]
    fn a_send_is_answered_as_meta_answers_and_a_read_receipt_with_success() {
        let sent = send_answer(&json!({"to": "+420777123456", "type": "text"}), "wamid.X");
        assert_eq!(sent["messages"][0]["id"], "wamid.X");
        assert_eq!(sent["contacts"][0]["wa_id"], "420777123456");
        let to_user = send_answer(&json!({"recipient": "CZ.1", "type": "text"}), "wamid.Y");
        assert_eq!(to_user["contacts"][0]["user_id"], "CZ.1");
        let read = send_answer(
            &json!({"status": "read", "message_id": "wamid.Z"}),
            "wamid.-",
        );
        assert_eq!(read, json!({"success": true}));
    }

    #[test]
    fn the_flows_public_key_of_its_own_number_is_taken_and_no_other() {
        let n = SandboxNumber::new();
        let key = json!({"business_public_key": "-----BEGIN PUBLIC KEY-----"});
        let path = format!("{}/whatsapp_business_encryption", n.phone_number_id);
        assert_eq!(
            graph_post(&n, &path, &key).unwrap(),
            json!({"success": true})
        );
        let other = graph_post(&n, "102290129340398/whatsapp_business_encryption", &key);
        assert!(matches!(other, Err(Error::Sandbox(_))));
    }

    #[test]
    fn a_sandbox_number_has_no_groups_to_manage_or_send_to() {
        let n = SandboxNumber::new();
        let groups = format!("{}/groups", n.phone_number_id);
        assert!(matches!(graph_get(&n, &groups), Err(Error::Sandbox(_))));
        let create = json!({"messaging_product": "whatsapp", "subject": "x"});
        assert!(matches!(
            graph_post(&n, &groups, &create),
            Err(Error::Sandbox(_))
        ));
        let send = json!({"recipient_type": "group", "to": "G1", "type": "text"});
        let path = format!("{}/messages", n.phone_number_id);
        assert!(matches!(
            graph_post(&n, &path, &send),
            Err(Error::Sandbox(_))
        ));
        assert!(matches!(graph_delete("G1"), Err(Error::Sandbox(_))));
    }

    #[test]
    fn its_calling_is_off_and_no_call_is_made_up() {
        let n = SandboxNumber::new();
        let settings = format!("{}/settings", n.phone_number_id);
        assert_eq!(
            graph_get(&n, &settings).unwrap(),
            json!({"calling": {"status": "DISABLED"}})
        );
        let calls = format!("{}/calls", n.phone_number_id);
        let connect = json!({"action": "connect", "to": "420777123456"});
        for refused in [
            graph_post(&n, &calls, &connect),
            graph_post(&n, &settings, &json!({"calling": {"status": "ENABLED"}})),
            graph_get(&n, &format!("{}/call_permissions", n.phone_number_id)),
        ] {
            assert!(matches!(refused, Err(Error::Sandbox(_))), "{refused:?}");
        }
    }
}
