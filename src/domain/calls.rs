//! WhatsApp calls as Meta's Calling API takes them (`POST /{phone-number-id}/calls`),
//! checked before Meta is asked, so a flow learns which field is wrong at once.
//! wabridge only signals: the SDP a flow's WebRTC stack made goes to Meta as
//! it is, checked to be there, a string and of a sane size, never rewritten.
//! Also the reading of Meta's call permission answer (`GET
//! /{phone-number-id}/call_permissions`). docs/flow-api.md cites Meta's pages.

pub mod settings;

use serde_json::{json, Map, Value};

use super::recipient::{self, person, Recipient};
use crate::error::Error;

/// Meta's call actions, in Meta's names.
pub const ACTIONS: [&str; 5] = ["connect", "pre_accept", "accept", "reject", "terminate"];
/// The keys of Meta's call body (`messaging_product` is wabridge's to set).
const KEYS: [&str; 7] = [
    "messaging_product",
    "action",
    "call_id",
    "to",
    "recipient",
    "session",
    "biz_opaque_callback_data",
];
/// An SDP a WebRTC stack makes for one audio call is a few kilobytes; this
/// leaves room for many candidates and codecs and stops a mistaken upload.
pub const SDP_MAX_BYTES: usize = 64 * 1024;
/// Meta's call ids (`wacid.…`) are a few dozen characters.
pub const CALL_ID_MAX: usize = 512;
/// Meta's limit for `biz_opaque_callback_data`, as for messages.
pub const CALLBACK_DATA_MAX: usize = 512;

/// What a call request asks of Meta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallAction {
    /// A business-initiated call: `to` (or `recipient`) and an SDP offer.
    Connect,
    /// A user's call answered early, before media flows: the SDP answer.
    PreAccept,
    /// A user's call answered: the SDP answer.
    Accept,
    Reject,
    Terminate,
}

