//! One-time connect links the admin hands to a customer.
//!
//! Merge seam: the OAuth work (`/connect?link=`) consumes these links. Only the
//! SHA-256 of a link's token is stored, with its expiry; `take_connect_link`
//! removes it, so a link works once.

use redb::ReadableTable;

use super::tables::CONNECT_LINKS;
use super::Store;
use crate::domain::ids::token_hash;
use crate::error::Error;

impl Store {
    pub async fn insert_connect_link(&self, token: &str, expires_at_ms: u64) -> Result<(), Error> {
        let hash = token_hash(token);
        self.write(move |tx| {
            tx.open_table(CONNECT_LINKS)?
                .insert(hash.as_str(), expires_at_ms)?;
            Ok(())
        })
        .await
    }

    /// Uses a link up: true when it existed and had not expired by `now_ms`.
    pub async fn take_connect_link(&self, token: &str, now_ms: u64) -> Result<bool, Error> {
        let hash = token_hash(token);
        self.write(move |tx| {
            let mut t = tx.open_table(CONNECT_LINKS)?;
            let expires = t.remove(hash.as_str())?.map(|v| v.value());
            Ok(expires.is_some_and(|at| at > now_ms))
        })
        .await
    }

    /// Links minted and not yet used or expired.
    pub fn open_connect_links(&self, now_ms: u64) -> Result<usize, Error> {
        self.read(|tx| {
            let t = tx.open_table(CONNECT_LINKS)?;
            let mut n = 0;
            for row in t.iter()? {
                if row?.1.value() > now_ms {
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_link_works_once_and_not_after_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        store.insert_connect_link("a", 1_000).await.unwrap();
        store.insert_connect_link("b", 1_000).await.unwrap();
        assert_eq!(store.open_connect_links(500).unwrap(), 2);
        assert!(store.take_connect_link("a", 500).await.unwrap());
        assert!(!store.take_connect_link("a", 500).await.unwrap());
        assert!(!store.take_connect_link("b", 1_000).await.unwrap());
        assert_eq!(store.open_connect_links(0).unwrap(), 0);
        store.close();
    }
}
