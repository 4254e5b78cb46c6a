//! Message templates as Meta takes them (create and edit), checked before Meta
//! is asked, so a flow learns which field is wrong at once instead of from a
//! Meta refusal or a rejection a day later. Only rules Meta's template pages
//! state are checked (docs/flow-api.md cites them); the rest is Meta's to judge,
//! and the body goes on as given, in Meta's own names.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

pub const CATEGORIES: &[&str] = &["MARKETING", "UTILITY", "AUTHENTICATION"];
const BUTTON_TYPES: &[&str] = &[
    "QUICK_REPLY",
    "URL",
    "PHONE_NUMBER",
    "COPY_CODE",
    "FLOW",
    "OTP",
];
const MEDIA_FORMATS: &[&str] = &["IMAGE", "VIDEO", "GIF", "DOCUMENT"];

const NAME_MAX: usize = 512;
const BODY_MAX: usize = 1024;
const HEADER_MAX: usize = 60;
const FOOTER_MAX: usize = 60;
const BUTTONS_MAX: usize = 10;
const BUTTON_TEXT_MAX: usize = 25;
const URL_MAX: usize = 2000;
const PHONE_MAX: usize = 20;
const COPY_CODE_MAX: usize = 15;
/// Media card carousel: 2 to 10 cards, each an IMAGE or VIDEO header, an
/// optional body of at most 160 characters and at most 2 buttons.
const CARDS_MIN: usize = 2;
const CARDS_MAX: usize = 10;
const CARD_BODY_MAX: usize = 160;
const CARD_BUTTONS_MAX: usize = 2;
const CARD_BUTTON_TYPES: &[&str] = &["QUICK_REPLY", "URL", "PHONE_NUMBER"];
const CARD_HEADER_FORMATS: &[&str] = &["IMAGE", "VIDEO"];
/// Limited-time offer: the offer text at most 16 characters, the body at most 600.
const OFFER_TEXT_MAX: usize = 16;
const OFFER_BODY_MAX: usize = 600;

/// CreateMessageTemplate's body: Meta's `POST /{waba}/message_templates`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    name: String,
    language: String,
    category: String,
    components: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_category_change: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter_format: Option<String>,
}

impl NewTemplate {
    /// Meta's body, once every rule holds.
    pub fn meta_body(self) -> Result<Value, Error> {
        check_name(&self.name)?;
        check_language(&self.language)?;
        check_category(&self.category)?;
        let named = named_parameters(self.parameter_format.as_deref())?;
        check_components(&self.components, &self.category, named)?;
        serde_json::to_value(self).map_err(|e| Error::internal("a template's body", e))
    }
}

/// EditMessageTemplate's body: Meta's `POST /{template_id}` changes the
/// components and the category, never the name or the language.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateEdit {
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter_format: Option<String>,
}

impl TemplateEdit {
    /// What holds whatever the template is: checked before Meta is asked
    /// for the template.
    pub fn check(&self) -> Result<(), Error> {
        if self.category.is_none() && self.components.is_none() {
            return Err(Error::invalid(
                "body",
                "nothing to change: give components, category or both",
            ));
        }
        if let Some(category) = &self.category {
            check_category(category)?;
        }
        named_parameters(self.parameter_format.as_deref()).map(|_| ())
    }

    /// Meta's body; `current` is the template's category at Meta, which
    /// decides the rules when the edit keeps it.
    pub fn meta_body(self, current: &str) -> Result<Value, Error> {
        self.check()?;
        let named = named_parameters(self.parameter_format.as_deref())?;
        if let Some(components) = &self.components {
            check_components(
                components,
                self.category.as_deref().unwrap_or(current),
                named,
            )?;
        }
        serde_json::to_value(self).map_err(|e| Error::internal("a template edit's body", e))
    }
}

/// A template name as Meta names one: what DELETE by name takes too.
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!("lowercase letters, digits and underscores only, 1 to {NAME_MAX} characters"),
        ))
    }
}

fn check_language(code: &str) -> Result<(), Error> {
    let ok = (2..=15).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "language",
            "a language code Meta supports, such as en_US, de or pt_BR",
        ))
    }
}

fn check_category(category: &str) -> Result<(), Error> {
    if CATEGORIES.contains(&category) {
        Ok(())
    } else {
        Err(Error::invalid(
            "category",
            format!("must be one of {}", CATEGORIES.join(", ")),
        ))
    }
}

/// Whether variables are named (`{{first_name}}`) rather than positional (`{{1}}`).
fn named_parameters(format: Option<&str>) -> Result<bool, Error> {
    match format {
        None | Some("POSITIONAL") => Ok(false),
        Some("NAMED") => Ok(true),
        Some(_) => Err(Error::invalid(
            "parameter_format",
            "must be POSITIONAL (variables {{1}}, {{2}} …) or NAMED ({{first_name}} …)",
        )),
    }
}

