//! The parts a status row is made of: varints, and texts in the shortest of
//! a few forms. A stored row is read back by these same rules for as long as
//! it is kept, so a form or a word, once released, never changes its tag.

/// A text's tag byte: its form.
const LITERAL: u8 = 0;
/// Decimal digits without a leading zero (ids, phone numbers, timestamps).
const DECIMAL: u8 = 1;
/// Lowercase hex digits, an even number of them (Meta's conversation ids).
const HEX: u8 = 2;
/// Letters, then decimal digits without a leading zero (BSUIDs: `US.1349…`).
const PREFIXED: u8 = 3;
/// Tags from here on stand for `WORDS[tag - FIRST_WORD]`.
pub(super) const FIRST_WORD: u8 = 16;

/// What Meta's statuses say over and over. Append only: a stored row names a
/// word by its place here.
pub(super) const WORDS: &[&str] = &[
    // Statuses, and Meta's answer to a send.
    "accepted",
    "sent",
    "delivered",
    "read",
    "failed",
    "deleted",
    "warning",
    "played",
    "held_for_quality_assessment",
    "paused",
    "unknown",
    // recipient_type.
    "individual",
    "group",
    // `conversation` and `pricing`.
    "id",
    "expiration_timestamp",
    "origin",
    "type",
    "billable",
    "pricing_model",
    "category",
    "PMP",
    "CBP",
    "marketing",
    "marketing_lite",
    "utility",
    "authentication",
    "authentication-international",
    "service",
    "referral_conversion",
    "regular",
    "free_customer_service",
    "free_entry_point",
    // `errors`.
    "code",
    "title",
    "message",
    "error_data",
    "details",
    "href",
    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
];

pub(super) fn put_varint(out: &mut Vec<u8>, mut n: u128) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// `s` as a number, if it is written as this form writes it back.
fn decimal(s: &str) -> Option<u128> {
    let canonical = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.len().is_multiple_of(2)
        && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(super) fn put_text(out: &mut Vec<u8>, s: &str) {
    if let Some(i) = WORDS.iter().position(|w| *w == s) {
        // WORDS is short enough (checked by a test) for every tag to fit.
        out.push(FIRST_WORD + i as u8);
    } else if let Some(n) = decimal(s) {
        out.push(DECIMAL);
        put_varint(out, n);
    } else if is_hex(s) {
        out.push(HEX);
        put_varint(out, (s.len() / 2) as u128);
        for pair in s.as_bytes().chunks(2) {
            out.push(nibble(pair[0]) << 4 | nibble(pair[1]));
        }
    } else if let Some((prefix, n)) = prefixed(s) {
        out.push(PREFIXED);
        put_literal(out, prefix);
        put_varint(out, n);
    } else {
        out.push(LITERAL);
        put_literal(out, s);
    }
}

/// `s` split into what precedes its trailing digits, and their value.
fn prefixed(s: &str) -> Option<(&str, u128)> {
    let split = s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, digits) = s.split_at(split);
    let n = decimal(digits)?;
    (!prefix.is_empty()).then_some((prefix, n))
}

fn put_literal(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u128);
    out.extend_from_slice(s.as_bytes());
}

fn nibble(hex: u8) -> u8 {
    match hex {
        b'0'..=b'9' => hex - b'0',
        _ => hex - b'a' + 10,
    }
}

pub(super) fn get_text(r: &mut Reader) -> Result<String, String> {
    match r.byte()? {
        LITERAL => get_literal(r),
        DECIMAL => Ok(r.varint()?.to_string()),
        HEX => {
            let n = r.length()?;
            let mut s = String::with_capacity(2 * n);
            for b in r.bytes(n)? {
                s.push_str(&format!("{b:02x}"));
            }
            Ok(s)
        }
        PREFIXED => {
            let prefix = get_literal(r)?;
            Ok(format!("{prefix}{}", r.varint()?))
        }
        tag => WORDS
            .get(usize::from(tag.wrapping_sub(FIRST_WORD)))
            .filter(|_| tag >= FIRST_WORD)
            .map(|w| w.to_string())
            .ok_or_else(|| format!("unknown text tag {tag}")),
    }
}

fn get_literal(r: &mut Reader) -> Result<String, String> {
    let n = r.length()?;
    String::from_utf8(r.bytes(n)?.to_vec()).map_err(|e| format!("a text that is not UTF-8: {e}"))
}

/// Reads a row front to back; every step fails on a row cut short.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    pub fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    pub fn byte(&mut self) -> Result<u8, String> {
        Ok(self.bytes(1)?[0])
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.left() {
            return Err(format!("cut short at byte {}", self.bytes.len()));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    pub fn varint(&mut self) -> Result<u128, String> {
        let mut n: u128 = 0;
        for shift in (0..128).step_by(7) {
            let b = self.byte()?;
            let part = u128::from(b & 0x7f);
            if shift == 126 && part > 0b11 {
                break;
            }
            n |= part << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a varint longer than 128 bits".into())
    }

    /// A length, which must fit in what is left.
    fn length(&mut self) -> Result<usize, String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "length out of range")?;
        if n > self.left() {
            return Err(format!("a length of {n} with {} bytes left", self.left()));
        }
        Ok(n)
    }

    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), String> {
        match self.left() {
            0 => Ok(()),
            n => Err(format!("{n} bytes after the last field")),
        }
    }
}
