//! The admin API: the Meta App settings and connected accounts.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::accounts::grant_from;
use crate::domain::connect::connect_url;
use crate::domain::ids::{new_id, new_token, token_hash};
use crate::domain::model::{Account, AccountStatus, Settings};
use crate::domain::time::{now_ms, rfc3339_ms};
use crate::error::Error;
use crate::http::auth::require_admin;
use crate::http::body::{page_limit, read_json, read_optional_json};
use crate::http::query::query_value;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::meta::{discovery, AccountToken};

pub const EVENTS_PATH: &str = "/plugins/appmixer/whatsapp/events";
pub const CALLBACK_PATH: &str = "/auth/whatsapp/callback";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigView {
    client_id: String,
    client_secret_set: bool,
    es_config_id: String,
    verify_token: String,
    webhook_url: String,
    callback_url: String,
    require_open_window: bool,
}

fn config_view(state: &AppState) -> ConfigView {
    let s = state.settings();
    ConfigView {
        client_id: s.client_id,
        client_secret_set: !s.client_secret.is_empty(),
        es_config_id: s.es_config_id,
        verify_token: s.verify_token,
        webhook_url: format!("{}{EVENTS_PATH}", state.public_url),
        callback_url: format!("{}{CALLBACK_PATH}", state.public_url),
        require_open_window: s.require_open_window,
    }
}

pub fn get_config(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    require_admin(state, &req.into_parts().0)?;
    Ok(response::json(StatusCode::OK, &config_view(state)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigChange {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub es_config_id: Option<String>,
    pub verify_token: Option<String>,
    pub require_open_window: Option<bool>,
}

pub async fn put_config(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    require_admin(state, &parts)?;
    let change: ConfigChange = read_json(body).await?;
    save_config(state, change).await?;
    Ok(response::json(StatusCode::OK, &config_view(state)))
}

/// Validates and stores a settings change, then makes it the one in force.
pub async fn save_config(state: &AppState, change: ConfigChange) -> Result<(), Error> {
    let mut next = state.settings();
    apply(&mut next, change)?;
    state.store.put_settings(next.clone()).await?;
    if let Ok(mut current) = state.settings.write() {
        *current = next;
    }
    tracing::info!("admin settings changed");
    Ok(())
}

fn apply(s: &mut Settings, c: ConfigChange) -> Result<(), Error> {
    if let Some(v) = c.client_id {
        s.client_id = digits("clientId", v, "the Meta App ID (App settings → Basic)")?;
    }
    if let Some(v) = c.es_config_id {
        s.es_config_id = digits("esConfigId", v, "the Embedded Signup configuration ID")?;
    }
    if let Some(v) = c.client_secret {
        s.client_secret = printable("clientSecret", v)?;
    }
    if let Some(v) = c.verify_token {
        s.verify_token = printable("verifyToken", v)?;
    }
    if let Some(v) = c.require_open_window {
        s.require_open_window = v;
    }
    Ok(())
}

/// Meta's ids are numbers; an empty value clears the setting.
fn digits(field: &str, v: String, what: &str) -> Result<String, Error> {
    let v = v.trim().to_string();
    if v.len() > 64 || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid(
            field,
            format!("must be {what}: digits only"),
        ));
    }
    Ok(v)
}

fn printable(field: &str, v: String) -> Result<String, Error> {
    let v = v.trim().to_string();
    if v.len() > 256 || !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            "must be at most 256 printable ASCII characters without spaces",
        ));
    }
    Ok(v)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub waba_ids: Vec<String>,
    pub business_account_id: Option<String>,
    pub token_expires_at: Option<String>,
    /// `ok`, or `needs_reconnect` when Meta refused the token.
    pub status: AccountStatus,
    pub status_reason: Option<String>,
    pub created_at: String,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id.clone(),
            name: a.name.clone(),
            waba_ids: a.waba_ids.clone(),
            business_account_id: a.business_account_id.clone(),
            token_expires_at: a.token_expires_at.map(crate::domain::time::rfc3339_secs),
            status: a.status,
            status_reason: a.status_reason.clone(),
            created_at: crate::domain::time::rfc3339_ms(a.created_at),
        }
    }
}

