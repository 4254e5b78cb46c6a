//! Meta's webhook subscription of every connected WABA, checked live with the
//! account's token: the guide's "both triggers silent" row, where the
//! per-WABA subscription failed or was removed in Meta's dashboard.

use std::collections::HashMap;

use askama::Template;
use hyper::StatusCode;

use super::views::{user_message, utc, Chrome};
use super::{html, Ctx, Done, Form, SUBSCRIPTIONS};
use crate::error::Error;
use crate::http::response::Resp;
use crate::http::session::Flash;
use crate::usecase::subscriptions::{is_subscribed, subscribe_connected};

pub struct SubscriptionRow {
    pub account: String,
    pub waba_id: String,
    pub listeners: usize,
    /// ok, bad or warn.
    pub state: &'static str,
    pub label: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/subscriptions.html")]
struct SubscriptionsPage {
    chrome: Chrome,
    rows: Vec<SubscriptionRow>,
    configured: bool,
    checked_at: String,
}

/// One Graph call per WABA, one after another: a page for the admin to open
/// when events stop, not one to keep open.
pub async fn page(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let configured = !cx.state.settings().client_id.is_empty();
    let mut per_waba: HashMap<String, usize> = HashMap::new();
    for l in cx.state.store.listeners()? {
        *per_waba.entry(l.waba_id).or_default() += 1;
    }
    let mut rows = Vec::new();
    // A sandbox has no subscription at Meta to check.
    let real = cx
        .state
        .store
        .accounts()?
        .into_iter()
        .filter(|a| a.sandbox.is_none());
    for account in real {
        for waba_id in &account.waba_ids {
            let checked = if configured {
                Some(is_subscribed(cx.state, &account, waba_id).await)
            } else {
                None
            };
            let (state, label, detail) = verdict(checked);
            rows.push(SubscriptionRow {
                account: account.name.clone(),
                waba_id: waba_id.clone(),
                listeners: per_waba.get(waba_id).copied().unwrap_or(0),
                state,
                label,
                detail,
            });
        }
    }
    let page = SubscriptionsPage {
        chrome: cx.chrome("listeners"),
        rows,
        configured,
        checked_at: utc(cx.now),
    };
    Ok(html(StatusCode::OK, &page))
}

fn verdict(checked: Option<Result<bool, Error>>) -> (&'static str, &'static str, String) {
    match checked {
        None => ("warn", "Not checked", "Set the App ID on Setup first: it is how this app is recognised among the WABA's subscribed apps.".into()),
        Some(Ok(true)) => ("ok", "Subscribed", String::new()),
        Some(Ok(false)) => ("bad", "Not subscribed", "Meta sends this WABA's events to no webhook of this app, so its triggers stay silent. Subscribe it here (starting a trigger in a flow tool does the same).".into()),
        Some(Err(e)) => ("warn", "Could not check", user_message(&e)),
    }
}

/// `POST /{waba}/subscribed_apps` with the token of the account that has the WABA.
pub async fn subscribe_waba(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    let waba_id = cx.param("wabaId");
    let already = subscribe_connected(cx.state, waba_id).await?;
    Ok(Done::to(
        SUBSCRIPTIONS,
        Flash::ok(if already {
            format!("WABA {waba_id} was already subscribed to this app.")
        } else {
            format!("WABA {waba_id} subscribed: Meta now sends its events to this gateway.")
        }),
    ))
}
