//! Connect links, logins in progress, and the one transaction that finishes a
//! connection: spend the link, create or update the account.

use redb::{ReadableTable, WriteTransaction};

use super::accounts::{all_accounts, remember_owners};
use super::codec::{dec, enc};
use super::tables::{ACCOUNTS, API_KEYS, CONNECT_LINKS, PENDING_LOGINS};
use super::Store;
use crate::domain::connect::{
    check_link, new_link, reconnect_target, reconnected, MintedLink, Unusable,
};
use crate::domain::ids::token_hash;
use crate::domain::model::{Account, ConnectLink, PendingLogin};
use crate::error::Error;

/// What saving a connection did.
#[derive(Debug, Clone)]
pub struct Connected {
    pub account: Account,
    /// False when the login reconnected an existing account.
    pub created: bool,
}

impl Store {
    /// Mints a connect link that lasts `expires_in_hours` (see `domain::connect::new_link`),
    /// for coexistence onboarding when asked, and stores it under its hash: how
    /// the admin API and the backoffice both make links. The secret in the
    /// answer is kept nowhere.
    pub async fn mint_connect_link(
        &self,
        now_ms: u64,
        expires_in_hours: Option<u64>,
        coexistence: bool,
    ) -> Result<MintedLink, Error> {
        let mut minted = new_link(now_ms, expires_in_hours)?;
        minted.link.coexistence = coexistence;
        self.insert_connect_link(token_hash(&minted.secret), minted.link.clone())
            .await?;
        tracing::info!(link = %minted.link.id, expires_at = minted.link.expires_at, "connect link created");
        Ok(minted)
    }

    pub async fn insert_connect_link(&self, hash: String, link: ConnectLink) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(CONNECT_LINKS)?
                .insert(hash.as_str(), enc(&link, "connect link")?.as_slice())?;
            Ok(())
        })
        .await
    }

    pub fn connect_link(&self, hash: &str) -> Result<Option<ConnectLink>, Error> {
        self.read(|tx| {
            let t = tx.open_table(CONNECT_LINKS)?;
            let v = t.get(hash)?;
            v.map(|v| dec(v.value(), "connect link")).transpose()
        })
    }

    /// The links that could still connect an account at `now_ms` (not used,
    /// not expired), newest first.
    pub fn open_connect_links(&self, now_ms: u64) -> Result<Vec<ConnectLink>, Error> {
        self.read(|tx| {
            let t = tx.open_table(CONNECT_LINKS)?;
            let mut open = Vec::new();
            for row in t.iter()? {
                let link: ConnectLink = dec(row?.1.value(), "connect link")?;
                if check_link(Some(&link), now_ms).is_ok() {
                    open.push(link);
                }
            }
            open.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            Ok(open)
        })
    }

    /// Withdraws an open link: it, and any login started through it, can no
    /// longer connect an account. False when no open link has this id.
    pub async fn revoke_connect_link(&self, id: String, now_ms: u64) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut revoked = false;
            tx.open_table(CONNECT_LINKS)?.retain(|_, v| {
                let hit = dec::<ConnectLink>(v, "connect link")
                    .is_ok_and(|l| l.id == id && check_link(Some(&l), now_ms).is_ok());
                revoked |= hit;
                !hit
            })?;
            Ok(revoked)
        })
        .await
    }

    pub async fn insert_pending_login(
        &self,
        hash: String,
        login: PendingLogin,
    ) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(PENDING_LOGINS)?
                .insert(hash.as_str(), enc(&login, "pending login")?.as_slice())?;
            Ok(())
        })
        .await
    }

    /// A look without spending it (the signup page checks the state it is given).
    pub fn pending_login(&self, hash: &str) -> Result<Option<PendingLogin>, Error> {
        self.read(|tx| {
            let t = tx.open_table(PENDING_LOGINS)?;
            let v = t.get(hash)?;
            v.map(|v| dec(v.value(), "pending login")).transpose()
        })
    }

    /// Removes and returns the login in one transaction, so a `state` works once
    /// however many requests race with it.
    pub async fn take_pending_login(&self, hash: String) -> Result<Option<PendingLogin>, Error> {
        self.write(move |tx| {
            let mut t = tx.open_table(PENDING_LOGINS)?;
            let removed = t.remove(hash.as_str())?;
            removed.map(|v| dec(v.value(), "pending login")).transpose()
        })
        .await
    }

    /// Spends the connect link (when there is one) and stores the account, in
    /// one transaction: a link connects one account, even when two logins
    /// through it finish at once. A login by the same Meta user on a WABA an
    /// account already has updates that account (see `domain::connect`).
    /// `owners` are (business portfolio, WABA) pairs found on the way, which
    /// route Meta's business-level events.
    pub async fn save_connection(
        &self,
        link_hash: Option<String>,
        fresh: Account,
        owners: Vec<(String, String)>,
        now_ms: u64,
    ) -> Result<Connected, Error> {
        let sealer = self.sealer.clone();
        self.write(move |tx| {
            let accounts = all_accounts(&tx.open_table(ACCOUNTS)?, &sealer)?;
            let target =
                reconnect_target(&accounts, fresh.meta_user_id.as_deref(), &fresh.waba_ids);
            let connected = match target {
                Some(existing) => Connected {
                    account: reconnected(existing, &fresh),
                    created: false,
                },
                None => Connected {
                    account: fresh.clone(),
                    created: true,
                },
            };
            let account = &connected.account;
            // Spent first: when the link is no longer usable nothing else is written.
            if let Some(hash) = &link_hash {
                spend_link(tx, hash, &account.id, now_ms)?;
            }
            if connected.created {
                tx.open_table(API_KEYS)?
                    .insert(account.api_key_hash.as_str(), account.id.as_str())?;
            }
            tx.open_table(ACCOUNTS)?.insert(
                account.id.as_str(),
                sealer.seal_account(account)?.as_slice(),
            )?;
            remember_owners(tx, &owners)?;
            Ok(connected)
        })
        .await
    }

    /// Forgets logins whose state expired and links that can no longer be used;
    /// returns how many rows went.
    pub async fn purge_connect_leftovers(&self, now_ms: u64) -> Result<u64, Error> {
        self.write(move |tx| {
            let mut gone = 0u64;
            tx.open_table(PENDING_LOGINS)?.retain(|_, v| {
                let keep = dec::<PendingLogin>(v, "pending login")
                    .map(|l| l.expires_at > now_ms)
                    .unwrap_or(false);
                gone += u64::from(!keep);
                keep
            })?;
            tx.open_table(CONNECT_LINKS)?.retain(|_, v| {
                let keep = dec::<ConnectLink>(v, "connect link")
                    .map(|l| check_link(Some(&l), now_ms).is_ok())
                    .unwrap_or(false);
                gone += u64::from(!keep);
                keep
            })?;
            Ok(gone)
        })
        .await
    }
}