pub fn list_accounts(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    require_admin(state, &req.into_parts().0)?;
    let accounts: Vec<AccountView> = state
        .store
        .accounts()?
        .iter()
        .map(AccountView::from)
        .collect();
    Ok(response::json(
        StatusCode::OK,
        &json!({"accounts": accounts}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAccount {
    access_token: String,
    name: Option<String>,
    #[serde(default)]
    waba_ids: Vec<String>,
}

pub async fn add_account(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    require_admin(state, &parts)?;
    let new: NewAccount = read_json(body).await?;
    let (account, api_key) =
        connect_account(state, &new.access_token, new.name, new.waba_ids).await?;
    let mut view = serde_json::to_value(AccountView::from(&account)).unwrap_or_default();
    view["apiKey"] = json!(api_key);
    Ok(response::json(StatusCode::CREATED, &view))
}

/// Checks a pasted token with Meta's `/debug_token` and stores the account.
/// Returns it with its API key, which is not stored and so shown only this once.
pub async fn connect_account(
    state: &AppState,
    access_token: &str,
    name: Option<String>,
    waba_ids: Vec<String>,
) -> Result<(Account, String), Error> {
    let token = access_token.trim().to_string();
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            "accessToken",
            "paste the whole access token (a System User token or a user token)",
        ));
    }
    for id in &waba_ids {
        digits("wabaIds", id.clone(), "WhatsApp Business Account IDs")?;
    }
    let settings = state.settings();
    if settings.client_id.is_empty() || settings.client_secret.is_empty() {
        return Err(Error::NotConfigured(
            "clientId and clientSecret are needed to check a token with Meta",
        ));
    }
    let graph = state.graph.clone();
    let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let checked_token = token.clone();
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
    let api_key = new_token("wbk");
    let account = Account {
        id: new_id("acc"),
        name: fetched_name.unwrap_or_else(|| "WhatsApp account".into()),
        business_account_id: grant.waba_ids.first().cloned(),
        waba_ids: grant.waba_ids,
        access_token: token,
        token_expires_at: grant.expires_at,
        meta_user_id: grant.user_id,
        api_key_hash: token_hash(&api_key),
        created_at: now_ms(),
        status: AccountStatus::Ok,
        status_reason: None,
        token_checked_at: Some(now_ms()),
    };
    state.store.insert_account(account.clone(), owners).await?;
    tracing::info!(account = %account.id, wabas = account.waba_ids.len(), "account added");
    Ok((account, api_key))
}

pub async fn delete_account(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    require_admin(state, &req.into_parts().0)?;
    if state.store.delete_account(id.to_string()).await? {
        tracing::info!(account = %id, "account removed");
        Ok(response::empty(StatusCode::NO_CONTENT))
    } else {
        Err(Error::NotFound("account"))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuarantineView {
    id: u64,
    received_at: String,
    reason: String,
    body: String,
}

/// `GET /api/v1/admin/quarantine?limit=`: signed bodies that could not be used, newest first.
pub fn list_quarantine(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let limit = query_value(req.uri(), "limit");
    require_admin(state, &req.into_parts().0)?;
    let limit = limit.as_deref().map_or(Ok(50), page_limit)?;
    let items: Vec<QuarantineView> = state
        .store
        .quarantined(limit)?
        .into_iter()
        .map(|q| QuarantineView {
            id: q.id,
            received_at: crate::domain::time::rfc3339_ms(q.received_at),
            reason: q.reason,
            body: q.body,
        })
        .collect();
    Ok(response::json(
        StatusCode::OK,
        &json!({"quarantine": items}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewConnectLink {
    expires_in_hours: Option<u64>,
}

/// `POST /api/v1/admin/connect-links`: a single-use link for one customer. Only
/// its hash is stored; it is spent when a login through it connects an account
/// (not when the login starts, so a customer who cancelled can try again).
pub async fn create_connect_link(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    require_admin(state, &parts)?;
    let new: NewConnectLink = read_optional_json(body).await?;
    let minted = state
        .store
        .mint_connect_link(now_ms(), new.expires_in_hours)
        .await?;
    Ok(response::json(
        StatusCode::CREATED,
        &json!({
            "id": minted.link.id,
            "url": connect_url(&state.public_url, &minted.secret),
            "expiresAt": rfc3339_ms(minted.link.expires_at),
        }),
    ))
}

/// `GET /api/v1/admin/connect-links`: the links a customer could still use, newest first.
pub fn list_connect_links(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    require_admin(state, &req.into_parts().0)?;
    let links: Vec<Value> = state
        .store
        .open_connect_links(now_ms())?
        .into_iter()
        .map(|l| {
            json!({
                "id": l.id,
                "createdAt": rfc3339_ms(l.created_at),
                "expiresAt": rfc3339_ms(l.expires_at),
            })
        })
        .collect();
    Ok(response::json(
        StatusCode::OK,
        &json!({"connectLinks": links}),
    ))
}

/// `DELETE /api/v1/admin/connect-links/{linkId}`: a link sent to the wrong
/// person, or no longer wanted, stops working (a login already started through
/// it fails at the callback).
pub async fn revoke_connect_link(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    require_admin(state, &req.into_parts().0)?;
    if state
        .store
        .revoke_connect_link(id.to_string(), now_ms())
        .await?
    {
        tracing::info!(link = %id, "connect link revoked");
        Ok(response::empty(StatusCode::NO_CONTENT))
    } else {
        Err(Error::NotFound("open connect link"))
    }
}

/// Runs Graph calls (blocking ureq) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::MetaUnreachable(format!("the Graph call did not finish: {e}")))?
}
