//! The Accounts page: connected accounts and their health, adding one from a
//! pasted token, connect links for customers, API key rotation, removal.

use std::collections::HashMap;

use askama::Template;
use hyper::StatusCode;
use serde_json::Value;

use super::views::{stamp, utc, Chrome};
use super::{html, Ctx, Done, Form};
use crate::domain::ids::{new_token, token_hash};
use crate::domain::model::{Account, AccountStatus};
use crate::error::Error;
use crate::http::response::Resp;
use crate::http::routes::admin::connect_account;
use crate::http::session::Flash;

/// How long a customer's connect link stays usable.
const CONNECT_LINK_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// A token that ends sooner than this gets an amber warning.
const EXPIRY_WARNING_MS: u64 = 7 * 24 * 3600 * 1000;

pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub waba_ids: Vec<String>,
    /// ok, warn or bad.
    pub expiry_state: &'static str,
    pub expiry: String,
    pub needs_reconnect: bool,
    pub status_reason: String,
    pub listeners: usize,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<AccountRow>,
    open_links: usize,
    configured: bool,
}

pub fn page(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let mut listeners: HashMap<String, usize> = HashMap::new();
    for l in cx.state.store.listeners()? {
        *listeners.entry(l.account_id).or_default() += 1;
    }
    let accounts = cx
        .state
        .store
        .accounts()?
        .iter()
        .map(|a| row(a, listeners.get(&a.id).copied().unwrap_or(0), cx.now))
        .collect();
    let s = cx.state.settings();
    let page = AccountsPage {
        chrome: cx.chrome("accounts"),
        accounts,
        open_links: cx.state.store.open_connect_links(cx.now)?,
        configured: !s.client_id.is_empty() && !s.client_secret.is_empty(),
    };
    Ok(html(StatusCode::OK, &page))
}

fn row(a: &Account, listeners: usize, now: u64) -> AccountRow {
    let (expiry_state, expiry) = match a.token_expires_at.map(|s| s * 1000) {
        None => ("ok", "Never (System User token)".to_string()),
        Some(at) if at <= now => ("bad", format!("Expired {}", stamp(at, now).ago)),
        Some(at) if at - now < EXPIRY_WARNING_MS => {
            ("warn", format!("{} ({})", utc(at), stamp(at, now).ago))
        }
        Some(at) => ("ok", utc(at)),
    };
    let needs_reconnect = a.status == AccountStatus::NeedsReconnect || expiry_state == "bad";
    let status_reason = match (a.status_reason.as_ref().map(reason_text), expiry_state) {
        (Some(r), _) => r,
        (None, "bad") => "The Meta token expired: the customer must reconnect.".into(),
        _ => String::new(),
    };
    AccountRow {
        id: a.id.clone(),
        name: a.name.clone(),
        waba_ids: a.waba_ids.clone(),
        expiry_state,
        expiry,
        needs_reconnect,
        status_reason,
        listeners,
    }
}

/// A reason as a sentence: Meta's error reads "Meta error 190: … (fbtrace_id …)".
fn reason_text(reason: &Value) -> String {
    if let Some(text) = reason.as_str() {
        return text.to_string();
    }
    let field = |k: &str| {
        reason.get(k).filter(|v| !v.is_null()).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let mut out = match (field("code"), field("message")) {
        (Some(code), Some(message)) => format!("Meta error {code}: {message}"),
        (None, Some(message)) => message,
        (Some(code), None) => format!("Meta error {code}"),
        (None, None) => reason.to_string(),
    };
    if let Some(trace) = field("fbtrace_id") {
        out.push_str(&format!(" (fbtrace_id {trace})"));
    }
    out
}

pub async fn add(cx: &Ctx<'_>, form: &Form) -> Result<Done, Error> {
    let wabas: Vec<String> = form
        .get("wabaIds")
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let name = Some(form.get("name").to_string());
    let (account, api_key) =
        connect_account(cx.state, form.get("accessToken"), name, wabas).await?;
    let wabas = if account.waba_ids.is_empty() {
        "no WABA yet".to_string()
    } else {
        account.waba_ids.join(", ")
    };
    Ok(Done::to(
        "/admin/accounts",
        Flash::ok(format!(
            "Account \"{}\" added ({wabas}). Its API key is shown this once: copy it into the flow tool now.",
            account.name
        ))
        .with_secret(api_key),
    ))
}

pub async fn rotate_key(cx: &Ctx<'_>, id: &str) -> Result<Done, Error> {
    let account = cx
        .state
        .store
        .account(id)?
        .ok_or(Error::NotFound("account"))?;
    let api_key = new_token("wbk");
    if !cx
        .state
        .store
        .rotate_api_key(id.to_string(), token_hash(&api_key))
        .await?
    {
        return Err(Error::NotFound("account"));
    }
    tracing::info!(account = %id, "API key rotated from the backoffice");
    Ok(Done::to(
        "/admin/accounts",
        Flash::ok(format!(
            "New API key for \"{}\". The old key no longer works. Copy this one now: it is shown only once.",
            account.name
        ))
        .with_secret(api_key),
    ))
}

pub async fn remove(cx: &Ctx<'_>, id: &str) -> Result<Done, Error> {
    let account = cx
        .state
        .store
        .account(id)?
        .ok_or(Error::NotFound("account"))?;
    if !cx.state.store.delete_account(id.to_string()).await? {
        return Err(Error::NotFound("account"));
    }
    tracing::info!(account = %id, "account removed from the backoffice");
    Ok(Done::to(
        "/admin/accounts",
        Flash::ok(format!(
            "Account \"{}\" removed, with its API key and listeners.",
            account.name
        )),
    ))
}

/// Merge seam: mints a one-time `/connect?link=` URL. The OAuth work serves
/// `/connect` and takes the link with `Store::take_connect_link`.
pub async fn mint_link(cx: &Ctx<'_>) -> Result<Done, Error> {
    let token = new_token("wbl");
    let expires = cx.now + CONNECT_LINK_TTL_MS;
    cx.state.store.insert_connect_link(&token, expires).await?;
    let url = format!("{}/connect?link={token}", cx.state.public_url);
    Ok(Done::to(
        "/admin/accounts",
        Flash::ok(format!(
            "Connect link created. Send it to your customer: it works once, until {}.",
            utc(expires)
        ))
        .with_secret(url),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reason_reads_as_a_sentence() {
        assert_eq!(reason_text(&json!("Token revoked")), "Token revoked");
        assert_eq!(
            reason_text(&json!({"code": 190, "message": "Session expired", "fbtrace_id": "Ab1"})),
            "Meta error 190: Session expired (fbtrace_id Ab1)"
        );
    }
}
