//! What a key may touch, and Graph calls made with its account's token.
//! A WABA is the account's when it is in `wabaIds`; a phone number is when it
//! belongs to one of those WABAs, which is asked of Meta with the account's own
//! token (listing the WABA's numbers) and then remembered. So Meta is never
//! called with one account's token about another account's number.
//!
//! Every Graph call made with an account's token runs through [`on_account`]:
//! when Meta refuses the token there, the account shows `needs_reconnect` at
//! once instead of at the token keeper's next round.

use std::sync::PoisonError;

use serde_json::Value;

use super::blocking;
use super::Services;
use crate::domain::ids::{PhoneNumberId, WabaId};
use crate::domain::model::{Account, AccountStatus};
use crate::domain::sandbox::{self, SandboxNumber};
use crate::domain::time::now_ms;
use crate::domain::tokens::{apply, reason_from_meta, token_refused, Verdict};
use crate::domain::{coexistence, throughput};
use crate::error::{Error, Held};
use crate::meta::{next_cursor, AccountToken, Download, FilePart, Graph, MetaError};

/// At most this many pages are followed in one listing, whatever Meta says.
const MAX_PAGES: usize = 50;

/// Meta's ids are digits; anything else never reaches a Graph URL.
pub fn is_meta_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit())
}

pub fn own_waba(account: &Account, waba_id: &str) -> Result<WabaId, Error> {
    if account.waba_ids.iter().any(|w| w == waba_id) {
        return Ok(WabaId::new(waba_id));
    }
    Err(Error::NotYours {
        what: Held::Waba,
        id: waba_id.to_string(),
        wabas: account.waba_ids.clone(),
    })
}

/// A phone number the account may use, and the WABA it belongs to.
/// Only [`own_phone_number`] makes one: holding it proves the check was made.
#[derive(Debug, Clone)]
pub struct Number {
    id: PhoneNumberId,
    waba: WabaId,
}

impl Number {
    pub fn id(&self) -> &PhoneNumberId {
        &self.id
    }

    pub fn waba(&self) -> &WabaId {
        &self.waba
    }
}

/// The phone number `phone_number_id` if it is the account's.
pub async fn own_phone_number(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
) -> Result<Number, Error> {
    let number = |waba: &str| Number {
        id: PhoneNumberId::new(phone_number_id),
        waba: WabaId::new(waba),
    };
    let refuse = || Error::NotYours {
        what: Held::PhoneNumber,
        id: phone_number_id.to_string(),
        wabas: account.waba_ids.clone(),
    };
    if !is_meta_id(phone_number_id) {
        return Err(refuse());
    }
    if let Some(waba) = app.store.phone_number_waba(phone_number_id)? {
        return if account.waba_ids.contains(&waba) {
            Ok(number(&waba))
        } else {
            Err(refuse())
        };
    }
    for waba in &account.waba_ids {
        let numbers = phone_numbers(app, account, waba).await?;
        if numbers
            .iter()
            .any(|n| n.get("id").and_then(Value::as_str) == Some(phone_number_id))
        {
            return Ok(number(waba));
        }
    }
    Err(refuse())
}

/// Every phone number of a WABA, as Meta lists them; the pairs are remembered.
pub async fn phone_numbers(
    app: &Services,
    account: &Account,
    waba_id: &str,
) -> Result<Vec<Value>, Error> {
    if !is_meta_id(waba_id) {
        return Err(Error::invalid("wabaId", "a WABA ID is a number"));
    }
    let fields = "id,display_phone_number,verified_name,quality_rating,code_verification_status,platform_type,status,name_status,throughput";
    let list = |fields: String| {
        let paging = Paging {
            limit: 1000,
            after: None,
        };
        let query = vec![("fields".into(), fields)];
        paged(
            app,
            account,
            format!("{waba_id}/phone_numbers"),
            query,
            paging,
        )
    };
    // Every ownership check of a number not seen before lists its WABA: a
    // Meta that stopped knowing the coexistence field (code 100, an unknown
    // field) must not fail them all.
    let page = match list(format!("{fields},is_on_biz_app")).await {
        Err(Error::Meta(e)) if e.code == 100 => {
            tracing::warn!(code = e.code, message = %e.message, "Meta refused is_on_biz_app; listing the numbers without it");
            list(fields.to_string()).await?
        }
        other => other?,
    };
    let pairs = page
        .items
        .iter()
        .filter_map(|n| n.get("id").and_then(Value::as_str))
        .map(|id| (id.to_string(), waba_id.to_string()))
        .collect();
    app.store.remember_phone_numbers(pairs).await?;
    learn_rates(app, waba_id, &page.items).await?;
    Ok(page.items)
}