fn check_components(components: &[Value], category: &str, named: bool) -> Result<(), Error> {
    let mut seen: Vec<String> = Vec::new();
    let mut expires = false;
    for (i, component) in components.iter().enumerate() {
        let at = format!("components[{i}]");
        let Some(c) = component.as_object() else {
            return Err(Error::invalid(&at, "each component is an object"));
        };
        let kind = text_of(c, "type").map(str::to_ascii_uppercase);
        let kind = match kind.as_deref() {
            Some(
                k @ ("HEADER" | "BODY" | "FOOTER" | "BUTTONS" | "CAROUSEL" | "LIMITED_TIME_OFFER"),
            ) => k.to_string(),
            _ => {
                return Err(Error::invalid(
                    &format!("{at}.type"),
                    "must be HEADER, BODY, FOOTER, BUTTONS, CAROUSEL or LIMITED_TIME_OFFER",
                ))
            }
        };
        if seen.contains(&kind) {
            return Err(Error::invalid(
                &format!("{at}.type"),
                format!("a template has at most one {kind} component"),
            ));
        }
        match kind.as_str() {
            "HEADER" => check_header(c, &at, named)?,
            "BODY" => check_body(c, &at, category, named, BODY_MAX)?,
            "FOOTER" => check_footer(c, &at)?,
            "BUTTONS" => check_buttons(c, &at)?,
            "CAROUSEL" => check_carousel(c, &at, named)?,
            _ => expires = check_offer(c, &at)?,
        }
        seen.push(kind);
    }
    if !seen.iter().any(|k| k == "BODY") {
        return Err(Error::invalid(
            "components",
            "a template needs a BODY component",
        ));
    }
    if seen.iter().any(|k| k == "CAROUSEL") {
        check_carousel_template(&seen, category)?;
    }
    if seen.iter().any(|k| k == "LIMITED_TIME_OFFER") {
        check_offer_template(components, &seen, category, expires)?;
    }
    Ok(())
}

/// Meta's media card carousel template: a MARKETING template of a message
/// body and the cards, nothing else at the top.
fn check_carousel_template(seen: &[String], category: &str) -> Result<(), Error> {
    if category != "MARKETING" {
        return Err(Error::invalid(
            "category",
            "a carousel template is MARKETING",
        ));
    }
    match seen
        .iter()
        .position(|k| !matches!(k.as_str(), "BODY" | "CAROUSEL"))
    {
        Some(i) => Err(Error::invalid(
            &format!("components[{i}].type"),
            "a carousel template has only a BODY and the CAROUSEL; headers and buttons go on the cards",
        )),
        None => Ok(()),
    }
}

/// Meta's limited-time offer template: MARKETING, no footer, an IMAGE or
/// VIDEO header if any, a body of at most 600 characters, and a COPY_CODE
/// button when the offer shows its expiration.
fn check_offer_template(
    components: &[Value],
    seen: &[String],
    category: &str,
    expires: bool,
) -> Result<(), Error> {
    if category != "MARKETING" {
        return Err(Error::invalid(
            "category",
            "a limited-time offer template is MARKETING",
        ));
    }
    let at = |kind: &str| seen.iter().position(|k| k == kind);
    if let Some(i) = at("FOOTER") {
        return Err(Error::invalid(
            &format!("components[{i}].type"),
            "a limited-time offer template has no FOOTER",
        ));
    }
    if let Some(i) = at("HEADER") {
        let format = components[i]
            .get("format")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase);
        if !format.is_some_and(|f| CARD_HEADER_FORMATS.contains(&f.as_str())) {
            return Err(Error::invalid(
                &format!("components[{i}].format"),
                "a limited-time offer's header is IMAGE or VIDEO",
            ));
        }
    }
    if let Some(i) = at("BODY") {
        let long = components[i]
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| t.chars().count() > OFFER_BODY_MAX);
        if long {
            return Err(Error::invalid(
                &format!("components[{i}].text"),
                format!("a limited-time offer's body has at most {OFFER_BODY_MAX} characters"),
            ));
        }
    }
    if expires {
        let buttons = at("BUTTONS");
        let copy_code = buttons
            .and_then(|i| components[i].get("buttons"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|b| {
                b.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("COPY_CODE"))
            });
        if !copy_code {
            let field = buttons.map_or("components".to_string(), |i| {
                format!("components[{i}].buttons")
            });
            return Err(Error::invalid(
                &field,
                "an offer with has_expiration needs a COPY_CODE button with its code's sample",
            ));
        }
    }
    Ok(())
}

/// The LIMITED_TIME_OFFER component: `limited_time_offer.text` (at most 16
/// characters) and `has_expiration`, answered.
fn check_offer(c: &Map<String, Value>, at: &str) -> Result<bool, Error> {
    let field = format!("{at}.limited_time_offer");
    let Some(offer) = c.get("limited_time_offer").and_then(Value::as_object) else {
        return Err(Error::invalid(
            &field,
            "required: {\"text\": …, \"has_expiration\": true|false}",
        ));
    };
    required_text(offer, &field, "text", OFFER_TEXT_MAX)?;
    match offer.get("has_expiration") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::invalid(
            &format!("{field}.has_expiration"),
            "true or false",
        )),
    }
}

/// What every card of a carousel must share: Meta requires the same
/// components on each card.
#[derive(Debug, Default, PartialEq)]
struct CardShape {
    header: String,
    body: bool,
    buttons: Vec<String>,
}

