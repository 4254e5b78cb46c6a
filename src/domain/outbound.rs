//! A message a flow tool wants to send, checked against what Meta would refuse
//! (required fields, lengths, counts) before Meta is called, and completed
//! into the body of `POST /{phone-number-id}/messages`.

use serde_json::{json, Map, Value};

use super::recipient::{check_user_id, normalize_phone, Recipient};
use crate::error::Error;

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
    body.insert("recipient_type".into(), json!("individual"));
    body.insert("type".into(), json!(message_type));
    match &recipient {
        Recipient::Phone(digits) => body.insert("to".into(), json!(format!("+{digits}"))),
        Recipient::UserId(id) => body.insert("recipient".into(), json!(id)),
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
    match (to, user) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "to",
            "give either `to` (a phone number) or `recipient` (a business-scoped user ID), not both",
        )),
        (Some(to), None) => Ok(Recipient::Phone(normalize_phone("to", to)?)),
        (None, Some(id)) => Ok(Recipient::UserId(check_user_id("recipient", id)?)),
        (None, None) => Err(Error::invalid(
            "to",
            "who is it for? Give `to` (a phone number in E.164, e.g. +420777123456) or `recipient` (a business-scoped user ID)",
        )),
    }
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

/// Contacts is the one type whose content is an array, so it is checked here.
fn check_contacts(content: &Value) -> Result<(), Error> {
    let list = content
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                "contacts",
                "must be a non-empty array of contacts, each with name.formatted_name",
            )
        })?;
    for (i, contact) in list.iter().enumerate() {
        let at = format!("contacts[{i}]");
        let c = object(&at, contact)?;
        let name = c
            .get("name")
            .ok_or_else(|| Error::invalid(&format!("{at}.name"), "is required"))?;
        text(
            object(&format!("{at}.name"), name)?,
            &format!("{at}.name"),
            "formatted_name",
            usize::MAX,
            true,
        )?;
    }
    Ok(())
}

fn media(c: &Map<String, Value>, kind: &str, caption: bool, filename: bool) -> Result<(), Error> {
    let id = optional_str(c, kind, "id")?;
    let link = optional_str(c, kind, "link")?;
    match (id, link) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                &format!("{kind}.id"),
                "give either `id` (an uploaded media id) or `link` (an https URL), not both",
            ))
        }
        (None, None) => {
            return Err(Error::invalid(
                &format!("{kind}.id"),
                format!("a {kind} needs `id` (from POST /api/v1/phone-numbers/{{id}}/media) or `link` (an https URL)"),
            ))
        }
        (Some(id), None) if id.trim().is_empty() => {
            return Err(Error::invalid(&format!("{kind}.id"), "must not be empty"))
        }
        (None, Some(link)) => check_url(&format!("{kind}.link"), link)?,
        _ => {}
    }
    if caption {
        text(c, kind, "caption", limits::CAPTION, false)?;
    } else if c.contains_key("caption") {
        return Err(Error::invalid(
            &format!("{kind}.caption"),
            format!("Meta does not show a caption on {kind} messages; remove it"),
        ));
    }
    if filename {
        text(c, kind, "filename", limits::FILENAME, false)?;
    }
    Ok(())
}

fn location(c: &Map<String, Value>) -> Result<(), Error> {
    coordinate(c, "latitude", 90.0)?;
    coordinate(c, "longitude", 180.0)?;
    text(c, "location", "name", 1000, false)?;
    text(c, "location", "address", 1000, false)?;
    Ok(())
}

/// Meta takes coordinates as numbers or as numeric strings.
fn coordinate(c: &Map<String, Value>, key: &str, bound: f64) -> Result<(), Error> {
    let field = format!("location.{key}");
    let value = match c.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match value {
        Some(v) if v.is_finite() && v.abs() <= bound => Ok(()),
        _ => Err(Error::invalid(
            &field,
            format!("is required: a number from -{bound} to {bound}"),
        )),
    }
}

fn template(c: &Map<String, Value>) -> Result<(), Error> {
    text(c, "template", "name", limits::TEMPLATE_NAME, true)?;
    let language = c.get("language").ok_or_else(|| {
        Error::invalid(
            "template.language",
            "is required: {\"code\": \"en_US\"} (the template's language in WhatsApp Manager)",
        )
    })?;
    text(
        object("template.language", language)?,
        "template.language",
        "code",
        20,
        true,
    )?;
    if let Some(components) = c.get("components") {
        if !components.is_array() {
            return Err(Error::invalid(
                "template.components",
                "must be an array of components (header, body, button parameters)",
            ));
        }
    }
    Ok(())
}

