//! A message a flow tool wants to send, checked against what Meta would refuse
//! (required fields, lengths, counts) before Meta is called, and completed
//! into the body of `POST /{phone-number-id}/messages`.

pub(in crate::domain) mod fields;
mod interactive;
mod kinds;

use serde_json::{json, Map, Value};

use super::groups::check_group_id;
use super::recipient::{person, Recipient};
use crate::error::Error;
use fields::{object, optional_bool, optional_str, text};
use interactive::interactive;
use kinds::{check_contacts, location, media, reaction, template};

/// Meta's limits, in characters (Unicode scalar values, as Meta counts them).
pub mod limits {
    pub const TEXT_BODY: usize = 4096;
    pub const CAPTION: usize = 1024;
    pub const FILENAME: usize = 240;
    pub const INTERACTIVE_BODY: usize = 1024;
    pub const HEADER_TEXT: usize = 60;
    pub const FOOTER_TEXT: usize = 60;
    pub const REPLY_BUTTONS: usize = 3;
    pub const BUTTON_TITLE: usize = 20;
    pub const BUTTON_ID: usize = 256;
    pub const LIST_BUTTON: usize = 20;
    pub const LIST_SECTIONS: usize = 10;
    pub const LIST_ROWS: usize = 10;
    pub const SECTION_TITLE: usize = 24;
    pub const ROW_ID: usize = 200;
    pub const ROW_TITLE: usize = 24;
    pub const ROW_DESCRIPTION: usize = 72;
    pub const CTA_DISPLAY_TEXT: usize = 20;
    /// A Flow message's button text (`flow_cta`).
    pub const FLOW_CTA: usize = 20;
    pub const TEMPLATE_NAME: usize = 512;
    pub const URL: usize = 2000;
}

/// The message types this API sends (Meta's `type`).
pub const MESSAGE_TYPES: [&str; 11] = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "template",
    "interactive",
    "reaction",
];

/// What Meta's Groups API sends to a group: "text, media, text-based
/// templates, and media-based templates" (its Groups overview).
pub const GROUP_TYPES: [&str; 7] = [
    "text", "image", "video", "audio", "document", "sticker", "template",
];

/// A checked message, ready for Meta.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    pub recipient: Recipient,
    pub message_type: String,
    /// The body for Meta, with `messaging_product` and `recipient_type` set.
    pub body: Value,
}

/// Checks a send request: Meta's message object without `messaging_product`.
pub fn prepare(request: Value) -> Result<Outbound, Error> {
    let Value::Object(mut body) = request else {
        return Err(Error::invalid(
            "body",
            "expected a JSON object: Meta's message object",
        ));
    };
    let recipient = recipient(&body)?;
    let message_type = message_type(&body)?;
    if matches!(recipient, Recipient::Group(_)) && !GROUP_TYPES.contains(&message_type.as_str()) {
        return Err(Error::invalid(
            "type",
            format!(
                "a group takes {} messages (Meta's Groups API sends no {message_type} to a group)",
                GROUP_TYPES.join(", ")
            ),
        ));
    }
    let content = body.get(&message_type).ok_or_else(|| {
        Error::invalid(
            &message_type,
            format!("a {message_type} message needs a `{message_type}` object"),
        )
    })?;
    check_content(&message_type, content)?;
    if let Some(context) = body.get("context") {
        let c = object("context", context)?;
        text(c, "context", "message_id", usize::MAX, true)?;
    }
    body.insert("messaging_product".into(), json!("whatsapp"));
    let recipient_type = match recipient {
        Recipient::Group(_) => "group",
        _ => "individual",
    };
    body.insert("recipient_type".into(), json!(recipient_type));
    body.insert("type".into(), json!(message_type));
    match &recipient {
        Recipient::Phone(digits) => body.insert("to".into(), json!(format!("+{digits}"))),
        Recipient::UserId(id) => body.insert("recipient".into(), json!(id)),
        Recipient::Group(id) => body.insert("to".into(), json!(id)),
    };
    Ok(Outbound {
        recipient,
        message_type,
        body: Value::Object(body),
    })
}

fn recipient(body: &Map<String, Value>) -> Result<Recipient, Error> {
    let to = optional_str(body, "", "to")?;
    let user = optional_str(body, "", "recipient")?;
    match optional_str(body, "", "recipient_type")? {
        None | Some("individual") => {}
        Some("group") => {
            return match (to, user) {
                (Some(id), None) => Ok(Recipient::Group(check_group_id("to", id)?)),
                _ => Err(Error::invalid(
                    "to",
                    "with recipient_type \"group\", give the group's id as `to` (and no `recipient`)",
                )),
            };
        }
        Some(other) => {
            return Err(Error::invalid(
                "recipient_type",
                format!("{other:?}: use \"individual\" (the default) or \"group\""),
            ))
        }
    }
    person(to, user, "who is it for?")
}

/// `type`, or when it is missing the one content object present (Meta would assume text).
fn message_type(body: &Map<String, Value>) -> Result<String, Error> {
    if let Some(t) = optional_str(body, "", "type")? {
        if MESSAGE_TYPES.contains(&t) {
            return Ok(t.to_string());
        }
        return Err(Error::invalid(
            "type",
            format!(
                "{t:?} is not a message type wabridge sends; use one of {}",
                MESSAGE_TYPES.join(", ")
            ),
        ));
    }
    let present: Vec<&str> = MESSAGE_TYPES
        .iter()
        .copied()
        .filter(|t| body.contains_key(*t))
        .collect();
    match present.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(Error::invalid(
            "type",
            format!("set `type` to one of {}", MESSAGE_TYPES.join(", ")),
        )),
    }
}

fn check_content(message_type: &str, content: &Value) -> Result<(), Error> {
    if message_type == "contacts" {
        return check_contacts(content);
    }
    let c = object(message_type, content)?;
    match message_type {
        "text" => {
            text(c, "text", "body", limits::TEXT_BODY, true)?;
            optional_bool(c, "text", "preview_url")
        }
        "image" | "video" => media(c, message_type, true, false),
        "document" => media(c, message_type, true, true),
        "audio" | "sticker" => media(c, message_type, false, false),
        "location" => location(c),
        "template" => template(c),
        "interactive" => interactive(c),
        _ => reaction(c),
    }
}

#[cfg(test)]
mod tests;
