//! Records are JSON in the database: readable in a dump, tolerant of added fields.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;

pub fn enc<T: Serialize>(value: &T) -> Vec<u8> {
    // Our record types are plain structs of strings and numbers; serde_json cannot fail on them.
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn dec<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Storage(format!("unreadable {what} record: {e}")))
}