fn interactive(c: &Map<String, Value>) -> Result<(), Error> {
    let kind = optional_str(c, "interactive", "type")?.ok_or_else(|| {
        Error::invalid(
            "interactive.type",
            "is required: button, list or cta_url (or another of Meta's interactive types)",
        )
    })?;
    if let Some(footer) = c.get("footer") {
        text(
            object("interactive.footer", footer)?,
            "interactive.footer",
            "text",
            limits::FOOTER_TEXT,
            true,
        )?;
    }
    if let Some(header) = c.get("header") {
        interactive_header(kind, object("interactive.header", header)?)?;
    }
    let body_required = matches!(kind, "button" | "list" | "cta_url");
    match c.get("body") {
        Some(body) => {
            text(
                object("interactive.body", body)?,
                "interactive.body",
                "text",
                limits::INTERACTIVE_BODY,
                true,
            )?;
        }
        None if body_required => {
            return Err(Error::invalid(
                "interactive.body.text",
                format!("a {kind} message needs a body text"),
            ))
        }
        None => {}
    }
    let action = c
        .get("action")
        .ok_or_else(|| Error::invalid("interactive.action", "is required"))?;
    let action = object("interactive.action", action)?;
    match kind {
        "button" => reply_buttons(action),
        "list" => list(action),
        "cta_url" => cta_url(action),
        // Product, flow and other interactive types go to Meta as they are.
        _ => Ok(()),
    }
}

fn interactive_header(kind: &str, h: &Map<String, Value>) -> Result<(), Error> {
    let header_type = optional_str(h, "interactive.header", "type")?.ok_or_else(|| {
        Error::invalid(
            "interactive.header.type",
            "is required: text, image, video or document",
        )
    })?;
    match header_type {
        "text" => text(h, "interactive.header", "text", limits::HEADER_TEXT, true).map(|_| ()),
        "image" | "video" | "document" if kind != "list" => {
            let content = h.get(header_type).ok_or_else(|| {
                Error::invalid(
                    &format!("interactive.header.{header_type}"),
                    "is required: {\"id\": …} or {\"link\": …}",
                )
            })?;
            let field = format!("interactive.header.{header_type}");
            media(object(&field, content)?, &field, false, false)
        }
        other => Err(Error::invalid(
            "interactive.header.type",
            format!("{other:?} is not a header a {kind} message can have"),
        )),
    }
}

fn reply_buttons(action: &Map<String, Value>) -> Result<(), Error> {
    let buttons = array(action, "interactive.action", "buttons")?;
    if buttons.is_empty() || buttons.len() > limits::REPLY_BUTTONS {
        return Err(Error::invalid(
            "interactive.action.buttons",
            format!("needs 1 to {} reply buttons", limits::REPLY_BUTTONS),
        ));
    }
    let mut ids = Vec::new();
    for (i, button) in buttons.iter().enumerate() {
        let at = format!("interactive.action.buttons[{i}]");
        let b = object(&at, button)?;
        if optional_str(b, &at, "type")? != Some("reply") {
            return Err(Error::invalid(&format!("{at}.type"), "must be \"reply\""));
        }
        let reply_at = format!("{at}.reply");
        let reply = object(
            &reply_at,
            b.get("reply")
                .ok_or_else(|| Error::invalid(&reply_at, "is required: {id, title}"))?,
        )?;
        let id = text(reply, &reply_at, "id", limits::BUTTON_ID, true)?;
        text(reply, &reply_at, "title", limits::BUTTON_TITLE, true)?;
        unique(&mut ids, id, &format!("{reply_at}.id"))?;
    }
    Ok(())
}

