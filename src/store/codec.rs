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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_record_that_cannot_be_encoded_is_refused_not_stored_empty() {
        // JSON object keys must be strings.
        let bad = BTreeMap::from([((1, 2), "x")]);
        let err = enc(&bad, "listener").unwrap_err();
        assert!(matches!(
            err,
            Error::Internal {
                source: Some(_),
                ..
            }
        ));
        assert!(err.to_string().contains("listener record"), "{err}");
    }

    #[test]
    fn an_unreadable_record_keeps_the_decode_error() {
        let err = dec::<u8>(b"{", "delivery").unwrap_err();
        assert!(matches!(err, Error::Storage { .. }));
        assert!(err
            .to_string()
            .starts_with("storage: unreadable delivery record: "));
    }
}
