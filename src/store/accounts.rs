//! Connected accounts and their API keys.

use redb::{ReadableTable, WriteTransaction};

use super::codec::{dec, enc};
use super::secrets::Sealer;
use super::tables::{ACCOUNTS, API_KEYS, BUSINESS_WABAS, LISTENERS};
use super::Store;
use crate::domain::model::Account;
use crate::error::Error;

impl Store {
    /// Stores a new account, with the (business portfolio, WABA) pairs found
    /// for its WABAs (see `save_connection`).
    pub async fn insert_account(
        &self,
        account: Account,
        owners: Vec<(String, String)>,
    ) -> Result<(), Error> {
        let sealed = self.sealer.seal_account(&account)?;
        self.write(move |tx| {
            tx.open_table(ACCOUNTS)?
                .insert(account.id.as_str(), sealed.as_slice())?;
            tx.open_table(API_KEYS)?
                .insert(account.api_key_hash.as_str(), account.id.as_str())?;
            remember_owners(tx, &owners)
        })
        .await
    }

    /// Accounts for monitors: (all, needing a reconnect). Decodes the records
    /// without opening their tokens (see `listener_counts`).
    pub fn account_counts(&self) -> Result<(u64, u64), Error> {
        self.read(|tx| {
            let (mut all, mut reconnect) = (0, 0);
            for row in tx.open_table(ACCOUNTS)?.iter()? {
                let a: Account = super::codec::dec(row?.1.value(), "account")?;
                all += 1;
                reconnect +=
                    u64::from(a.status == crate::domain::model::AccountStatus::NeedsReconnect);
            }
            Ok((all, reconnect))
        })
    }

    pub fn accounts(&self) -> Result<Vec<Account>, Error> {
        self.read(|tx| all_accounts(&tx.open_table(ACCOUNTS)?, &self.sealer))
    }

    pub fn account(&self, id: &str) -> Result<Option<Account>, Error> {
        self.read(|tx| {
            let t = tx.open_table(ACCOUNTS)?;
            let v = t.get(id)?;
            v.map(|v| self.sealer.open_account(v.value())).transpose()
        })
    }

    /// The connected account that has this WABA.
    pub fn account_with_waba(&self, waba_id: &str) -> Result<Option<Account>, Error> {
        Ok(self
            .accounts()?
            .into_iter()
            .find(|a| a.waba_ids.iter().any(|w| w == waba_id)))
    }

    /// The account an API key belongs to, by the key's hash.
    pub fn account_by_key_hash(&self, hash: &str) -> Result<Option<Account>, Error> {
        self.read(|tx| {
            let keys = tx.open_table(API_KEYS)?;
            let Some(id) = keys.get(hash)?.map(|v| v.value().to_string()) else {
                return Ok(None);
            };
            let t = tx.open_table(ACCOUNTS)?;
            let v = t.get(id.as_str())?;
            v.map(|v| self.sealer.open_account(v.value())).transpose()
        })
    }

    /// Changes an account in one transaction: `change` sees the stored account and
    /// says whether to write it back (false leaves it as it is). `None` when the
    /// account is gone.
    pub async fn update_account<F>(&self, id: String, change: F) -> Result<Option<Account>, Error>
    where
        F: Fn(&mut Account) -> bool + Send + 'static,
    {
        let sealer = self.sealer.clone();
        self.write(move |tx| {
            let mut t = tx.open_table(ACCOUNTS)?;
            let stored: Option<Account> = {
                let v = t.get(id.as_str())?;
                v.map(|v| sealer.open_account(v.value())).transpose()?
            };
            let Some(mut account) = stored else {
                return Ok(None);
            };
            if change(&mut account) {
                t.insert(
                    account.id.as_str(),
                    sealer.seal_account(&account)?.as_slice(),
                )?;
            }
            Ok(Some(account))
        })
        .await
    }

    /// Replaces an account's API key: the old one stops working in the same
    /// commit. The token is not touched: its sealed text is written back as read.
    pub async fn rotate_api_key(&self, id: String, new_hash: String) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut accounts = tx.open_table(ACCOUNTS)?;
            let found: Option<Account> = match accounts.get(id.as_str())? {
                Some(v) => Some(dec(v.value(), "account")?),
                None => None,
            };
            let Some(mut account) = found else {
                return Ok(false);
            };
            let mut keys = tx.open_table(API_KEYS)?;
            keys.remove(account.api_key_hash.as_str())?;
            keys.insert(new_hash.as_str(), account.id.as_str())?;
            account.api_key_hash = new_hash.clone();
            accounts.insert(account.id.as_str(), enc(&account, "account")?.as_slice())?;
            Ok(true)
        })
        .await
    }

    /// Removes an account with its key, its listeners (their pending
    /// deliveries are cancelled) and its Flows endpoints.
    pub async fn delete_account(&self, id: String) -> Result<bool, Error> {
        let removed = self
            .write(move |tx| {
                let account: Option<Account> = {
                    let t = tx.open_table(ACCOUNTS)?;
                    let v = t.get(id.as_str())?;
                    v.map(|v| dec(v.value(), "account")).transpose()?
                };
                let Some(account) = account else {
                    return Ok(false);
                };
                let listeners =
                    super::listeners::sealed_of(&tx.open_table(LISTENERS)?, &account.id)?;
                for listener in listeners {
                    super::listeners::remove_listener(tx, &listener)?;
                }
                super::flows::remove_of_account(tx, &account.id)?;
                tx.open_table(API_KEYS)?
                    .remove(account.api_key_hash.as_str())?;
                tx.open_table(ACCOUNTS)?.remove(account.id.as_str())?;
                Ok(true)
            })
            .await?;
        self.listeners_changed();
        Ok(removed)
    }
}

/// Every account in the table, tokens decrypted; read or write transaction alike.
pub(super) fn all_accounts(
    accounts: &impl ReadableTable<&'static str, &'static [u8]>,
    sealer: &Sealer,
) -> Result<Vec<Account>, Error> {
    let mut out = Vec::new();
    for row in accounts.iter()? {
        let (_, v) = row?;
        out.push(sealer.open_account(v.value())?);
    }
    Ok(out)
}

/// Which business portfolio owns which WABA: where business-level events go.
pub(super) fn remember_owners(
    tx: &WriteTransaction,
    owners: &[(String, String)],
) -> Result<(), Error> {
    let mut table = tx.open_table(BUSINESS_WABAS)?;
    for (business, waba) in owners {
        table.insert((business.as_str(), waba.as_str()), ())?;
    }
    Ok(())
}
