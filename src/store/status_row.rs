//! How a row of the status history is stored: a compact binary layout, not
//! JSON. The history is the largest table (about 3.6 rows per message sent,
//! kept for the whole retention period, ~100 million rows at a million sends a
//! day), so a row leaves out what its key already says (the message id) and
//! what JSON repeats: field names, the digits of timestamps and ids (stored
//! as varints), the words Meta uses over and over (a status, a pricing
//! category: one byte each). Meta's own objects (`conversation`, `pricing`,
//! `errors`) keep their shape in a binary form of JSON. Decoding gives back
//! exactly the record that was encoded; schema 7 and earlier stored JSON,
//! which `reencode_json_rows` turns into this layout (the migration to 8).
//!
//! Layout 1: the byte `1`; a varint whose bits say which optional fields
//! follow; the status, WABA id and phone-number id (texts); when wabridge
//! received it (varint); then each optional field present, in the order
//! of its flag bit. A text is a tag byte and its payload (see `wire`); a JSON value
//! likewise (see `put_json`). Varints are LEB128.

use redb::{ReadableTable, WriteTransaction};
use serde_json::{Map, Number, Value};

use super::tables::{STATUSES, STATUSES_REENCODED};
use crate::domain::model::StatusRecord;
use crate::error::Error;

#[cfg(test)]
mod tests;
mod wire;

use wire::{get_text, put_text, put_varint, Reader};

const LAYOUT: u8 = 1;

/// Bits of the flags varint: which optional fields a row holds.
const TIMESTAMP: u64 = 1;
const RECIPIENT_ID: u64 = 1 << 1;
const RECIPIENT_USER_ID: u64 = 1 << 2;
const CONVERSATION: u64 = 1 << 3;
const PRICING: u64 = 1 << 4;
const ERRORS: u64 = 1 << 5;
const BIZ_OPAQUE: u64 = 1 << 6;
const RECIPIENT_TYPE: u64 = 1 << 7;
const PARTICIPANT: u64 = 1 << 8;
const GROUP_ID: u64 = 1 << 9;
/// Added with schema 11: the group participant's BSUID.
const PARTICIPANT_USER_ID: u64 = 1 << 10;
const KNOWN_FLAGS: u64 = (1 << 11) - 1;

/// JSON value tags.
const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
/// A negative integer n, stored as !n (0 for -1).
const NEG_INT: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// As deep as serde_json parses; a damaged row cannot recurse further.
const MAX_DEPTH: usize = 128;

/// The stored bytes of `record`; its message id is the row's key.
pub(super) fn encode(record: &StatusRecord) -> Vec<u8> {
    let texts = [
        (TIMESTAMP, record.timestamp.as_deref()),
        (RECIPIENT_ID, record.recipient_id.as_deref()),
        (RECIPIENT_USER_ID, record.recipient_user_id.as_deref()),
    ];
    // JSON read `"errors": null` back as no errors: so does this layout.
    let values = [
        (CONVERSATION, present(&record.conversation)),
        (PRICING, present(&record.pricing)),
        (ERRORS, present(&record.errors)),
    ];
    let more = [
        (BIZ_OPAQUE, record.biz_opaque_callback_data.as_deref()),
        (RECIPIENT_TYPE, record.recipient_type.as_deref()),
        (PARTICIPANT, record.recipient_participant_id.as_deref()),
        (GROUP_ID, record.group_id.as_deref()),
        (
            PARTICIPANT_USER_ID,
            record.recipient_participant_user_id.as_deref(),
        ),
    ];
    let mut flags = 0;
    for (bit, _) in texts.iter().chain(&more).filter(|(_, t)| t.is_some()) {
        flags |= bit;
    }
    for (bit, _) in values.iter().filter(|(_, v)| v.is_some()) {
        flags |= bit;
    }
    let mut out = Vec::with_capacity(128);
    out.push(LAYOUT);
    put_varint(&mut out, flags.into());
    put_text(&mut out, &record.status);
    put_text(&mut out, &record.waba_id);
    put_text(&mut out, &record.phone_number_id);
    put_varint(&mut out, record.received_at.into());
    for text in texts.iter().filter_map(|(_, t)| *t) {
        put_text(&mut out, text);
    }
    for value in values.iter().filter_map(|(_, v)| *v) {
        put_json(&mut out, value);
    }
    for text in more.iter().filter_map(|(_, t)| *t) {
        put_text(&mut out, text);
    }
    out
}

fn present(value: &Option<Value>) -> Option<&Value> {
    value.as_ref().filter(|v| !v.is_null())
}

/// The record stored as `bytes` under `message_id`.
pub(super) fn decode(message_id: &str, bytes: &[u8]) -> Result<StatusRecord, Error> {
    read_record(message_id, bytes).map_err(|why| {
        Error::storage(
            format!("unreadable status record of message {message_id}"),
            why,
        )
    })
}