/// What a WABA's listing says of its numbers' throughput: a coexistence
/// number sends at Meta's 20 a second from now on, a number Meta upgraded
/// (`throughput.level: HIGH`) at 1,000 (within the ceiling: see
/// `domain::throughput`), and the store keeps both for the next start and
/// the backoffice. Numbers no longer marked go back to the ordinary rate.
async fn learn_rates(app: &Services, waba_id: &str, numbers: &[Value]) -> Result<(), Error> {
    let coexistence = throughput::numbers_where(numbers, coexistence::is_coexistence);
    let high = throughput::numbers_where(numbers, throughput::is_high_throughput);
    {
        let mut rates = app.send_rate.lock().unwrap_or_else(PoisonError::into_inner);
        let ids = numbers
            .iter()
            .filter_map(|n| n.get("id").and_then(Value::as_str));
        for id in ids {
            let is = |list: &[String]| list.iter().any(|n| n == id);
            let own = if is(&coexistence) {
                Some(coexistence::RATE)
            } else if is(&high) {
                Some(throughput::HIGH_RATE)
            } else {
                None
            };
            rates.set_rate_for(&PhoneNumberId::new(id), own);
        }
    }
    app.store
        .set_number_facts(waba_id.to_string(), coexistence, high)
        .await
}

/// How much of a paged Graph listing to fetch.
pub struct Paging {
    pub limit: usize,
    pub after: Option<String>,
}

pub struct Page {
    pub items: Vec<Value>,
    /// Set when the limit cut the listing short: where to continue.
    pub next_cursor: Option<String>,
}

/// Follows Meta's cursors until the listing ends or `limit` items are in.
pub async fn paged(
    app: &Services,
    account: &Account,
    path: String,
    query: Vec<(String, String)>,
    paging: Paging,
) -> Result<Page, Error> {
    let call = AccountCall::new(app, account);
    on_account(app, account, move || {
        let mut items = Vec::new();
        let mut after = paging.after;
        for _ in 0..MAX_PAGES {
            let want = (paging.limit - items.len()).min(100).to_string();
            let mut q: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            q.push(("limit", &want));
            if let Some(cursor) = &after {
                q.push(("after", cursor));
            }
            let page = call.get(&path, &q)?;
            // Meta's groups listing may nest its items as `data.groups`.
            let data = page.get("data").and_then(|d| {
                d.as_array()
                    .or_else(|| d.get("groups").and_then(Value::as_array))
            });
            items.extend(data.into_iter().flatten().cloned());
            after = next_cursor(&page);
            if after.is_none() {
                items.truncate(paging.limit);
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            if items.len() >= paging.limit {
                items.truncate(paging.limit);
                return Ok(Page {
                    items,
                    next_cursor: after,
                });
            }
        }
        Ok(Page {
            items,
            next_cursor: after,
        })
    })
    .await
}

/// A Graph client bound to one account's token, to move onto the blocking pool.
/// A sandbox account's calls are answered by wabridge (`domain::sandbox`):
/// Meta never sees its made-up token.
pub struct AccountCall {
    graph: Graph,
    token: String,
    app_secret: String,
    sandbox: Option<SandboxNumber>,
}

impl AccountCall {
    pub fn new(app: &Services, account: &Account) -> AccountCall {
        AccountCall {
            graph: app.graph.clone(),
            token: account.access_token.clone(),
            app_secret: app.settings().client_secret,
            sandbox: account.sandbox.clone(),
        }
    }

    fn token(&self) -> AccountToken<'_> {
        AccountToken {
            token: &self.token,
            app_secret: Some(&self.app_secret),
        }
    }

    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        match &self.sandbox {
            Some(number) => sandbox::graph_get(number, path),
            None => self.graph.get(path, &self.token(), query),
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        match &self.sandbox {
            Some(number) => sandbox::graph_post(number, path, body),
            None => self.graph.post_json(path, &self.token(), body),
        }
    }

    pub fn delete(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        match &self.sandbox {
            Some(_) => sandbox::graph_delete(path),
            None => self.graph.delete(path, &self.token(), query),
        }
    }

    pub fn delete_json(&self, path: &str, body: &Value) -> Result<Value, Error> {
        match &self.sandbox {
            Some(_) => sandbox::graph_delete(path),
            None => self.graph.delete_json(path, &self.token(), body),
        }
    }

    pub fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: &FilePart<'_>,
    ) -> Result<Value, Error> {
        match &self.sandbox {
            Some(number) => sandbox::graph_post(number, path, &Value::Null),
            None => self.graph.post_multipart(path, &self.token(), fields, file),
        }
    }

    /// A file at Meta (a media URL Meta gave), fetched with the account's token.
    pub fn download(&self, url: &str, limit: usize) -> Result<Download, Error> {
        match &self.sandbox {
            Some(_) => Err(Error::Sandbox(
                "a sandbox account has no media at Meta to download".into(),
            )),
            None => self.graph.download(url, &self.token, limit),
        }
    }
}

