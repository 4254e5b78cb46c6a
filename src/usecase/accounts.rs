//! Connected accounts as the admin manages them: one added from a pasted
//! token, removed, or given a new API key.

use super::settings::digits;
use super::{blocking, Services};
use crate::domain::accounts::grant_from;
use crate::domain::ids::{new_id, new_token, token_hash, AccountId};
use crate::domain::model::{Account, AccountStatus};
use crate::domain::time::now_ms;
use crate::error::Error;
use crate::meta::{discovery, AccountToken};

/// An account's API key in clear: stored only as a hash, so shown only once.
pub struct ApiKey(pub String);

impl ApiKey {
    fn new() -> ApiKey {
        ApiKey(new_token("wbk"))
    }

    fn hash(&self) -> String {
        token_hash(&self.0)
    }
}

/// What Meta granted a token, as a new account keeps it.
pub(super) struct Granted {
    pub name: Option<String>,
    pub waba_ids: Vec<String>,
    /// The WABA the account starts with; none: its first.
    pub business_account_id: Option<String>,
    pub access_token: String,
    pub token_expires_at: Option<u64>,
    pub meta_user_id: Option<String>,
}

/// A new account for a granted token, with its API key.
pub(super) fn new_account(granted: Granted, now: u64) -> (Account, ApiKey) {
    let api_key = ApiKey::new();
    let account = Account {
        id: new_id("acc"),
        name: granted.name.unwrap_or_else(|| "WhatsApp account".into()),
        business_account_id: granted
            .business_account_id
            .or_else(|| granted.waba_ids.first().cloned()),
        waba_ids: granted.waba_ids,
        access_token: granted.access_token,
        token_expires_at: granted.token_expires_at,
        meta_user_id: granted.meta_user_id,
        api_key_hash: api_key.hash(),
        created_at: now,
        status: AccountStatus::Ok,
        status_reason: None,
        token_checked_at: Some(now),
        sandbox: None,
    };
    (account, api_key)
}

/// A token pasted by the admin, as they pasted it.
pub struct PastedToken {
    pub access_token: String,
    pub name: Option<String>,
    /// WABAs to connect; empty: all the token grants.
    pub waba_ids: Vec<String>,
}

/// Checks a pasted token with Meta's `/debug_token` and stores the account,
/// with which business portfolio owns each of its WABAs.
pub async fn add(app: &Services, pasted: PastedToken) -> Result<(Account, ApiKey), Error> {
    let token = pasted.access_token.trim().to_string();
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            "accessToken",
            "paste the whole access token (a System User token or a user token)",
        ));
    }
    for id in &pasted.waba_ids {
        digits("wabaIds", id.clone(), "WhatsApp Business Account IDs")?;
    }
    let settings = app.settings();
    if !settings.is_configured() {
        return Err(Error::NotConfigured(
            "clientId and clientSecret are needed to check a token with Meta",
        ));
    }
    let graph = app.graph.clone();
    let name = pasted
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let checked_token = token.clone();
    let waba_ids = pasted.waba_ids;
    let (grant, fetched_name, owners) = blocking(move || {
        let debug =
            graph.debug_token(&checked_token, &settings.client_id, &settings.client_secret)?;
        let grant = grant_from(&debug, &waba_ids)?;
        let as_account = AccountToken {
            token: &checked_token,
            app_secret: Some(&settings.client_secret),
        };
        let fetched = match name {
            Some(n) => Some(n),
            None => graph
                .get("me", &as_account, &[("fields", "name")])
                .ok()
                .and_then(|me| me.get("name").and_then(|n| n.as_str()).map(str::to_string)),
        };
        let owners = discovery::owners_of(&graph, &as_account, &grant.waba_ids, &[]);
        Ok((grant, fetched, owners))
    })
    .await?;
    let granted = Granted {
        name: fetched_name,
        waba_ids: grant.waba_ids,
        business_account_id: None,
        access_token: token,
        token_expires_at: grant.expires_at,
        meta_user_id: grant.user_id,
    };
    let (account, api_key) = new_account(granted, now_ms());
    app.store.insert_account(account.clone(), owners).await?;
    tracing::info!(account = %account.id, wabas = account.waba_ids.len(), "account added");
    Ok((account, api_key))
}

pub fn get(app: &Services, id: &AccountId) -> Result<Account, Error> {
    app.store
        .account(id.as_str())?
        .ok_or(Error::NotFound("account"))
}

/// Removes the account with its API key and listeners.
pub async fn remove(app: &Services, id: &AccountId) -> Result<(), Error> {
    if !app.store.delete_account(id.to_string()).await? {
        return Err(Error::NotFound("account"));
    }
    tracing::info!(account = %id, "account removed");
    Ok(())
}

/// A new API key for the account; the old one stops working at once.
pub async fn rotate_key(app: &Services, id: &AccountId) -> Result<ApiKey, Error> {
    let api_key = ApiKey::new();
    if !app
        .store
        .rotate_api_key(id.to_string(), api_key.hash())
        .await?
    {
        return Err(Error::NotFound("account"));
    }
    tracing::info!(account = %id, "API key rotated");
    Ok(api_key)
}