const LINK_USED: &str = "this connect link was already used to connect an account";
const LINK_GONE: &str = "this connect link has expired or was removed";

fn spend_link(
    tx: &WriteTransaction,
    hash: &str,
    account_id: &str,
    now_ms: u64,
) -> Result<(), Error> {
    let mut t = tx.open_table(CONNECT_LINKS)?;
    let link: Option<ConnectLink> = {
        let v = t.get(hash)?;
        v.map(|v| dec(v.value(), "connect link")).transpose()?
    };
    let mut link = match (check_link(link.as_ref(), now_ms), link) {
        (Ok(()), Some(link)) => link,
        (Err(Unusable::Used), _) => return Err(Error::Conflict(LINK_USED.into())),
        _ => return Err(Error::Conflict(LINK_GONE.into())),
    };
    link.used_at = Some(now_ms);
    link.account_id = Some(account_id.to_string());
    t.insert(hash, enc(&link, "connect link")?.as_slice())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::AccountStatus;

    fn account(id: &str, user: &str, waba: &str) -> Account {
        Account {
            id: id.into(),
            name: "Shop".into(),
            waba_ids: vec![waba.into()],
            business_account_id: Some(waba.into()),
            access_token: format!("token-{id}"),
            token_expires_at: None,
            meta_user_id: Some(user.into()),
            api_key_hash: format!("key-{id}"),
            created_at: 1,
            status: AccountStatus::Ok,
            status_reason: None,
            token_checked_at: None,
            sandbox: None,
        }
    }

    fn link(expires_at: u64) -> ConnectLink {
        ConnectLink {
            id: "lnk_1".into(),
            created_at: 0,
            expires_at,
            used_at: None,
            account_id: None,
            coexistence: false,
        }
    }

    #[tokio::test]
    async fn a_link_connects_one_account_and_a_reconnect_updates_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        store
            .insert_connect_link("L1".into(), link(1_000))
            .await
            .unwrap();
        store
            .insert_connect_link("L2".into(), link(1_000))
            .await
            .unwrap();

        assert_eq!(store.open_connect_links(10).unwrap().len(), 2);
        let first = store
            .save_connection(Some("L1".into()), account("a", "u1", "W1"), vec![], 10)
            .await
            .unwrap();
        assert_eq!(
            store.open_connect_links(10).unwrap().len(),
            1,
            "a spent link is not open"
        );
        assert!(
            store.open_connect_links(1_000).unwrap().is_empty(),
            "nor an expired one"
        );
        assert!(first.created);
        let spent = store.connect_link("L1").unwrap().unwrap();
        assert_eq!(
            (spent.used_at, spent.account_id.as_deref()),
            (Some(10), Some("a"))
        );
        let again = store
            .save_connection(Some("L1".into()), account("b", "u2", "W2"), vec![], 11)
            .await;
        assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");

        let reconnect = store
            .save_connection(
                Some("L2".into()),
                account("c", "u1", "W1"),
                vec![("B1".into(), "W1".into())],
                12,
            )
            .await
            .unwrap();
        assert!(!reconnect.created);
        assert_eq!(store.business_wabas("B1").unwrap(), ["W1"]);
        assert_eq!(reconnect.account.id, "a");
        assert_eq!(reconnect.account.access_token, "token-c");
        assert_eq!(store.accounts().unwrap().len(), 1);
        assert_eq!(
            store
                .connect_link("L2")
                .unwrap()
                .unwrap()
                .account_id
                .as_deref(),
            Some("a")
        );
        assert!(
            store.account_by_key_hash("key-c").unwrap().is_none(),
            "no second key"
        );
        assert!(store.account_by_key_hash("key-a").unwrap().is_some());
        store.close();
    }

    #[tokio::test]
    async fn a_state_is_taken_once_and_leftovers_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        let login = PendingLogin {
            flow: crate::domain::model::ConnectFlow::OAuth,
            link_hash: None,
            expires_at: 100,
            coexistence: false,
        };
        store
            .insert_pending_login("S1".into(), login.clone())
            .await
            .unwrap();
        store
            .insert_pending_login("S2".into(), login)
            .await
            .unwrap();
        store
            .insert_connect_link("L1".into(), link(100))
            .await
            .unwrap();
        assert!(store
            .take_pending_login("S1".into())
            .await
            .unwrap()
            .is_some());
        assert!(store
            .take_pending_login("S1".into())
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.purge_connect_leftovers(100).await.unwrap(), 2);
        assert!(store.pending_login("S2").unwrap().is_none());
        assert!(store.connect_link("L1").unwrap().is_none());
        store.close();
    }

    #[tokio::test]
    async fn only_an_open_link_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        let named = |id: &str, created_at: u64, expires_at: u64| ConnectLink {
            id: id.into(),
            created_at,
            ..link(expires_at)
        };
        for (hash, l) in [
            ("H1", named("lnk_a", 1, 1_000)),
            ("H2", named("lnk_b", 2, 1_000)),
            ("H3", named("lnk_old", 0, 5)),
        ] {
            store.insert_connect_link(hash.into(), l).await.unwrap();
        }
        let ids = |store: &Store| -> Vec<String> {
            store
                .open_connect_links(10)
                .unwrap()
                .into_iter()
                .map(|l| l.id)
                .collect()
        };
        assert_eq!(
            ids(&store),
            ["lnk_b", "lnk_a"],
            "newest first, expired left out"
        );
        assert!(!store
            .revoke_connect_link("lnk_old".into(), 10)
            .await
            .unwrap());
        assert!(!store
            .revoke_connect_link("lnk_nope".into(), 10)
            .await
            .unwrap());
        assert!(store.revoke_connect_link("lnk_a".into(), 10).await.unwrap());
        assert!(store.connect_link("H1").unwrap().is_none());
        assert_eq!(ids(&store), ["lnk_b"]);
        assert!(!store.revoke_connect_link("lnk_a".into(), 10).await.unwrap());
        store.close();
    }
}
