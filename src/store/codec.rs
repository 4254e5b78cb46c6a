//! Records are JSON in the database: readable in a dump, tolerant of added fields.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;

/// A record that will not encode is a bug in its type (a map with non-string
/// keys, a failing `Serialize`): refused, never stored empty.
pub fn enc<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value)
        .map_err(|e| Error::internal(format!("cannot encode the {what} record"), e))
}

pub fn dec<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::storage(format!("unreadable {what} record"), e))
}