fn read_record(message_id: &str, bytes: &[u8]) -> Result<StatusRecord, String> {
    let mut r = Reader::new(bytes);
    let layout = r.byte()?;
    if layout != LAYOUT {
        return Err(format!("layout {layout} is not one this build reads"));
    }
    let flags = u64::try_from(r.varint()?).map_err(|_| "flags out of range")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(format!("unknown optional fields {flags:#x}"));
    }
    let mut record = StatusRecord {
        message_id: message_id.to_string(),
        status: get_text(&mut r)?,
        waba_id: get_text(&mut r)?,
        phone_number_id: get_text(&mut r)?,
        received_at: u64::try_from(r.varint()?).map_err(|_| "received_at out of range")?,
        ..StatusRecord::default()
    };
    let has = |bit: u64| flags & bit != 0;
    let text = |r: &mut Reader, bit| has(bit).then(|| get_text(r)).transpose();
    let value = |r: &mut Reader, bit| has(bit).then(|| get_json(r, 0)).transpose();
    record.timestamp = text(&mut r, TIMESTAMP)?;
    record.recipient_id = text(&mut r, RECIPIENT_ID)?;
    record.recipient_user_id = text(&mut r, RECIPIENT_USER_ID)?;
    record.conversation = value(&mut r, CONVERSATION)?;
    record.pricing = value(&mut r, PRICING)?;
    record.errors = value(&mut r, ERRORS)?;
    record.biz_opaque_callback_data = text(&mut r, BIZ_OPAQUE)?;
    record.recipient_type = text(&mut r, RECIPIENT_TYPE)?;
    record.recipient_participant_id = text(&mut r, PARTICIPANT)?;
    record.group_id = text(&mut r, GROUP_ID)?;
    record.recipient_participant_user_id = text(&mut r, PARTICIPANT_USER_ID)?;
    r.end()?;
    Ok(record)
}

/// Every status of one message, in arrival order.
pub(super) fn history(
    statuses: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    message_id: &str,
) -> Result<Vec<StatusRecord>, Error> {
    let mut out = Vec::new();
    for row in statuses.range((message_id, 0)..=(message_id, u64::MAX))? {
        let (key, value) = row?;
        out.push(decode(key.value().0, value.value())?);
    }
    Ok(out)
}

/// Re-encodes the rows stored as JSON (schema 7 and earlier) into a fresh
/// table that then takes the place of the old one: filled in key order, its
/// pages end up full, where rewriting each row in place would leave every
/// page as sparse as the JSON made it, and the file would grow by the whole
/// old table. Rows already in the layout are copied as they are, so running
/// it twice is harmless. Returns how many were re-encoded.
pub(super) fn reencode_json_rows(tx: &WriteTransaction) -> Result<u64, Error> {
    let mut done = 0;
    {
        let from = tx.open_table(STATUSES)?;
        let mut to = tx.open_table(STATUSES_REENCODED)?;
        for row in from.iter()? {
            let (key, value) = row?;
            let (message, event) = key.value();
            let bytes = value.value();
            match bytes.first() {
                Some(b'{') => {
                    let record: StatusRecord = super::codec::dec(bytes, "status")?;
                    if record.message_id != message {
                        return Err(Error::storage(
                            "re-encoding the status history",
                            format!("the row of message {message} names {}", record.message_id),
                        ));
                    }
                    to.insert((message, event), encode(&record).as_slice())?;
                    done += 1;
                }
                Some(&LAYOUT) => {
                    to.insert((message, event), bytes)?;
                }
                _ => {
                    return Err(Error::storage(
                        "re-encoding the status history",
                        format!("the row ({message}, {event}) is neither JSON nor layout {LAYOUT}"),
                    ))
                }
            }
        }
    }
    tx.delete_table(STATUSES)?;
    tx.rename_table(STATUSES_REENCODED, STATUSES)?;
    Ok(done)
}

fn put_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => {
                out.push(UINT);
                put_varint(out, u.into());
            }
            (None, Some(i)) => {
                out.push(NEG_INT);
                put_varint(out, (!i as u64).into());
            }
            // serde_json's own text of a float reads back as the same number.
            (None, None) => {
                out.push(FLOAT);
                put_text(out, &n.to_string());
            }
        },
        Value::String(s) => {
            out.push(STRING);
            put_text(out, s);
        }
        Value::Array(items) => {
            out.push(ARRAY);
            put_varint(out, items.len() as u128);
            for item in items {
                put_json(out, item);
            }
        }
        Value::Object(map) => {
            out.push(OBJECT);
            put_varint(out, map.len() as u128);
            for (key, item) in map {
                put_text(out, key);
                put_json(out, item);
            }
        }
    }
}

fn get_json(r: &mut Reader, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("JSON nested too deep".into());
    }
    let count = |r: &mut Reader| -> Result<usize, String> {
        let n = usize::try_from(r.varint()?).map_err(|_| "count out of range")?;
        // Each item takes a byte at least: a damaged count cannot allocate much.
        if n > r.left() {
            return Err(format!("{n} items in {} bytes", r.left()));
        }
        Ok(n)
    };
    Ok(match r.byte()? {
        NULL => Value::Null,
        FALSE => Value::Bool(false),
        TRUE => Value::Bool(true),
        UINT => Value::from(u64::try_from(r.varint()?).map_err(|_| "integer out of range")?),
        NEG_INT => {
            let n = u64::try_from(r.varint()?).map_err(|_| "integer out of range")?;
            Value::from(!n as i64)
        }
        FLOAT => {
            let text = get_text(r)?;
            let n: Number = text
                .parse()
                .map_err(|e| format!("the float {text:?}: {e}"))?;
            Value::Number(n)
        }
        STRING => Value::String(get_text(r)?),
        ARRAY => {
            let n = count(r)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(get_json(r, depth + 1)?);
            }
            Value::Array(items)
        }
        OBJECT => {
            let n = count(r)?;
            let mut map = Map::new();
            for _ in 0..n {
                let key = get_text(r)?;
                map.insert(key, get_json(r, depth + 1)?);
            }
            Value::Object(map)
        }
        tag => return Err(format!("unknown JSON tag {tag}")),
    })
}