/// One Graph GET on the blocking pool.
pub async fn get(
    app: &Services,
    account: &Account,
    path: String,
    query: Vec<(&'static str, String)>,
) -> Result<Value, Error> {
    with_query(app, account, path, query, AccountCall::get).await
}

/// One Graph JSON POST on the blocking pool.
pub async fn post(
    app: &Services,
    account: &Account,
    path: String,
    body: Value,
) -> Result<Value, Error> {
    let call = AccountCall::new(app, account);
    on_account(app, account, move || call.post(&path, &body)).await
}

/// One Graph DELETE on the blocking pool.
pub async fn delete(
    app: &Services,
    account: &Account,
    path: String,
    query: Vec<(&'static str, String)>,
) -> Result<Value, Error> {
    with_query(app, account, path, query, AccountCall::delete).await
}

/// One Graph DELETE with a JSON body on the blocking pool.
pub async fn delete_json(
    app: &Services,
    account: &Account,
    path: String,
    body: Value,
) -> Result<Value, Error> {
    let call = AccountCall::new(app, account);
    on_account(app, account, move || call.delete_json(&path, &body)).await
}

/// `AccountCall::get` or `::delete`: a path and its query.
type QueryCall = fn(&AccountCall, &str, &[(&str, &str)]) -> Result<Value, Error>;

/// A Graph call whose arguments are in the query, on the blocking pool.
async fn with_query(
    app: &Services,
    account: &Account,
    path: String,
    query: Vec<(&'static str, String)>,
    call_with: QueryCall,
) -> Result<Value, Error> {
    let call = AccountCall::new(app, account);
    on_account(app, account, move || {
        let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        call_with(&call, &path, &q)
    })
    .await
}

/// Runs Graph calls made with `account`'s token on the blocking pool. When Meta
/// refuses that token (190 and the like), the account is marked
/// `needs_reconnect` with Meta's reason, as the token keeper would on its round.
pub async fn on_account<T: Send + 'static>(
    app: &Services,
    account: &Account,
    calls: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let result = blocking(calls).await;
    if let Err(Error::Meta(e)) = &result {
        if token_refused(e) {
            token_refused_by_meta(app, account, e).await;
        }
    }
    result
}

async fn token_refused_by_meta(app: &Services, account: &Account, e: &MetaError) {
    let used = account.access_token.clone();
    let verdict = Verdict::Refused(reason_from_meta(e));
    let now = now_ms();
    let marked = app
        .store
        .update_account(account.id.clone(), move |stored| {
            // A reconnect meanwhile brought a new token; a marked account keeps its first reason.
            if stored.access_token != used || stored.status == AccountStatus::NeedsReconnect {
                return false;
            }
            apply(stored, &verdict, now);
            true
        })
        .await;
    match marked {
        Ok(_) => {
            tracing::warn!(account = %account.id, code = e.code, "Meta refused the account's token during a flow call: account needs a reconnect")
        }
        Err(err) => {
            tracing::warn!(account = %account.id, error = %err, "could not mark the account needs_reconnect")
        }
    }
}