impl CardShape {
    fn describe(&self) -> String {
        let mut parts = vec![format!("a {} HEADER", self.header)];
        if self.body {
            parts.push("a BODY".to_string());
        }
        if !self.buttons.is_empty() {
            parts.push(format!("buttons {}", self.buttons.join(", ")));
        }
        parts.join(", ")
    }
}

/// The CAROUSEL component: 2 to 10 cards, all alike.
fn check_carousel(c: &Map<String, Value>, at: &str, named: bool) -> Result<(), Error> {
    let field = format!("{at}.cards");
    let cards = match c.get("cards").and_then(Value::as_array) {
        Some(cards) if (CARDS_MIN..=CARDS_MAX).contains(&cards.len()) => cards,
        _ => {
            return Err(Error::invalid(
                &field,
                format!("{CARDS_MIN} to {CARDS_MAX} cards"),
            ))
        }
    };
    let mut first: Option<CardShape> = None;
    for (k, card) in cards.iter().enumerate() {
        let at = format!("{field}[{k}]");
        let shape = check_card(card, &at, named)?;
        match &first {
            None => first = Some(shape),
            Some(f) if *f != shape => {
                return Err(Error::invalid(
                    &format!("{at}.components"),
                    format!(
                        "every card has the same components as the first: {}",
                        f.describe()
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_card(card: &Value, at: &str, named: bool) -> Result<CardShape, Error> {
    let field = format!("{at}.components");
    let Some(components) = card.get("components").and_then(Value::as_array) else {
        return Err(Error::invalid(
            &field,
            "a card's components: an IMAGE or VIDEO HEADER, optionally a BODY and BUTTONS",
        ));
    };
    let mut shape = CardShape::default();
    let mut seen: Vec<String> = Vec::new();
    for (i, component) in components.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Some(c) = component.as_object() else {
            return Err(Error::invalid(&at, "each component is an object"));
        };
        let kind = text_of(c, "type").map(str::to_ascii_uppercase);
        let kind = match kind.as_deref() {
            Some(k @ ("HEADER" | "BODY" | "BUTTONS")) => k.to_string(),
            _ => {
                return Err(Error::invalid(
                    &format!("{at}.type"),
                    "a card's component is HEADER, BODY or BUTTONS",
                ))
            }
        };
        if seen.contains(&kind) {
            return Err(Error::invalid(
                &format!("{at}.type"),
                format!("a card has at most one {kind} component"),
            ));
        }
        match kind.as_str() {
            "HEADER" => {
                let format = text_of(c, "format").map(str::to_ascii_uppercase);
                match format {
                    Some(f) if CARD_HEADER_FORMATS.contains(&f.as_str()) => {
                        check_header(c, &at, named)?;
                        shape.header = f;
                    }
                    _ => {
                        return Err(Error::invalid(
                            &format!("{at}.format"),
                            "a card's header is IMAGE or VIDEO",
                        ))
                    }
                }
            }
            "BODY" => {
                check_body(c, &at, "MARKETING", named, CARD_BODY_MAX)?;
                shape.body = true;
            }
            _ => shape.buttons = check_card_buttons(c, &at)?,
        }
        seen.push(kind);
    }
    if shape.header.is_empty() {
        return Err(Error::invalid(
            &field,
            "a card needs an IMAGE or VIDEO HEADER",
        ));
    }
    Ok(shape)
}

/// A card's buttons: 1 or 2, QUICK_REPLY, URL or PHONE_NUMBER; their types in order.
fn check_card_buttons(c: &Map<String, Value>, at: &str) -> Result<Vec<String>, Error> {
    let field = format!("{at}.buttons");
    let buttons = match c.get("buttons").and_then(Value::as_array) {
        Some(b) if !b.is_empty() && b.len() <= CARD_BUTTONS_MAX => b,
        _ => {
            return Err(Error::invalid(
                &field,
                format!("a card has 1 to {CARD_BUTTONS_MAX} buttons"),
            ))
        }
    };
    let allowed = format!("a card's button is {}", CARD_BUTTON_TYPES.join(", "));
    button_kinds(buttons, &field, CARD_BUTTON_TYPES, &allowed)
}

/// Each button checked, and its type (one of `types`, upper case) in order.
fn button_kinds(
    buttons: &[Value],
    field: &str,
    types: &[&str],
    allowed: &str,
) -> Result<Vec<String>, Error> {
    let mut kinds = Vec::new();
    for (j, button) in buttons.iter().enumerate() {
        let at = format!("{field}[{j}]");
        let Some(b) = button.as_object() else {
            return Err(Error::invalid(&at, "each button is an object"));
        };
        let kind = match text_of(b, "type").map(str::to_ascii_uppercase) {
            Some(k) if types.contains(&k.as_str()) => k,
            _ => return Err(Error::invalid(&format!("{at}.type"), allowed)),
        };
        check_button(b, &at, &kind)?;
        kinds.push(kind);
    }
    Ok(kinds)
}

fn text_of<'a>(c: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    c.get(key).and_then(Value::as_str)
}

/// `key` of the component: present, non-empty and at most `max` characters.
fn required_text<'a>(
    c: &'a Map<String, Value>,
    at: &str,
    key: &str,
    max: usize,
) -> Result<&'a str, Error> {
    let field = format!("{at}.{key}");
    match text_of(c, key) {
        Some(t) if !t.trim().is_empty() => {
            if t.chars().count() > max {
                Err(Error::invalid(
                    &field,
                    format!("Meta allows at most {max} characters"),
                ))
            } else {
                Ok(t)
            }
        }
        _ => Err(Error::invalid(&field, "required")),
    }
}

fn check_header(c: &Map<String, Value>, at: &str, named: bool) -> Result<(), Error> {
    let format = text_of(c, "format").map(str::to_ascii_uppercase);
    match format.as_deref() {
        Some("TEXT") => {
            let text = required_text(c, at, "text", HEADER_MAX)?;
            let vars = variables(text);
            if vars.len() > 1 {
                return Err(Error::invalid(
                    &format!("{at}.text"),
                    "a text header has at most one variable",
                ));
            }
            let key = if named {
                "header_text_named_params"
            } else {
                "header_text"
            };
            check_examples(c, at, &vars, named, key, |e| e.as_array().cloned())
        }
        Some(f) if MEDIA_FORMATS.contains(&f) => {
            let handle = c
                .get("example")
                .and_then(|e| e.get("header_handle"))
                .and_then(Value::as_array)
                .and_then(|h| h.first())
                .and_then(Value::as_str);
            match handle {
                Some(h) if !h.is_empty() => Ok(()),
                _ => Err(Error::invalid(
                    &format!("{at}.example.header_handle"),
                    "a media header needs a sample: the handle of a file uploaded with Meta's Resumable Upload API",
                )),
            }
        }
        Some("LOCATION") => Ok(()),
        _ => Err(Error::invalid(
            &format!("{at}.format"),
            "must be TEXT, IMAGE, VIDEO, GIF, DOCUMENT or LOCATION",
        )),
    }
}

fn check_body(
    c: &Map<String, Value>,
    at: &str,
    category: &str,
    named: bool,
    max: usize,
) -> Result<(), Error> {
    // Meta writes an authentication template's body text itself.
    if category == "AUTHENTICATION" && !c.contains_key("text") {
        return Ok(());
    }
    let text = required_text(c, at, "text", max)?;
    let vars = variables(text);
    let key = if named {
        "body_text_named_params"
    } else {
        "body_text"
    };
    // Positional body samples are one row of values: `[["Jana", "42"]]`.
    check_examples(c, at, &vars, named, key, |e| {
        e.as_array()?.first()?.as_array().cloned()
    })
}

/// Every variable has a sample value, as Meta requires for review; positional
/// variables are `{{1}}` … `{{n}}`, each new one the next number.
fn check_examples(
    c: &Map<String, Value>,
    at: &str,
    vars: &[&str],
    named: bool,
    key: &str,
    positional_row: impl Fn(&Value) -> Option<Vec<Value>>,
) -> Result<(), Error> {
    let text_field = format!("{at}.text");
    let example_field = format!("{at}.example.{key}");
    let samples = c.get("example").and_then(|e| e.get(key));
    if named {
        let mut given: Vec<&str> = Vec::new();
        for sample in samples.and_then(Value::as_array).into_iter().flatten() {
            let name = sample.get("param_name").and_then(Value::as_str);
            let value = sample.get("example").and_then(Value::as_str);
            if let (Some(n), Some(v)) = (name, value) {
                if !v.is_empty() {
                    given.push(n);
                }
            }
        }
        for var in vars {
            let ok = !var.is_empty()
                && var
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(Error::invalid(
                    &text_field,
                    format!("{{{{{var}}}}}: a named variable is lowercase letters, digits and underscores"),
                ));
            }
            if !given.contains(var) {
                return Err(Error::invalid(
                    &example_field,
                    format!("needs a {{\"param_name\": \"{var}\", \"example\": …}} sample"),
                ));
            }
        }
        return Ok(());
    }
    let mut next = 1;
    for var in vars {
        match var.parse::<usize>() {
            Ok(n) if n == next => next += 1,
            Ok(n) if n >= 1 && n < next => {}
            _ => {
                return Err(Error::invalid(
                    &text_field,
                    format!("{{{{{var}}}}}: variables are numbered {{{{1}}}}, {{{{2}}}} … in the order they first appear (or set parameter_format NAMED)"),
                ))
            }
        }
    }
    let count = next - 1;
    if count == 0 {
        return Ok(());
    }
    let row = samples.and_then(positional_row).unwrap_or_default();
    let filled = row
        .iter()
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        .count();
    if row.len() != count || filled != count {
        return Err(Error::invalid(
            &example_field,
            format!("needs exactly {count} sample value(s), one per variable"),
        ));
    }
    Ok(())
}

fn check_footer(c: &Map<String, Value>, at: &str) -> Result<(), Error> {
    let text = required_text(c, at, "text", FOOTER_MAX)?;
    if !variables(text).is_empty() {
        return Err(Error::invalid(
            &format!("{at}.text"),
            "a footer has no variables",
        ));
    }
    Ok(())
}

fn check_buttons(c: &Map<String, Value>, at: &str) -> Result<(), Error> {
    let field = format!("{at}.buttons");
    let buttons = match c.get("buttons").and_then(Value::as_array) {
        Some(b) if !b.is_empty() && b.len() <= BUTTONS_MAX => b,
        _ => {
            return Err(Error::invalid(
                &field,
                format!("1 to {BUTTONS_MAX} buttons"),
            ))
        }
    };
    let allowed = format!("must be one of {}", BUTTON_TYPES.join(", "));
    let kinds = button_kinds(buttons, &field, BUTTON_TYPES, &allowed)?;
    for (kind, max) in [("URL", 2), ("PHONE_NUMBER", 1), ("COPY_CODE", 1)] {
        if kinds.iter().filter(|k| *k == kind).count() > max {
            return Err(Error::invalid(
                &field,
                format!("at most {max} {kind} button(s)"),
            ));
        }
    }
    Ok(())
}

fn check_button(b: &Map<String, Value>, at: &str, kind: &str) -> Result<(), Error> {
    // Meta labels copy-code and one-time-password buttons itself.
    if !matches!(kind, "COPY_CODE" | "OTP") {
        required_text(b, at, "text", BUTTON_TEXT_MAX)?;
    }
    match kind {
        "URL" => {
            let url = required_text(b, at, "url", URL_MAX)?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(Error::invalid(&format!("{at}.url"), "an http(s) URL"));
            }
            let vars = variables(url);
            if vars.is_empty() {
                return Ok(());
            }
            if vars != ["1"] || !url.ends_with("{{1}}") {
                return Err(Error::invalid(
                    &format!("{at}.url"),
                    "a URL has at most one variable, {{1}}, at its end",
                ));
            }
            let sample = b
                .get("example")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
                .and_then(Value::as_str);
            if sample.is_none_or(str::is_empty) {
                return Err(Error::invalid(
                    &format!("{at}.example"),
                    "a URL with {{1}} needs a sample: [\"https://…/full-url\"]",
                ));
            }
            Ok(())
        }
        "PHONE_NUMBER" => required_text(b, at, "phone_number", PHONE_MAX).map(|_| ()),
        "COPY_CODE" => required_text(b, at, "example", COPY_CODE_MAX).map(|_| ()),
        "FLOW" => {
            if ["flow_id", "flow_name", "flow_json"]
                .iter()
                .any(|k| b.get(*k).is_some_and(|v| !v.is_null()))
            {
                Ok(())
            } else {
                Err(Error::invalid(
                    &format!("{at}.flow_id"),
                    "a FLOW button names its Flow: flow_id, flow_name or flow_json",
                ))
            }
        }
        "OTP" => match text_of(b, "otp_type") {
            Some("COPY_CODE" | "ONE_TAP" | "ZERO_TAP") => Ok(()),
            _ => Err(Error::invalid(
                &format!("{at}.otp_type"),
                "must be COPY_CODE, ONE_TAP or ZERO_TAP",
            )),
        },
        _ => Ok(()),
    }
}

/// The `{{…}}` variables of a text, in order, as written inside the braces.
fn variables(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn full() -> Value {
        json!({
            "name": "order_shipped_2",
            "language": "en_US",
            "category": "UTILITY",
            "allow_category_change": true,
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-42"]}},
                {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way. Thanks, {{1}}!",
                 "example": {"body_text": [["Jana", "A-42"]]}},
                {"type": "FOOTER", "text": "Reply STOP to opt out"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop updates"},
                    {"type": "URL", "text": "Track", "url": "https://shop.example.com/track/{{1}}", "example": ["https://shop.example.com/track/A-42"]},
                    {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+420777123456"},
                    {"type": "COPY_CODE", "example": "SAVE10"},
                    {"type": "FLOW", "text": "Rate", "flow_id": "123", "flow_action": "navigate", "navigate_screen": "RATE"}
                ]}
            ]
        })
    }

    fn check(v: Value) -> Result<Value, Error> {
        serde_json::from_value::<NewTemplate>(v)
            .map_err(|e| Error::invalid("body", e.to_string()))?
            .meta_body()
    }

    /// The field a refusal names.
    fn refused(v: Value) -> String {
        match check(v) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn with(path: &str, value: Value) -> Value {
        let mut v = full();
        *v.pointer_mut(path).unwrap() = value;
        v
    }

    #[test]
    fn a_full_template_goes_to_meta_as_given() {
        assert_eq!(check(full()).unwrap(), full());
        let media = json!({"name": "promo", "language": "de", "category": "MARKETING", "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
            {"type": "BODY", "text": "Neu im Laden"}]});
        assert!(check(media).is_ok());
        let location = json!({"name": "visit", "language": "en", "category": "UTILITY", "components": [
            {"type": "HEADER", "format": "LOCATION"}, {"type": "BODY", "text": "Come by"}]});
        assert!(check(location).is_ok());
        let named = json!({"name": "welcome", "language": "en", "category": "MARKETING", "parameter_format": "NAMED",
            "components": [{"type": "BODY", "text": "Hi {{first_name}}",
                "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Jana"}]}}]});
        assert!(check(named).is_ok());
        let otp = json!({"name": "login_code", "language": "en", "category": "AUTHENTICATION", "components": [
            {"type": "BODY", "add_security_recommendation": true},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]}]});
        assert!(check(otp).is_ok());
    }

    #[test]
    fn name_language_and_category_are_metas() {
        assert_eq!(refused(with("/name", json!("Order Shipped"))), "name");
        assert_eq!(refused(with("/name", json!("a".repeat(513)))), "name");
        assert!(check(with("/name", json!("a".repeat(512)))).is_ok());
        assert_eq!(refused(with("/language", json!("en-US!"))), "language");
        assert_eq!(
            refused(with("/category", json!("TRANSACTIONAL"))),
            "category"
        );
        let mut unknown = full();
        unknown["colour"] = json!("red");
        assert_eq!(refused(unknown), "body");
    }

    #[test]
    fn the_body_is_required_and_at_most_1024_characters() {
        let mut no_body = full();
        no_body["components"].as_array_mut().unwrap().remove(1);
        assert_eq!(refused(no_body), "components");
        assert_eq!(
            refused(with("/components/1/text", json!("x".repeat(1025)))),
            "components[1].text"
        );
        assert_eq!(
            refused(with("/components/1/text", json!(" "))),
            "components[1].text"
        );
        assert_eq!(
            refused(with("/components/3/type", json!("BODY"))),
            "components[3].type"
        );
        assert_eq!(
            refused(with("/components/3/type", json!("CATALOG"))),
            "components[3].type"
        );
    }

    #[test]
    fn variables_are_numbered_in_order_each_with_a_sample() {
        assert_eq!(
            refused(with("/components/1/text", json!("Hi {{2}} and {{1}}"))),
            "components[1].text"
        );
        assert_eq!(
            refused(with("/components/1/text", json!("Hi {{name}}"))),
            "components[1].text"
        );
        assert_eq!(
            refused(with(
                "/components/1/example",
                json!({"body_text": [["Jana"]]})
            )),
            "components[1].example.body_text"
        );
        assert_eq!(
            refused(with("/components/1/example", json!({}))),
            "components[1].example.body_text"
        );
        assert_eq!(
            refused(with(
                "/components/1/example/body_text",
                json!([["Jana", ""]])
            )),
            "components[1].example.body_text"
        );
        let mut named = full();
        named["parameter_format"] = json!("NAMED");
        assert_eq!(
            refused(named),
            "components[0].example.header_text_named_params"
        );
    }

    #[test]
    fn header_and_footer_are_at_most_60_characters() {
        assert_eq!(
            refused(with("/components/0/text", json!("x".repeat(61)))),
            "components[0].text"
        );
        assert_eq!(
            refused(with("/components/0/text", json!("{{1}} {{2}}"))),
            "components[0].text"
        );
        assert_eq!(
            refused(with("/components/0/example", json!({"header_text": []}))),
            "components[0].example.header_text"
        );
        assert_eq!(
            refused(with(
                "/components/0",
                json!({"type": "HEADER", "format": "VIDEO"})
            )),
            "components[0].example.header_handle"
        );
        assert_eq!(
            refused(with("/components/0/format", json!("AUDIO"))),
            "components[0].format"
        );
        assert_eq!(
            refused(with("/components/2/text", json!("x".repeat(61)))),
            "components[2].text"
        );
        assert_eq!(
            refused(with("/components/2/text", json!("Hi {{1}}"))),
            "components[2].text"
        );
    }

    #[test]
    fn buttons_follow_metas_limits() {
        let eleven: Vec<Value> = (0..11)
            .map(|i| json!({"type": "QUICK_REPLY", "text": format!("Option {i}")}))
            .collect();
        assert_eq!(
            refused(with("/components/3/buttons", json!(eleven))),
            "components[3].buttons"
        );
        assert_eq!(
            refused(with("/components/3/buttons", json!([]))),
            "components[3].buttons"
        );
        assert_eq!(
            refused(with("/components/3/buttons/0/text", json!("x".repeat(26)))),
            "components[3].buttons[0].text"
        );
        assert_eq!(
            refused(with("/components/3/buttons/0/type", json!("CALL_ME"))),
            "components[3].buttons[0].type"
        );
        assert_eq!(
            refused(with("/components/3/buttons/1/url", json!("ftp://x/{{1}}"))),
            "components[3].buttons[1].url"
        );
        assert_eq!(
            refused(with(
                "/components/3/buttons/1/url",
                json!("https://x/{{1}}/{{2}}")
            )),
            "components[3].buttons[1].url"
        );
        assert_eq!(
            refused(with("/components/3/buttons/1/example", json!([]))),
            "components[3].buttons[1].example"
        );
        assert_eq!(
            refused(with(
                "/components/3/buttons/2/phone_number",
                json!("1".repeat(21))
            )),
            "components[3].buttons[2].phone_number"
        );
        assert_eq!(
            refused(with(
                "/components/3/buttons/3/example",
                json!("x".repeat(16))
            )),
            "components[3].buttons[3].example"
        );
        assert_eq!(
            refused(with("/components/3/buttons/4/flow_id", Value::Null)),
            "components[3].buttons[4].flow_id"
        );
        let two_phones = with(
            "/components/3/buttons/0",
            json!({"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+1555"}),
        );
        assert_eq!(refused(two_phones), "components[3].buttons");
    }

    fn card(n: u32) -> Value {
        json!({"components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [format!("4::card{n}")]}},
            {"type": "BODY", "text": "Plant {{1}} for {{2}}", "example": {"body_text": [[format!("no. {n}"), "9 EUR"]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Send more like this"},
                {"type": "URL", "text": "Buy", "url": "https://shop.example.com/p/{{1}}", "example": ["https://shop.example.com/p/12"]}
            ]}
        ]})
    }

    /// Meta's media card carousel template, two cards.
    fn carousel() -> Value {
        json!({
            "name": "summer_plants",
            "language": "en_US",
            "category": "MARKETING",
            "components": [
                {"type": "BODY", "text": "Hi {{1}}, these suit your balcony:", "example": {"body_text": [["Jana"]]}},
                {"type": "CAROUSEL", "cards": [card(1), card(2)]}
            ]
        })
    }

    fn carousel_with(path: &str, value: Value) -> Value {
        let mut v = carousel();
        *v.pointer_mut(path).unwrap() = value;
        v
    }

    /// Meta's limited-time offer template with an expiring code.
    fn offer() -> Value {
        json!({
            "name": "caribe_offer",
            "language": "en_US",
            "category": "MARKETING",
            "components": [
                {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::offer"]}},
                {"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Expiring offer!", "has_expiration": true}},
                {"type": "BODY", "text": "Good news, {{1}}! Use code {{2}} for 25% off.", "example": {"body_text": [["Pablo", "CARIBE25"]]}},
                {"type": "BUTTONS", "buttons": [
                    {"type": "COPY_CODE", "example": "CARIBE25"},
                    {"type": "URL", "text": "Book now!", "url": "https://awesomedestinations.com/offers?code={{1}}",
                     "example": ["https://awesomedestinations.com/offers?ref=n3mtql"]}
                ]}
            ]
        })
    }

    fn offer_with(path: &str, value: Value) -> Value {
        let mut v = offer();
        *v.pointer_mut(path).unwrap() = value;
        v
    }

    #[test]
    fn a_media_card_carousel_goes_to_meta_as_given() {
        assert_eq!(check(carousel()).unwrap(), carousel());
        let ten: Vec<Value> = (0..10).map(card).collect();
        assert!(check(carousel_with("/components/1/cards", json!(ten))).is_ok());
        // Meta: a card's body and buttons are optional, as long as every card agrees.
        let bare = json!({"components": [{"type": "HEADER", "format": "VIDEO", "example": {"header_handle": ["4::v"]}}]});
        assert!(check(carousel_with("/components/1/cards", json!([bare, bare]))).is_ok());
        let mut phone = carousel();
        for k in 0..2 {
            phone["components"][1]["cards"][k]["components"][2]["buttons"] =
                json!([{"type": "phone_number", "text": "Call", "phone_number": "+420777123456"}]);
        }
        assert!(check(phone).is_ok());
    }

    #[test]
    fn a_carousel_has_2_to_10_cards_and_is_marketing_with_only_a_body_beside() {
        assert_eq!(
            refused(carousel_with("/components/1/cards", json!([card(1)]))),
            "components[1].cards"
        );
        let eleven: Vec<Value> = (0..11).map(card).collect();
        assert_eq!(
            refused(carousel_with("/components/1/cards", json!(eleven))),
            "components[1].cards"
        );
        assert_eq!(
            refused(carousel_with("/components/1/cards", Value::Null)),
            "components[1].cards"
        );
        assert_eq!(
            refused(carousel_with("/category", json!("UTILITY"))),
            "category"
        );
        let mut footer = carousel();
        footer["components"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "FOOTER", "text": "Reply STOP"}));
        assert_eq!(refused(footer), "components[2].type");
        let mut no_body = carousel();
        no_body["components"].as_array_mut().unwrap().remove(0);
        assert_eq!(refused(no_body), "components");
    }

    #[test]
    fn a_card_is_a_media_header_a_short_body_and_one_or_two_buttons() {
        let c = "/components/1/cards/1/components";
        let at = "components[1].cards[1].components";
        assert_eq!(
            refused(carousel_with(&format!("{c}/0/format"), json!("DOCUMENT"))),
            format!("{at}[0].format")
        );
        assert_eq!(
            refused(carousel_with(&format!("{c}/0/example"), json!({}))),
            format!("{at}[0].example.header_handle")
        );
        assert_eq!(
            refused(carousel_with(
                &format!("{c}/1/text"),
                json!("x".repeat(161))
            )),
            format!("{at}[1].text")
        );
        assert_eq!(
            refused(carousel_with(
                &format!("{c}/1/example"),
                json!({"body_text": [["no. 2"]]})
            )),
            format!("{at}[1].example.body_text")
        );
        let three = json!([
            {"type": "QUICK_REPLY", "text": "A"}, {"type": "QUICK_REPLY", "text": "B"}, {"type": "QUICK_REPLY", "text": "C"}
        ]);
        assert_eq!(
            refused(carousel_with(&format!("{c}/2/buttons"), three)),
            format!("{at}[2].buttons")
        );
        assert_eq!(
            refused(carousel_with(&format!("{c}/2/buttons"), json!([]))),
            format!("{at}[2].buttons")
        );
        assert_eq!(
            refused(carousel_with(
                &format!("{c}/2/buttons/0"),
                json!({"type": "COPY_CODE", "example": "SAVE10"})
            )),
            format!("{at}[2].buttons[0].type")
        );
        assert_eq!(
            refused(carousel_with(
                &format!("{c}/2/buttons/1/url"),
                json!("shop")
            )),
            format!("{at}[2].buttons[1].url")
        );
        assert_eq!(
            refused(carousel_with(&format!("{c}/2/type"), json!("FOOTER"))),
            format!("{at}[2].type")
        );
        assert_eq!(
            refused(carousel_with(&format!("{c}/2/type"), json!("BODY"))),
            format!("{at}[2].type")
        );
        let mut headless = carousel();
        headless["components"][1]["cards"][1]["components"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        assert_eq!(refused(headless), at);
        assert_eq!(
            refused(carousel_with("/components/1/cards/1", json!({}))),
            at
        );
    }

    #[test]
    fn every_card_has_the_same_components() {
        let at = "components[1].cards[1].components";
        assert_eq!(
            refused(carousel_with(
                "/components/1/cards/1/components/0/format",
                json!("VIDEO")
            )),
            at
        );
        let mut no_body = carousel();
        no_body["components"][1]["cards"][1]["components"]
            .as_array_mut()
            .unwrap()
            .remove(1);
        assert_eq!(refused(no_body), at);
        assert_eq!(
            refused(carousel_with(
                "/components/1/cards/1/components/2/buttons/1",
                json!({"type": "QUICK_REPLY", "text": "Later"})
            )),
            at
        );
        let mut one_button = carousel();
        one_button["components"][1]["cards"][1]["components"][2]["buttons"]
            .as_array_mut()
            .unwrap()
            .pop();
        assert_eq!(refused(one_button), at);
    }

    #[test]
    fn a_limited_time_offer_goes_to_meta_as_given() {
        assert_eq!(check(offer()).unwrap(), offer());
        // Without an expiration the copy-code button is Meta's option.
        let mut open = offer_with(
            "/components/1/limited_time_offer",
            json!({"text": "Summer sale"}),
        );
        open["components"][3]["buttons"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        assert!(check(open).is_ok());
        let mut headless = offer();
        headless["components"].as_array_mut().unwrap().remove(0);
        assert!(check(headless).is_ok());
    }

    #[test]
    fn a_limited_time_offer_follows_metas_rules() {
        assert_eq!(
            refused(offer_with("/category", json!("UTILITY"))),
            "category"
        );
        assert_eq!(
            refused(offer_with(
                "/components/1/limited_time_offer/text",
                json!("x".repeat(17))
            )),
            "components[1].limited_time_offer.text"
        );
        assert!(check(offer_with(
            "/components/1/limited_time_offer/text",
            json!("x".repeat(16))
        ))
        .is_ok());
        assert_eq!(
            refused(offer_with("/components/1/limited_time_offer", Value::Null)),
            "components[1].limited_time_offer"
        );
        assert_eq!(
            refused(offer_with(
                "/components/1/limited_time_offer/has_expiration",
                json!("yes")
            )),
            "components[1].limited_time_offer.has_expiration"
        );
        let mut footer = offer();
        footer["components"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "FOOTER", "text": "Terms apply"}));
        assert_eq!(refused(footer), "components[4].type");
        assert_eq!(
            refused(offer_with(
                "/components/0",
                json!({"type": "HEADER", "format": "TEXT", "text": "Offer"})
            )),
            "components[0].format"
        );
        assert_eq!(
            refused(offer_with("/components/2/text", json!("x".repeat(601)))),
            "components[2].text"
        );
        let mut no_code = offer();
        no_code["components"][3]["buttons"]
            .as_array_mut()
            .unwrap()
            .remove(0);
        assert_eq!(refused(no_code), "components[3].buttons");
        let mut no_buttons = offer();
        no_buttons["components"].as_array_mut().unwrap().remove(3);
        assert_eq!(refused(no_buttons), "components");
        assert_eq!(
            refused(offer_with(
                "/components/3/buttons/0/example",
                json!("x".repeat(16))
            )),
            "components[3].buttons[0].example"
        );
    }

    #[test]
    fn an_edit_changes_something_and_keeps_the_rules() {
        let edit = |v: Value, current: &str| {
            serde_json::from_value::<TemplateEdit>(v)
                .unwrap()
                .meta_body(current)
        };
        assert!(
            matches!(edit(json!({}), "UTILITY"), Err(Error::Invalid { field, .. }) if field == "body")
        );
        assert!(edit(json!({"category": "MARKETING"}), "UTILITY").is_ok());
        assert!(
            matches!(edit(json!({"category": "PROMO"}), "UTILITY"), Err(Error::Invalid { field, .. }) if field == "category")
        );
        let no_text =
            json!({"components": [{"type": "BODY", "add_security_recommendation": true}]});
        assert!(edit(no_text.clone(), "AUTHENTICATION").is_ok());
        assert!(edit(no_text, "UTILITY").is_err());
    }
}
