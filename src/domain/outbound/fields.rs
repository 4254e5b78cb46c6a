//! Reading the request's JSON: each refusal names the field by its path
//! (`interactive.action.buttons[1].reply.title`), as the API's errors do.

use serde_json::{Map, Value};

use super::limits;
use crate::error::Error;

pub(super) fn check_url(field: &str, raw: &str) -> Result<(), Error> {
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

pub(in crate::domain) fn object<'a>(
    field: &str,
    v: &'a Value,
) -> Result<&'a Map<String, Value>, Error> {
    v.as_object()
        .ok_or_else(|| Error::invalid(field, "must be an object"))
}

pub(super) fn array<'a>(
    c: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<&'a Vec<Value>, Error> {
    c.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid(&join(at, key), "is required: an array"))
}

pub(super) fn optional_str<'a>(
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

pub(super) fn optional_bool(c: &Map<String, Value>, at: &str, key: &str) -> Result<(), Error> {
    match c.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
        Some(_) => Err(Error::invalid(&join(at, key), "must be true or false")),
    }
}

/// A string field with Meta's length limit; `required` also refuses blank text.
pub(super) fn text<'a>(
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

pub(super) fn unique<'a>(seen: &mut Vec<&'a str>, id: &'a str, field: &str) -> Result<(), Error> {
    if seen.contains(&id) {
        return Err(Error::invalid(
            field,
            format!("{id:?} is used twice; ids must be unique"),
        ));
    }
    seen.push(id);
    Ok(())
}

pub(in crate::domain) fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}