impl CallAction {
    fn parse(raw: &str) -> Result<CallAction, Error> {
        // Meta's names are lowercase; `PRE_ACCEPT` as some samples write it is the same action.
        Ok(match raw.to_ascii_lowercase().as_str() {
            "connect" => CallAction::Connect,
            "pre_accept" => CallAction::PreAccept,
            "accept" => CallAction::Accept,
            "reject" => CallAction::Reject,
            "terminate" => CallAction::Terminate,
            _ => {
                return Err(Error::invalid(
                    "action",
                    format!(
                        "{raw:?} is not a call action: use one of {}",
                        ACTIONS.join(", ")
                    ),
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallAction::Connect => "connect",
            CallAction::PreAccept => "pre_accept",
            CallAction::Accept => "accept",
            CallAction::Reject => "reject",
            CallAction::Terminate => "terminate",
        }
    }

    /// The SDP type the action carries, where it carries one.
    fn sdp_type(self) -> Option<&'static str> {
        match self {
            CallAction::Connect => Some("offer"),
            CallAction::PreAccept | CallAction::Accept => Some("answer"),
            CallAction::Reject | CallAction::Terminate => None,
        }
    }
}

/// A checked call request, ready for Meta.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRequest {
    pub action: CallAction,
    /// The call acted on; `None` for a connect, whose id Meta gives.
    pub call_id: Option<String>,
    /// Whom a connect calls.
    pub recipient: Option<Recipient>,
    /// The body for Meta, with `messaging_product` set.
    pub body: Value,
}

impl CallRequest {
    /// What the flow gets back from Meta's answer: the call's id (Meta's new
    /// one for a connect) and whether Meta took the action.
    pub fn answer(&self, phone_number_id: &str, meta: &Value) -> Value {
        let call_id = match &self.call_id {
            Some(id) => json!(id),
            None => meta.pointer("/calls/0/id").cloned().unwrap_or(Value::Null),
        };
        let success = match self.action {
            CallAction::Connect => !call_id.is_null(),
            _ => meta
                .get("success")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        json!({
            "phoneNumberId": phone_number_id,
            "action": self.action.as_str(),
            "callId": call_id,
            "success": success,
        })
    }
}

/// Checks a call request: Meta's call body, `messaging_product` optional.
pub fn prepare(request: Value) -> Result<CallRequest, Error> {
    let Value::Object(body) = request else {
        return Err(Error::invalid(
            "body",
            "expected a JSON object: Meta's call body {action, call_id | to, session?}",
        ));
    };
    if let Some(unknown) = body.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(Error::invalid(
            unknown,
            format!(
                "is not a field of Meta's call body; use {}",
                KEYS[1..].join(", ")
            ),
        ));
    }
    match body.get("messaging_product") {
        None => {}
        Some(Value::String(p)) if p == "whatsapp" => {}
        Some(_) => {
            return Err(Error::invalid(
                "messaging_product",
                "must be \"whatsapp\", or left out",
            ))
        }
    }
    let action = CallAction::parse(string(&body, "action")?.ok_or_else(|| {
        Error::invalid(
            "action",
            format!("is required: one of {}", ACTIONS.join(", ")),
        )
    })?)?;
    let mut meta = Map::new();
    meta.insert("messaging_product".into(), json!("whatsapp"));
    meta.insert("action".into(), json!(action.as_str()));

    let (call_id, recipient) = if action == CallAction::Connect {
        if body.contains_key("call_id") {
            return Err(Error::invalid(
                "call_id",
                "a connect starts a new call, whose id Meta gives: leave call_id out",
            ));
        }
        let recipient = callee(&body)?;
        match &recipient {
            Recipient::Phone(digits) => meta.insert("to".into(), json!(digits)),
            Recipient::UserId(id) => meta.insert("recipient".into(), json!(id)),
            Recipient::Group(_) => {
                return Err(Error::invalid("to", "a call goes to one user, not a group"))
            }
        };
        (None, Some(recipient))
    } else {
        for key in ["to", "recipient"] {
            if body.contains_key(key) {
                return Err(Error::invalid(
                    key,
                    format!(
                        "only a connect names whom to call; a {} acts on the call in call_id",
                        action.as_str()
                    ),
                ));
            }
        }
        let id = call_id(&body)?;
        meta.insert("call_id".into(), json!(id));
        (Some(id), None)
    };

    match (action.sdp_type(), body.get("session")) {
        (Some(expected), Some(session)) => {
            meta.insert("session".into(), checked_session(session, expected)?);
        }
        (Some(expected), None) => {
            return Err(Error::invalid(
                "session",
                format!(
                    "a {} needs {{sdp_type: \"{expected}\", sdp}}: the SDP {expected} of your WebRTC stack",
                    action.as_str()
                ),
            ))
        }
        (None, Some(_)) => {
            return Err(Error::invalid(
                "session",
                format!("a {} carries no SDP: leave session out", action.as_str()),
            ))
        }
        (None, None) => {}
    }

    if let Some(data) = string(&body, "biz_opaque_callback_data")? {
        if data.chars().count() > CALLBACK_DATA_MAX {
            return Err(Error::invalid(
                "biz_opaque_callback_data",
                format!("at most {CALLBACK_DATA_MAX} characters"),
            ));
        }
        meta.insert("biz_opaque_callback_data".into(), json!(data));
    }
    Ok(CallRequest {
        action,
        call_id,
        recipient,
        body: Value::Object(meta),
    })
}

/// Whom a connect calls: `to` (a phone number) or `recipient` (a BSUID).
fn callee(body: &Map<String, Value>) -> Result<Recipient, Error> {
    person(
        string(body, "to")?,
        string(body, "recipient")?,
        "whom to call?",
    )
}

/// The call acted on, as Meta's `calls` webhook named it (`wacid.…`).
fn call_id(body: &Map<String, Value>) -> Result<String, Error> {
    let id = string(body, "call_id")?.ok_or_else(|| {
        Error::invalid(
            "call_id",
            "is required: the call's id from the `whatsapp.call` event (calls[].id, wacid.…)",
        )
    })?;
    let ok = !id.is_empty() && id.len() <= CALL_ID_MAX && id.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(Error::invalid(
            "call_id",
            format!("{id:?} is not a call id: Meta's ids (wacid.…) are printable characters without spaces, at most {CALL_ID_MAX}"),
        ));
    }
    Ok(id.to_string())
}

/// `{sdp_type, sdp}`: the type the action needs, and the SDP untouched.
fn checked_session(session: &Value, expected: &str) -> Result<Value, Error> {
    let Value::Object(s) = session else {
        return Err(Error::invalid(
            "session",
            format!("must be an object {{sdp_type: \"{expected}\", sdp}}"),
        ));
    };
    if let Some(unknown) = s.keys().find(|k| !matches!(k.as_str(), "sdp_type" | "sdp")) {
        return Err(Error::invalid(
            &format!("session.{unknown}"),
            "is not part of a session: it holds sdp_type and sdp only",
        ));
    }
    let sdp_type = string(s, "sdp_type")
        .map_err(|_| Error::invalid("session.sdp_type", format!("must be \"{expected}\"")))?;
    if !sdp_type.is_some_and(|t| t.eq_ignore_ascii_case(expected)) {
        return Err(Error::invalid(
            "session.sdp_type",
            format!("must be \"{expected}\" for this action"),
        ));
    }
    let sdp = match s.get("sdp") {
        Some(Value::String(sdp)) => sdp,
        Some(_) => {
            return Err(Error::invalid(
                "session.sdp",
                "must be the SDP as one string (lines joined with \\r\\n)",
            ))
        }
        None => {
            return Err(Error::invalid(
                "session.sdp",
                format!("is required: the SDP {expected} of your WebRTC stack (RFC 8866)"),
            ))
        }
    };
    if !sdp.starts_with("v=0") {
        return Err(Error::invalid(
            "session.sdp",
            "is not an SDP: one starts with the line v=0 (RFC 8866)",
        ));
    }
    if sdp.len() > SDP_MAX_BYTES {
        return Err(Error::invalid(
            "session.sdp",
            format!(
                "is {} bytes; an SDP for a call is a few kilobytes, at most {SDP_MAX_BYTES}",
                sdp.len()
            ),
        ));
    }
    Ok(json!({"sdp_type": expected, "sdp": sdp}))
}

/// A string field, `None` when absent; any other JSON type is refused.
fn string<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Error> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid(key, "must be a string")),
    }
}

