//! The admin API: the Meta App settings, connected accounts, the quarantine
//! and connect links; and `me`, an account's own view of itself.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::ids::AccountId;
use crate::domain::model::{Account, AccountStatus};
use crate::domain::sandbox::SandboxNumber;
use crate::domain::time::{rfc3339_ms, rfc3339_secs};
use crate::error::Error;
use crate::http::body::{page_limit, read_json, read_optional_json};
use crate::http::guards::{Admin, Caller};
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::accounts::{self, PastedToken};
use crate::usecase::{connect, numbers, sandbox, settings};

pub async fn get_config(state: &AppState, _: Admin, _: Req) -> Result<Resp, Error> {
    Ok(response::json(StatusCode::OK, &settings::view(state)))
}

pub async fn put_config(state: &AppState, _: Admin, req: Req) -> Result<Resp, Error> {
    settings::save(state, read_json(req.body).await?).await?;
    Ok(response::json(StatusCode::OK, &settings::view(state)))
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
    /// Only when the key was just made: it is stored as a hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// A sandbox account's made-up number; absent for a real account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxNumber>,
    /// What wabridge learned of each WABA (MM Lite onboarding, coexistence
    /// numbers): `usecase::numbers::waba_facts`. Absent where not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wabas: Option<Vec<Value>>,
}

impl AccountView {
    /// The view with what wabridge learned of the account's WABAs.
    fn with_wabas(account: &Account, state: &AppState) -> Result<AccountView, Error> {
        Ok(AccountView {
            wabas: Some(numbers::waba_facts(state, &account.waba_ids)?),
            ..AccountView::from(account)
        })
    }
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id.clone(),
            name: a.name.clone(),
            waba_ids: a.waba_ids.clone(),
            business_account_id: a.business_account_id.clone(),
            token_expires_at: a.token_expires_at.map(rfc3339_secs),
            status: a.status,
            status_reason: a.status_reason.clone(),
            created_at: rfc3339_ms(a.created_at),
            api_key: None,
            sandbox: a.sandbox.clone(),
            wabas: None,
        }
    }
}

pub async fn list_accounts(state: &AppState, _: Admin, _: Req) -> Result<Resp, Error> {
    let accounts = state
        .store
        .accounts()?
        .iter()
        .map(|a| AccountView::with_wabas(a, state))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"accounts": accounts}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAccount {
    access_token: Option<String>,
    name: Option<String>,
    #[serde(default)]
    waba_ids: Vec<String>,
    /// A sandbox account instead of one for a Meta token.
    #[serde(default)]
    sandbox: bool,
}

pub async fn add_account(state: &AppState, _: Admin, req: Req) -> Result<Resp, Error> {
    let new: NewAccount = read_json(req.body).await?;
    let (account, api_key) = match (new.sandbox, new.access_token) {
        (true, None) if new.waba_ids.is_empty() => sandbox::create(state, new.name).await?,
        (true, _) => return Err(Error::invalid(
            "sandbox",
            "a sandbox account takes no accessToken or wabaIds: its WABA and number are made up",
        )),
        (false, Some(access_token)) => {
            let pasted = PastedToken {
                access_token,
                name: new.name,
                waba_ids: new.waba_ids,
            };
            accounts::add(state, pasted).await?
        }
        (false, None) => {
            return Err(Error::invalid(
                "accessToken",
                "paste the account's access token, or ask for {\"sandbox\": true}",
            ))
        }
    };
    let view = AccountView {
        api_key: Some(api_key.0),
        ..AccountView::from(&account)
    };
    Ok(response::json(StatusCode::CREATED, &view))
}

pub async fn delete_account(state: &AppState, _: Admin, req: Req) -> Result<Resp, Error> {
    accounts::remove(state, &AccountId::new(req.param("accountId"))).await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

/// `GET /api/v1/me`: the account the key belongs to, with what wabridge
/// learned of its WABAs.
pub async fn me(state: &AppState, Caller(account): Caller, _: Req) -> Result<Resp, Error> {
    Ok(response::json(
        StatusCode::OK,
        &AccountView::with_wabas(&account, state)?,
    ))
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
pub async fn list_quarantine(state: &AppState, _: Admin, req: Req) -> Result<Resp, Error> {
    let limit = req.query("limit").as_deref().map_or(Ok(50), page_limit)?;
    let items: Vec<QuarantineView> = state
        .store
        .quarantined(limit)?
        .into_iter()
        .map(|q| QuarantineView {
            id: q.id,
            received_at: rfc3339_ms(q.received_at),
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
    /// Embedded Signup offers to connect a WhatsApp Business app number.
    #[serde(default)]
    coexistence: bool,
}

/// `POST /api/v1/admin/connect-links`: a single-use link for one customer. Only
/// its hash is stored; it is spent when a login through it connects an account
/// (not when the login starts, so a customer who cancelled can try again).
pub async fn create_connect_link(state: &AppState, _: Admin, req: Req) -> Result<Resp, Error> {
    let new: NewConnectLink = read_optional_json(req.body).await?;
    let link = connect::mint_link(state, new.expires_in_hours, new.coexistence).await?;
    Ok(response::json(
        StatusCode::CREATED,
        &json!({"id": link.id, "url": link.url, "expiresAt": rfc3339_ms(link.expires_at),
                "coexistence": new.coexistence}),
    ))
}

/// `GET /api/v1/admin/connect-links`: the links a customer could still use, newest first.
pub async fn list_connect_links(state: &AppState, _: Admin, _: Req) -> Result<Resp, Error> {
    let links: Vec<Value> = connect::open_links(state)?
        .into_iter()
        .map(|l| {
            json!({
                "id": l.id,
                "createdAt": rfc3339_ms(l.created_at),
                "expiresAt": rfc3339_ms(l.expires_at),
                "coexistence": l.coexistence,
            })
        })
        .collect();
    Ok(response::json(
        StatusCode::OK,
        &json!({"connectLinks": links}),
    ))
}

/// `DELETE /api/v1/admin/connect-links/{linkId}`.
pub async fn revoke_connect_link(state: &AppState, _: Admin, req: Req) -> Result<Resp, Error> {
    connect::revoke_link(state, req.param("linkId")).await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}
