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
    /// A WhatsApp group the number created (`recipient_type: "group"`), by
    /// Meta's group id: its window opens when any participant writes in it.
    Group(String),
}

impl Recipient {
    /// The key wabridge files this person's inbound messages under (see `window`).
    pub fn key(&self) -> &str {
        match self {
            Recipient::Phone(digits) => digits,
            Recipient::UserId(id) | Recipient::Group(id) => id,
        }
    }

    /// Every key this person's inbound messages may be filed under: the key,
    /// and for a phone number the other writing of it that Meta's `wa_id` may use.
    pub fn lookup_keys(&self) -> Vec<String> {
        let mut keys = vec![self.key().to_string()];
        if let Recipient::Phone(digits) = self {
            keys.extend(national_variant(digits));
        }
        keys
    }
}

/// The same mobile number in the other form that is in use, where a country
/// has two: a sender's `wa_id` often differs from the number a flow sends to.
/// - Brazil: `55` + area code + `9` + 8 digits, and the same without the `9`
///   (older WhatsApp accounts keep the 8-digit form; mobiles start with 6–9).
/// - Mexico: `52` + 10 digits, and `521` + 10 digits (the old mobile prefix).
/// - Argentina: `54` + 10 digits, and `549` + 10 digits (the mobile `9`).
fn national_variant(digits: &str) -> Option<String> {
    let mobile_start = |c: u8| (b'6'..=b'9').contains(&c);
    if let Some(rest) = digits.strip_prefix("55") {
        let r = rest.as_bytes();
        return match r.len() {
            11 if r[2] == b'9' && mobile_start(r[3]) => {
                Some(format!("55{}{}", &rest[..2], &rest[3..]))
            }
            10 if mobile_start(r[2]) => Some(format!("55{}9{}", &rest[..2], &rest[2..])),
            _ => None,
        };
    }
    for (cc, mobile) in [("52", '1'), ("54", '9')] {
        if let Some(rest) = digits.strip_prefix(cc) {
            return match rest.len() {
                10 => Some(format!("{cc}{mobile}{rest}")),
                11 if rest.starts_with(mobile) => Some(format!("{cc}{}", &rest[1..])),
                _ => None,
            };
        }
    }
    None
}

/// One person, named by `to` (a phone number) or `recipient` (a BSUID) and
/// not both; `ask` is the question when neither is given.
pub fn person(to: Option<&str>, user: Option<&str>, ask: &str) -> Result<Recipient, Error> {
    match (to, user) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "to",
            "give either `to` (a phone number) or `recipient` (a business-scoped user ID), not both",
        )),
        (Some(to), None) => Ok(Recipient::Phone(normalize_phone("to", to)?)),
        (None, Some(id)) => Ok(Recipient::UserId(check_user_id("recipient", id)?)),
        (None, None) => Err(Error::invalid(
            "to",
            format!("{ask} Give `to` (a phone number in E.164, e.g. +420777123456) or `recipient` (a business-scoped user ID)"),
        )),
    }
}

/// A user named in one field either way: a BSUID when it reads as one,
/// otherwise a phone number (refused with the phone number's message).
pub fn user(field: &str, raw: &str) -> Result<Recipient, Error> {
    match check_user_id(field, raw) {
        Ok(id) => Ok(Recipient::UserId(id)),
        Err(_) => Ok(Recipient::Phone(normalize_phone(field, raw)?)),
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

    #[test]
    fn brazil_mexico_and_argentina_mobiles_have_two_writings() {
        let keys = |d: &str| Recipient::Phone(d.into()).lookup_keys();
        // São Paulo mobile, with and without the ninth digit.
        assert_eq!(keys("5511987654321"), ["5511987654321", "551187654321"]);
        assert_eq!(keys("551187654321"), ["551187654321", "5511987654321"]);
        // A Brazilian landline (starts with 2–5) has one writing.
        assert_eq!(keys("551133334444"), ["551133334444"]);
        assert_eq!(keys("5511933334444"), ["5511933334444"]);
        // Mexico City: 52 and 521.
        assert_eq!(keys("525512345678"), ["525512345678", "5215512345678"]);
        assert_eq!(keys("5215512345678"), ["5215512345678", "525512345678"]);
        // Buenos Aires: 54 and 549.
        assert_eq!(keys("541112345678"), ["541112345678", "5491112345678"]);
        assert_eq!(keys("5491112345678"), ["5491112345678", "541112345678"]);
        // Elsewhere, and BSUIDs: one key.
        assert_eq!(keys("420777123456"), ["420777123456"]);
        assert_eq!(keys("5255"), ["5255"]);
        assert_eq!(Recipient::UserId("BR.123".into()).lookup_keys(), ["BR.123"]);
    }
}
