//! The Accounts page: connected accounts and their health, adding one from a
//! pasted token, connect links for customers, API key rotation, removal.

use std::collections::HashMap;

use askama::Template;
use hyper::StatusCode;

use super::views::{stamp, utc, Chrome};
use super::{html, Ctx, Done, Form, ACCOUNTS};
use crate::domain::ids::AccountId;
use crate::domain::model::{Account, AccountStatus, WabaFacts};
use crate::error::Error;
use crate::http::response::Resp;
use crate::http::session::Flash;
use crate::usecase::accounts::{self, PastedToken};
use crate::usecase::{connect, sandbox};

/// A token that ends sooner than this gets an amber warning.
const EXPIRY_WARNING_MS: u64 = 7 * 24 * 3600 * 1000;

pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub wabas: Vec<WabaRow>,
    /// ok, warn or bad.
    pub expiry_state: &'static str,
    pub expiry: String,
    pub needs_reconnect: bool,
    pub status_reason: String,
    pub listeners: usize,
    /// A sandbox's made-up number, shown instead of a token's expiry.
    pub sandbox_number: Option<String>,
}

/// One WABA of an account, with what wabridge learned of it.
pub struct WabaRow {
    pub id: String,
    /// When Meta said the WABA's business accepted the MM Lite terms.
    pub marketing_since: Option<String>,
    /// Its numbers that stay in the WhatsApp Business app (20 messages/s).
    pub coexistence_numbers: Vec<String>,
}

/// A connect link a customer could still use.
pub struct LinkRow {
    pub id: String,
    pub created: String,
    pub expires: String,
    /// For a WhatsApp Business app number (coexistence onboarding).
    pub coexistence: bool,
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<AccountRow>,
    open_links: Vec<LinkRow>,
    configured: bool,
}

pub async fn page(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let mut listeners: HashMap<String, usize> = HashMap::new();
    for l in cx.state.store.listeners()? {
        *listeners.entry(l.account_id).or_default() += 1;
    }
    let mut accounts = Vec::new();
    for a in cx.state.store.accounts()? {
        let facts = cx.state.store.waba_facts(&a.waba_ids)?;
        let listeners = listeners.get(&a.id).copied().unwrap_or(0);
        accounts.push(row(&a, listeners, cx.now, facts));
    }
    let s = cx.state.settings();
    let page = AccountsPage {
        chrome: cx.chrome("accounts"),
        accounts,
        open_links: cx
            .state
            .store
            .open_connect_links(cx.now)?
            .into_iter()
            .map(|l| LinkRow {
                id: l.id,
                created: stamp(l.created_at, cx.now).ago,
                expires: utc(l.expires_at),
                coexistence: l.coexistence,
            })
            .collect(),
        configured: s.is_configured(),
    };
    Ok(html(StatusCode::OK, &page))
}

fn row(a: &Account, listeners: usize, now: u64, wabas: Vec<(String, WabaFacts)>) -> AccountRow {
    let (expiry_state, expiry) = match a.token_expires_at.map(|s| s.saturating_mul(1000)) {
        None => ("ok", "Never (System User token)".to_string()),
        Some(at) if at <= now => ("bad", format!("Expired {}", stamp(at, now).ago)),
        Some(at) if at - now < EXPIRY_WARNING_MS => {
            ("warn", format!("{} ({})", utc(at), stamp(at, now).ago))
        }
        Some(at) => ("ok", utc(at)),
    };
    let needs_reconnect = a.status == AccountStatus::NeedsReconnect || expiry_state == "bad";
    // The token keeper's reason is already a sentence with Meta's code, message and fbtrace_id.
    let status_reason = match (a.status_reason.clone(), expiry_state) {
        (Some(r), _) => r,
        (None, "bad") => "The Meta token expired: the customer must reconnect.".into(),
        _ => String::new(),
    };
    AccountRow {
        id: a.id.clone(),
        name: a.name.clone(),
        wabas: wabas
            .into_iter()
            .map(|(id, facts)| WabaRow {
                id,
                marketing_since: facts.marketing.map(|m| utc(m.at)),
                coexistence_numbers: facts.coexistence_numbers,
            })
            .collect(),
        expiry_state,
        expiry,
        needs_reconnect,
        status_reason,
        listeners,
        sandbox_number: a.sandbox.as_ref().map(|n| {
            format!(
                "{} (phone number ID {})",
                n.display_phone_number, n.phone_number_id
            )
        }),
    }
}

