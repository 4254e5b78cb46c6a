//! The Flows data endpoints, one per phone number, their secret and private
//! key sealed.

use redb::ReadableTable;

use super::tables::FLOWS_ENDPOINTS;
use super::Store;
use crate::domain::model::FlowsEndpoint;
use crate::error::Error;

impl Store {
    /// Stores the endpoint of its phone number, replacing the one there was.
    pub async fn put_flows_endpoint(&self, endpoint: FlowsEndpoint) -> Result<(), Error> {
        let sealed = self.sealer.seal_flows_endpoint(&endpoint)?;
        self.write(move |tx| {
            tx.open_table(FLOWS_ENDPOINTS)?
                .insert(endpoint.phone_number_id.as_str(), sealed.as_slice())?;
            Ok(())
        })
        .await
    }

    /// Stores `endpoint` unless its phone number has one already; returns
    /// the one stored. Two first PUTs at once then share one key pair, and
    /// the key Meta is given is the one kept.
    pub async fn add_flows_endpoint(
        &self,
        endpoint: FlowsEndpoint,
    ) -> Result<FlowsEndpoint, Error> {
        let sealed = self.sealer.seal_flows_endpoint(&endpoint)?;
        let phone = endpoint.phone_number_id.clone();
        let existing = self
            .write(move |tx| {
                let mut t = tx.open_table(FLOWS_ENDPOINTS)?;
                let found: Option<Vec<u8>> = t.get(phone.as_str())?.map(|v| v.value().to_vec());
                if found.is_none() {
                    t.insert(phone.as_str(), sealed.as_slice())?;
                }
                Ok(found)
            })
            .await?;
        match existing {
            Some(bytes) => self.sealer.open_flows_endpoint(&bytes),
            None => Ok(endpoint),
        }
    }

    /// The endpoint of a phone number, its secrets opened.
    pub fn flows_endpoint(&self, phone_number_id: &str) -> Result<Option<FlowsEndpoint>, Error> {
        self.read(|tx| {
            let t = tx.open_table(FLOWS_ENDPOINTS)?;
            let v = t.get(phone_number_id)?;
            v.map(|v| self.sealer.open_flows_endpoint(v.value()))
                .transpose()
        })
    }

    /// Removes a phone number's endpoint if `account_id` set it; whether it did.
    pub async fn delete_flows_endpoint(
        &self,
        phone_number_id: String,
        account_id: String,
    ) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(FLOWS_ENDPOINTS)?;
            let theirs = match table.get(phone_number_id.as_str())? {
                // The owner is not sealed: read as stored.
                Some(v) => serde_json::from_slice::<FlowsEndpoint>(v.value())
                    .is_ok_and(|e| e.account_id == account_id),
                None => false,
            };
            if theirs {
                table.remove(phone_number_id.as_str())?;
            }
            Ok(theirs)
        })
        .await
    }
}

/// Removes the endpoints of an account, in the transaction that removes it.
pub(super) fn remove_of_account(
    tx: &redb::WriteTransaction,
    account_id: &str,
) -> Result<(), Error> {
    tx.open_table(FLOWS_ENDPOINTS)?.retain(|_, v| {
        serde_json::from_slice::<FlowsEndpoint>(v).map_or(true, |e| e.account_id != account_id)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::key::tests::{account, flows_endpoint, FLOWS_PRIVATE_KEY};
    use crate::store::Store;

    #[tokio::test]
    async fn an_endpoint_is_kept_replaced_and_removed_with_its_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        store.insert_account(account(), Vec::new()).await.unwrap();
        assert!(store.flows_endpoint("P1").unwrap().is_none());
        store.add_flows_endpoint(flows_endpoint()).await.unwrap();
        let mut second = flows_endpoint();
        second.private_key = "another key".into();
        let first = store.add_flows_endpoint(second).await.unwrap();
        assert_eq!(
            first.private_key, FLOWS_PRIVATE_KEY,
            "the first key pair stays"
        );
        let mut moved = flows_endpoint();
        moved.url = "https://flow.example.com/other".into();
        store.put_flows_endpoint(moved).await.unwrap();
        let kept = store.flows_endpoint("P1").unwrap().unwrap();
        assert_eq!(kept.url, "https://flow.example.com/other");
        assert_eq!(kept.private_key, FLOWS_PRIVATE_KEY);

        let mut other = flows_endpoint();
        other.phone_number_id = "P2".into();
        other.account_id = "acc_2".into();
        store.put_flows_endpoint(other).await.unwrap();
        assert!(store.delete_account("acc_1".into()).await.unwrap());
        assert!(store.flows_endpoint("P1").unwrap().is_none());
        assert!(
            store.flows_endpoint("P2").unwrap().is_some(),
            "another account's stays"
        );
        assert!(
            !store
                .delete_flows_endpoint("P2".into(), "acc_1".into())
                .await
                .unwrap(),
            "only the account that set it removes it"
        );
        assert!(store
            .delete_flows_endpoint("P2".into(), "acc_2".into())
            .await
            .unwrap());
        assert!(!store
            .delete_flows_endpoint("P2".into(), "acc_2".into())
            .await
            .unwrap());
        store.close();
    }
}