fn list(action: &Map<String, Value>) -> Result<(), Error> {
    text(
        action,
        "interactive.action",
        "button",
        limits::LIST_BUTTON,
        true,
    )?;
    let sections = array(action, "interactive.action", "sections")?;
    if sections.is_empty() || sections.len() > limits::LIST_SECTIONS {
        return Err(Error::invalid(
            "interactive.action.sections",
            format!("needs 1 to {} sections", limits::LIST_SECTIONS),
        ));
    }
    let mut ids = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        let at = format!("interactive.action.sections[{i}]");
        let s = object(&at, section)?;
        text(s, &at, "title", limits::SECTION_TITLE, sections.len() > 1)?;
        let rows = array(s, &at, "rows")?;
        if rows.is_empty() {
            return Err(Error::invalid(
                &format!("{at}.rows"),
                "needs at least one row",
            ));
        }
        for (j, row) in rows.iter().enumerate() {
            let row_at = format!("{at}.rows[{j}]");
            let r = object(&row_at, row)?;
            let id = text(r, &row_at, "id", limits::ROW_ID, true)?;
            text(r, &row_at, "title", limits::ROW_TITLE, true)?;
            text(r, &row_at, "description", limits::ROW_DESCRIPTION, false)?;
            unique(&mut ids, id, &format!("{row_at}.id"))?;
        }
    }
    if ids.len() > limits::LIST_ROWS {
        return Err(Error::invalid(
            "interactive.action.sections",
            format!(
                "has {} rows; a list may have at most {} rows across all sections",
                ids.len(),
                limits::LIST_ROWS
            ),
        ));
    }
    Ok(())
}

fn cta_url(action: &Map<String, Value>) -> Result<(), Error> {
    if optional_str(action, "interactive.action", "name")? != Some("cta_url") {
        return Err(Error::invalid(
            "interactive.action.name",
            "must be \"cta_url\"",
        ));
    }
    let p = action.get("parameters").ok_or_else(|| {
        Error::invalid(
            "interactive.action.parameters",
            "is required: {display_text, url}",
        )
    })?;
    let p = object("interactive.action.parameters", p)?;
    text(
        p,
        "interactive.action.parameters",
        "display_text",
        limits::CTA_DISPLAY_TEXT,
        true,
    )?;
    let url = text(p, "interactive.action.parameters", "url", limits::URL, true)?;
    check_url("interactive.action.parameters.url", url)
}

fn reaction(c: &Map<String, Value>) -> Result<(), Error> {
    text(c, "reaction", "message_id", usize::MAX, true)?;
    // An empty emoji removes an earlier reaction.
    match c.get("emoji") {
        Some(Value::String(e)) if e.chars().count() <= 10 => Ok(()),
        _ => Err(Error::invalid(
            "reaction.emoji",
            "is required: one emoji, or \"\" to remove a reaction",
        )),
    }
}

fn check_url(field: &str, raw: &str) -> Result<(), Error> {
    match url::Url::parse(raw.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if raw.chars().count() > limits::URL {
                return Err(Error::invalid(field, "is too long for Meta"));
            }
            Ok(())
        }
        _ => Err(Error::invalid(
            field,
            format!("{raw:?} is not an http(s) URL Meta can fetch"),
        )),
    }
}

fn object<'a>(field: &str, v: &'a Value) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| Error::invalid(field, "must be an object"))
}

fn array<'a>(c: &'a Map<String, Value>, at: &str, key: &str) -> Result<&'a Vec<Value>, Error> {
    c.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid(&join(at, key), "is required: an array"))
}

fn optional_str<'a>(
    c: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<&'a str>, Error> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid(&join(at, key), "must be a string")),
    }
}

fn optional_bool(c: &Map<String, Value>, at: &str, key: &str) -> Result<(), Error> {
    match c.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
        Some(_) => Err(Error::invalid(&join(at, key), "must be true or false")),
    }
}

/// A string field with Meta's length limit; `required` also refuses blank text.
fn text<'a>(
    c: &'a Map<String, Value>,
    at: &str,
    key: &str,
    max: usize,
    required: bool,
) -> Result<&'a str, Error> {
    let field = join(at, key);
    match optional_str(c, at, key)? {
        None if required => Err(Error::invalid(&field, "is required")),
        None => Ok(""),
        Some(s) if required && s.trim().is_empty() => {
            Err(Error::invalid(&field, "must not be empty"))
        }
        Some(s) if s.chars().count() > max => Err(Error::invalid(
            &field,
            format!(
                "is {} characters long; Meta allows at most {max}",
                s.chars().count()
            ),
        )),
        Some(s) => Ok(s),
    }
}

fn unique<'a>(seen: &mut Vec<&'a str>, id: &'a str, field: &str) -> Result<(), Error> {
    if seen.contains(&id) {
        return Err(Error::invalid(
            field,
            format!("{id:?} is used twice; ids must be unique"),
        ));
    }
    seen.push(id);
    Ok(())
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

#[cfg(test)]
mod tests;