pub async fn add(cx: &Ctx<'_>, form: &Form) -> Result<Done, Error> {
    let pasted = PastedToken {
        access_token: form.get("accessToken").to_string(),
        name: Some(form.get("name").to_string()),
        waba_ids: form.list("wabaIds"),
    };
    let (account, api_key) = accounts::add(cx.state, pasted).await?;
    let wabas = if account.waba_ids.is_empty() {
        "no WABA yet".to_string()
    } else {
        account.waba_ids.join(", ")
    };
    Ok(Done::to(
        ACCOUNTS,
        Flash::ok(format!(
            "Account \"{}\" added ({wabas}). Its API key is shown this once: copy it into the flow tool now.",
            account.name
        ))
        .with_secret(api_key.0),
    ))
}

/// A sandbox account, to try a flow tool end to end before Meta is set up.
pub async fn add_sandbox(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    let (account, api_key) = sandbox::create(cx.state, None).await?;
    let number = account
        .sandbox
        .as_ref()
        .map_or("", |n| n.phone_number_id.as_str());
    Ok(Done::to(
        ACCOUNTS,
        Flash::ok(format!(
            "Sandbox added: WABA {}, phone number ID {number}. Its API key is shown this once: put it in the flow tool, then run `wabridge simulate --sandbox-key <key>`.",
            account.waba_ids.join(", ")
        ))
        .with_secret(api_key.0),
    ))
}

pub async fn rotate_key(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    let id = AccountId::new(cx.param("accountId"));
    let account = accounts::get(cx.state, &id)?;
    let api_key = accounts::rotate_key(cx.state, &id).await?;
    Ok(Done::to(
        ACCOUNTS,
        Flash::ok(format!(
            "New API key for \"{}\". The old key no longer works. Copy this one now: it is shown only once.",
            account.name
        ))
        .with_secret(api_key.0),
    ))
}

pub async fn remove(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    let id = AccountId::new(cx.param("accountId"));
    let account = accounts::get(cx.state, &id)?;
    accounts::remove(cx.state, &id).await?;
    Ok(Done::to(
        ACCOUNTS,
        Flash::ok(format!(
            "Account \"{}\" removed, with its API key and listeners.",
            account.name
        )),
    ))
}

/// Mints a one-time `/connect?link=` URL for a customer, as the admin API does
/// (see docs/connect.md), with the default lifetime; for a WhatsApp Business
/// app number (coexistence) when the box is ticked.
pub async fn mint_link(cx: &Ctx<'_>, form: &Form) -> Result<Done, Error> {
    let coexistence = !form.get("coexistence").is_empty();
    let link = connect::mint_link(cx.state, None, coexistence).await?;
    let kind = if coexistence {
        " It connects a number the customer keeps using in the WhatsApp Business app (coexistence)."
    } else {
        ""
    };
    Ok(Done::to(
        ACCOUNTS,
        Flash::ok(format!(
            "Connect link created. Send it to your customer: it works once, until {}.{kind}",
            utc(link.expires_at)
        ))
        .with_secret(link.url),
    ))
}

/// Withdraws a link that has not connected anyone yet.
pub async fn revoke_link(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    connect::revoke_link(cx.state, cx.param("linkId")).await?;
    Ok(Done::to(
        ACCOUNTS,
        Flash::ok("Connect link revoked: it no longer connects anyone."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(expires_at: Option<u64>, status: AccountStatus, reason: Option<&str>) -> Account {
        Account {
            id: "acc_1".into(),
            name: "Shop".into(),
            waba_ids: vec!["W1".into()],
            business_account_id: Some("W1".into()),
            access_token: "t".into(),
            token_expires_at: expires_at,
            meta_user_id: None,
            api_key_hash: "h".into(),
            created_at: 0,
            status,
            status_reason: reason.map(str::to_string),
            token_checked_at: None,
            sandbox: None,
        }
    }

    #[test]
    fn the_token_keepers_reason_is_shown_as_it_wrote_it() {
        let reason = "Meta error 190: Session expired (fbtrace_id Ab1). Reconnect the account through a new connect link.";
        let r = row(
            &account(None, AccountStatus::NeedsReconnect, Some(reason)),
            0,
            1_000,
            Vec::new(),
        );
        assert!(r.needs_reconnect);
        assert_eq!(r.status_reason, reason);

        let expired = row(
            &account(Some(1), AccountStatus::Ok, None),
            0,
            5_000,
            Vec::new(),
        );
        assert!(expired.needs_reconnect);
        assert_eq!(expired.expiry_state, "bad");
        assert_eq!(
            expired.status_reason,
            "The Meta token expired: the customer must reconnect."
        );

        let fine = row(
            &account(None, AccountStatus::Ok, None),
            0,
            1_000,
            Vec::new(),
        );
        assert!(!fine.needs_reconnect);
        assert!(fine.status_reason.is_empty());
    }
}
