//! Interactive messages: their header, reply buttons, lists, URL button,
//! Flow button and call permission request, with Meta's counts and lengths.

use serde_json::{Map, Value};

use super::fields::{array, check_url, object, optional_str, text, unique};
use super::kinds::media;
use super::limits;
use crate::error::Error;

pub(super) fn interactive(c: &Map<String, Value>) -> Result<(), Error> {
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
    let body_required = matches!(
        kind,
        "button" | "list" | "cta_url" | "flow" | "call_permission_request"
    );
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
        "flow" => flow(action),
        // A call permission request: Meta's fixed action, the body the only
        // text the business writes (Meta's Calling API).
        "call_permission_request" => named(action, kind),
        // Product and other interactive types go to Meta as they are.
        _ => Ok(()),
    }
}

/// The action's `name`, which Meta fixes for some kinds of message.
fn named(action: &Map<String, Value>, name: &str) -> Result<(), Error> {
    if optional_str(action, "interactive.action", "name")? != Some(name) {
        return Err(Error::invalid(
            "interactive.action.name",
            format!("must be {name:?}"),
        ));
    }
    Ok(())
}

pub(super) fn interactive_header(kind: &str, h: &Map<String, Value>) -> Result<(), Error> {
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

pub(super) fn reply_buttons(action: &Map<String, Value>) -> Result<(), Error> {
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

pub(super) fn list(action: &Map<String, Value>) -> Result<(), Error> {
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

pub(super) fn cta_url(action: &Map<String, Value>) -> Result<(), Error> {
    named(action, "cta_url")?;
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

/// A Flow message's button: `{name: "flow", parameters: {flow_message_version:
/// "3", flow_id or flow_name, flow_cta, flow_action?, flow_action_payload?}}`.
pub(super) fn flow(action: &Map<String, Value>) -> Result<(), Error> {
    const AT: &str = "interactive.action.parameters";
    named(action, "flow")?;
    let p = action.get("parameters").ok_or_else(|| {
        Error::invalid(
            AT,
            "is required: {flow_message_version: \"3\", flow_id (or flow_name), flow_cta}",
        )
    })?;
    let p = object(AT, p)?;
    if optional_str(p, AT, "flow_message_version")? != Some("3") {
        return Err(Error::invalid(
            "interactive.action.parameters.flow_message_version",
            "must be \"3\"",
        ));
    }
    if optional_str(p, AT, "flow_id")?.is_none() && optional_str(p, AT, "flow_name")?.is_none() {
        return Err(Error::invalid(
            "interactive.action.parameters.flow_id",
            "is required (or flow_name): the Flow to open",
        ));
    }
    text(p, AT, "flow_cta", limits::FLOW_CTA, true)?;
    match optional_str(p, AT, "flow_action")? {
        None | Some("navigate" | "data_exchange") => {}
        Some(_) => {
            return Err(Error::invalid(
                "interactive.action.parameters.flow_action",
                "must be \"navigate\" or \"data_exchange\"",
            ))
        }
    }
    if let Some(payload) = p.get("flow_action_payload") {
        text(
            object("interactive.action.parameters.flow_action_payload", payload)?,
            "interactive.action.parameters.flow_action_payload",
            "screen",
            usize::MAX,
            true,
        )?;
    }
    Ok(())
}
