//! The checks of each message type but the interactive ones: what Meta
//! requires of contacts, media, locations, templates and reactions.

use serde_json::{Map, Value};

use super::fields::{check_url, object, optional_str, text};
use super::limits;
use crate::error::Error;

/// Contacts is the one type whose content is an array, so `check_content`
/// sends it here before anything else.
pub(super) fn check_contacts(content: &Value) -> Result<(), Error> {
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

pub(super) fn media(
    c: &Map<String, Value>,
    kind: &str,
    caption: bool,
    filename: bool,
) -> Result<(), Error> {
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

pub(super) fn location(c: &Map<String, Value>) -> Result<(), Error> {
    coordinate(c, "latitude", 90.0)?;
    coordinate(c, "longitude", 180.0)?;
    text(c, "location", "name", 1000, false)?;
    text(c, "location", "address", 1000, false)?;
    Ok(())
}

/// Meta takes coordinates as numbers or as numeric strings.
pub(super) fn coordinate(c: &Map<String, Value>, key: &str, bound: f64) -> Result<(), Error> {
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

pub(super) fn template(c: &Map<String, Value>) -> Result<(), Error> {
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

pub(super) fn reaction(c: &Map<String, Value>) -> Result<(), Error> {
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
