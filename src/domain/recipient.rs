//! Who a message goes to: a phone number written any common way, or a
//! business-scoped user ID (BSUID) for users who hide their number.

use crate::error::Error;

/// A recipient as Meta's send API takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// E.164 digits without the `+` (Meta's `wa_id` form), e.g. `420777123456`.
    Phone(String),
    /// A BSUID or parent BSUID, e.g. `US.13491208655302741918`.
    UserId(String),
}

impl Recipient {
    /// The key wabridge files this person's inbound messages under (see `window`).
    pub fn key(&self) -> &str {
        match self {
            Recipient::Phone(digits) => digits,
            Recipient::UserId(id) => id,
        }
    }
}

/// Reads `+420 777 123 456`, `00420 777-123-456`, `+1 (555) 635-4389` or
/// `420777123456` into E.164 digits. Spaces, dashes, dots and brackets are
/// separators; anything else is refused with a message naming `field`.
pub fn normalize_phone(field: &str, raw: &str) -> Result<String, Error> {
    let trimmed = raw.trim();
    let rest = trimmed
        .strip_prefix('+')
        .or_else(|| trimmed.strip_prefix("00"))
        .unwrap_or(trimmed);
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => {
                return Err(Error::invalid(
                    field,
                    format!("{raw:?} is not a phone number: use E.164, e.g. +420777123456 (a BSUID goes in `recipient`)"),
                ))
            }
        }
    }
    if digits.starts_with('0') || !(7..=15).contains(&digits.len()) {
        return Err(Error::invalid(
            field,
            format!("{raw:?} is not an E.164 phone number: country code and number, 7 to 15 digits, e.g. +420777123456"),
        ));
    }
    Ok(digits)
}

/// A BSUID is a two-letter country code, a dot, and an opaque id
/// (`US.13491208655302741918`; a parent BSUID has the same shape).
pub fn check_user_id(field: &str, raw: &str) -> Result<String, Error> {
    let id = raw.trim();
    let valid = id.len() <= 128
        && id.split_once('.').is_some_and(|(cc, rest)| {
            cc.len() == 2
                && cc.chars().all(|c| c.is_ascii_uppercase())
                && !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    if !valid {
        return Err(Error::invalid(
            field,
            format!("{raw:?} is not a business-scoped user ID: expected a country code, a dot and an id, e.g. US.13491208655302741918"),
        ));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_writings_of_a_number_normalise_to_e164_digits() {
        for raw in [
            "+420777123456",
            "+420 777 123 456",
            "00420 777 123 456",
            "420-777-123-456",
            " +420.777.123.456 ",
        ] {
            assert_eq!(normalize_phone("to", raw).unwrap(), "420777123456", "{raw}");
        }
        assert_eq!(
            normalize_phone("to", "+1 (555) 635-4389").unwrap(),
            "15556354389"
        );
    }

    #[test]
    fn what_is_not_a_number_is_refused_naming_the_field() {
        for raw in [
            "",
            "+",
            "abc",
            "+420 777 12x 456",
            "0777123456",
            "123",
            "+1234567890123456",
        ] {
            match normalize_phone("to", raw) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "to"),
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn bsuids_have_a_country_and_an_id() {
        assert_eq!(
            check_user_id("recipient", "US.13491208655302741918").unwrap(),
            "US.13491208655302741918"
        );
        for bad in [
            "",
            "13491208655302741918",
            "us.1",
            "USA.1",
            "US.",
            "US.12 3",
        ] {
            assert!(check_user_id("recipient", bad).is_err(), "{bad}");
        }
    }
}