/// Whom a permission question is about: a BSUID goes to Meta as `recipient`,
/// a phone number as `user_wa_id` (E.164 digits).
pub fn permission_query(user: &str) -> Result<(Recipient, (&'static str, String)), Error> {
    let who = recipient::user("user", user)?;
    let asked = match &who {
        Recipient::UserId(id) => ("recipient", id.clone()),
        phone => ("user_wa_id", phone.key().to_string()),
    };
    Ok((who, asked))
}

/// Meta's call permission answer for a flow: Meta's `permission` and
/// `actions` as they are, and beside them whether a call may start now and
/// whether a permission request may be sent now (an action Meta does not
/// list counts as not allowed).
pub fn permission_view(phone_number_id: &str, user: &Recipient, meta: &Value) -> Value {
    let can = |name: &str| {
        meta.get("actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|a| a.get("action_name").and_then(Value::as_str) == Some(name))
            .and_then(|a| a.get("can_perform_action"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    json!({
        "phoneNumberId": phone_number_id,
        "user": user.key(),
        "permission": meta.get("permission").cloned().unwrap_or(Value::Null),
        "actions": meta.get("actions").cloned().unwrap_or_else(|| json!([])),
        "canStartCall": can("start_call"),
        "canRequestPermission": can("send_call_permission_request"),
    })
}

#[cfg(test)]
mod tests;
