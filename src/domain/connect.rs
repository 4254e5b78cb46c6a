//! Connecting a customer's WhatsApp Business Account: connect links, the URLs a
//! login goes through, which WABAs a login grants, and reconnects.

use std::time::Duration;

use serde_json::Value;

use super::accounts::REQUIRED_SCOPES;
use super::ids::{new_id, new_token};
use super::model::{Account, AccountStatus, ConnectLink, PendingLogin};
use crate::error::Error;

/// How long a connect link lasts when the admin does not say.
pub const LINK_TTL_DEFAULT_HOURS: u64 = 7 * 24;
/// Longest a connect link may last: it is a bearer secret in an e-mail or a chat.
pub const LINK_TTL_MAX_HOURS: u64 = 30 * 24;

/// A connect link just minted. `secret` goes to the customer, once: only its
/// SHA-256 is stored.
#[derive(Debug, Clone)]
pub struct MintedLink {
    pub secret: String,
    pub link: ConnectLink,
}

/// A new link that lasts `expires_in_hours` (default 7 days; from 1 hour to 30 days).
pub fn new_link(now_ms: u64, expires_in_hours: Option<u64>) -> Result<MintedLink, Error> {
    let hours = expires_in_hours.unwrap_or(LINK_TTL_DEFAULT_HOURS);
    if !(1..=LINK_TTL_MAX_HOURS).contains(&hours) {
        return Err(Error::invalid(
            "expiresInHours",
            format!("must be between 1 and {LINK_TTL_MAX_HOURS} (30 days)"),
        ));
    }
    Ok(MintedLink {
        secret: new_token("wbl"),
        link: ConnectLink {
            id: new_id("lnk"),
            created_at: now_ms,
            expires_at: expiry(now_ms, Duration::from_secs(hours * 3600)),
            used_at: None,
            account_id: None,
            coexistence: false,
        },
    })
}

/// The URL a customer opens. The secret is base64url: nothing in it needs
/// escaping in a query.
pub fn connect_url(public_url: &str, secret: &str) -> String {
    format!("{public_url}{}?link={secret}", super::paths::CONNECT)
}

/// Why a connect link or a login `state` cannot be used (any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Unknown,
    Expired,
    Used,
}

/// A connect link works until it expires or until a login through it connected an account.
/// It is not spent when a login starts, so a customer who cancelled can try again.
pub fn check_link(link: Option<&ConnectLink>, now_ms: u64) -> Result<(), Unusable> {
    let link = link.ok_or(Unusable::Unknown)?;
    if link.used_at.is_some() {
        Err(Unusable::Used)
    } else if link.expires_at <= now_ms {
        Err(Unusable::Expired)
    } else {
        Ok(())
    }
}

/// A login's `state` works once and only before it expires.
pub fn usable_login(login: Option<PendingLogin>, now_ms: u64) -> Result<PendingLogin, Unusable> {
    match login {
        None => Err(Unusable::Unknown),
        Some(l) if l.expires_at <= now_ms => Err(Unusable::Expired),
        Some(l) => Ok(l),
    }
}

pub fn expiry(now_ms: u64, ttl: Duration) -> u64 {
    now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

/// Meta's OAuth dialog (plain OAuth). `auth_type=rerequest` makes Meta ask again
/// for permissions a previous login declined, instead of silently reusing that grant.
pub fn oauth_dialog_url(
    facebook_url: &str,
    graph_version: &str,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("state", state)
        .append_pair("scope", &REQUIRED_SCOPES.join(","))
        .append_pair("auth_type", "rerequest")
        .finish();
    format!("{facebook_url}/{graph_version}/dialog/oauth?{query}")
}

/// Our Embedded Signup page, as the connector plugin serves it.
pub fn signup_url(signup_page: &str, state: &str, redirect_uri: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("state", state)
        .append_pair("redirect_uri", redirect_uri)
        .finish();
    format!("{signup_page}?{query}")
}

/// The WABAs of `/me/businesses?fields=owned_whatsapp_business_accounts,client_whatsapp_business_accounts`:
/// the ones the user's businesses own and the ones they manage for clients.
pub fn wabas_from_businesses(answer: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let businesses = answer.get("data").and_then(Value::as_array);
    for business in businesses.into_iter().flatten() {
        for edge in [
            "owned_whatsapp_business_accounts",
            "client_whatsapp_business_accounts",
        ] {
            let wabas = business
                .get(edge)
                .and_then(|e| e.get("data"))
                .and_then(Value::as_array);
            for id in wabas.into_iter().flatten().filter_map(meta_id) {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
    }
    out
}

/// Which business portfolio owns which WABA, as `/me/businesses` lists them:
/// (business, WABA). The WABAs a business manages for clients are another
/// business's, so they are not in it.
pub fn owned_wabas(answer: &Value) -> Vec<(String, String)> {
    let businesses = answer.get("data").and_then(Value::as_array);
    let mut out = Vec::new();
    for business in businesses.into_iter().flatten() {
        let Some(business_id) = meta_id(business) else {
            continue;
        };
        let owned = business
            .pointer("/owned_whatsapp_business_accounts/data")
            .and_then(Value::as_array);
        for waba in owned.into_iter().flatten().filter_map(meta_id) {
            out.push((business_id.clone(), waba));
        }
    }
    out
}

/// The portfolio that owns a WABA, from `GET /{waba}?fields=owner_business_info`.
pub fn owner_business(waba: &Value) -> Option<String> {
    meta_id(waba.get("owner_business_info")?)
}

/// Meta sends ids as strings; tolerate numbers too.
fn meta_id(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The WABA components use by default: the one the customer picked in the signup
/// wizard when the token really grants it (the browser's word alone proves nothing),
/// otherwise the first one granted.
pub fn default_waba(granted: &[String], picked: Option<&str>) -> Option<String> {
    picked
        .filter(|p| granted.iter().any(|g| g == p))
        .map(str::to_string)
        .or_else(|| granted.first().cloned())
}

/// A login by the same Meta user on a WABA an account already has is a reconnect
/// of that account, not a new one.
pub fn reconnect_target<'a>(
    accounts: &'a [Account],
    meta_user_id: Option<&str>,
    wabas: &[String],
) -> Option<&'a Account> {
    let user = meta_user_id?;
    accounts.iter().find(|a| {
        a.meta_user_id.as_deref() == Some(user) && a.waba_ids.iter().any(|w| wabas.contains(w))
    })
}

/// The existing account with the fresh login's token and WABAs. Its id, name,
/// API key and listeners stay, so running flows keep working.
pub fn reconnected(existing: &Account, fresh: &Account) -> Account {
    let business_account_id = existing
        .business_account_id
        .clone()
        .filter(|w| fresh.waba_ids.contains(w))
        .or_else(|| fresh.business_account_id.clone());
    Account {
        waba_ids: fresh.waba_ids.clone(),
        business_account_id,
        access_token: fresh.access_token.clone(),
        token_expires_at: fresh.token_expires_at,
        status: AccountStatus::Ok,
        status_reason: None,
        token_checked_at: fresh.token_checked_at,
        // A login is Meta's: what it reconnects is a real account.
        sandbox: None,
        ..existing.clone()
    }
}

/// JSON for a `<script type="application/json">` island: `<`, `>` and `&` can then
/// never close the element or start markup, and U+2028/2029 never end a line in
/// older JavaScript parsers.
pub fn script_json(value: &Value) -> String {
    let raw = value.to_string();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::ConnectFlow;
    use serde_json::json;

    fn account(id: &str, user: &str, wabas: &[&str]) -> Account {
        Account {
            id: id.into(),
            name: "Shop".into(),
            waba_ids: wabas.iter().map(|w| w.to_string()).collect(),
            business_account_id: wabas.first().map(|w| w.to_string()),
            access_token: format!("token-{id}"),
            token_expires_at: Some(1),
            meta_user_id: Some(user.into()),
            api_key_hash: format!("key-{id}"),
            created_at: 1,
            status: AccountStatus::NeedsReconnect,
            status_reason: Some("expired".into()),
            token_checked_at: None,
            sandbox: None,
        }
    }

    #[test]
    fn a_new_link_lasts_a_week_unless_told_and_at_most_thirty_days() {
        let week = new_link(1_000, None).unwrap();
        assert!(week.secret.starts_with("wbl_") && week.link.id.starts_with("lnk_"));
        assert_eq!(week.link.created_at, 1_000);
        assert_eq!(week.link.expires_at, 1_000 + 7 * 24 * 3_600_000);
        assert_eq!((week.link.used_at, week.link.account_id), (None, None));
        let longest = new_link(0, Some(LINK_TTL_MAX_HOURS)).unwrap();
        assert_eq!(longest.link.expires_at, 30 * 24 * 3_600_000);
        for hours in [0, LINK_TTL_MAX_HOURS + 1] {
            let refused = new_link(0, Some(hours));
            assert!(
                matches!(&refused, Err(Error::Invalid { field, .. }) if *field == "expiresInHours"),
                "{hours}: {refused:?}"
            );
        }
        assert_ne!(new_link(0, None).unwrap().secret, week.secret);
        assert_eq!(
            connect_url("https://gw.example", &week.secret),
            format!("https://gw.example/connect?link={}", week.secret)
        );
    }

    #[test]
    fn a_link_works_until_used_or_expired() {
        let mut link = ConnectLink {
            id: "lnk".into(),
            created_at: 0,
            expires_at: 100,
            used_at: None,
            account_id: None,
            coexistence: false,
        };
        assert_eq!(check_link(Some(&link), 99), Ok(()));
        assert_eq!(check_link(Some(&link), 100), Err(Unusable::Expired));
        link.used_at = Some(50);
        assert_eq!(check_link(Some(&link), 60), Err(Unusable::Used));
        assert_eq!(check_link(None, 0), Err(Unusable::Unknown));
    }

    #[test]
    fn a_login_expires() {
        let login = PendingLogin {
            flow: ConnectFlow::OAuth,
            link_hash: None,
            expires_at: 10,
            coexistence: false,
        };
        assert_eq!(usable_login(Some(login.clone()), 9), Ok(login.clone()));
        assert_eq!(usable_login(Some(login), 10), Err(Unusable::Expired));
        assert_eq!(usable_login(None, 0), Err(Unusable::Unknown));
    }

    #[test]
    fn the_dialog_url_asks_for_the_whatsapp_scopes_again() {
        let url = oauth_dialog_url(
            "https://www.facebook.com",
            "v25.0",
            "42",
            "https://gw/auth/whatsapp/callback",
            "s t",
        );
        assert_eq!(
            url,
            "https://www.facebook.com/v25.0/dialog/oauth?client_id=42&redirect_uri=https%3A%2F%2Fgw%2Fauth%2Fwhatsapp%2Fcallback\
&response_type=code&state=s+t&scope=whatsapp_business_messaging%2Cwhatsapp_business_management&auth_type=rerequest"
        );
    }

    #[test]
    fn wabas_come_from_owned_and_client_businesses() {
        let answer = json!({"data": [
            {"id": "B1", "owned_whatsapp_business_accounts": {"data": [{"id": "W1"}, {"id": "W2"}]},
             "client_whatsapp_business_accounts": {"data": [{"id": 3}]}},
            {"id": "B2", "owned_whatsapp_business_accounts": {"data": [{"id": "W1"}]}},
            {"id": "B3"}
        ]});
        assert_eq!(wabas_from_businesses(&answer), ["W1", "W2", "3"]);
        assert!(wabas_from_businesses(&json!({"error": {}})).is_empty());
        let owners = owned_wabas(&answer);
        assert_eq!(
            owners,
            [("B1", "W1"), ("B1", "W2"), ("B2", "W1")].map(|(b, w)| (b.to_string(), w.to_string()))
        );
        let waba = json!({"id": "W1", "owner_business_info": {"id": "B1", "name": "Shop"}});
        assert_eq!(owner_business(&waba).as_deref(), Some("B1"));
        assert_eq!(owner_business(&json!({"id": "W1"})), None);
    }

    #[test]
    fn the_picked_waba_counts_only_when_granted() {
        let granted = vec!["W1".to_string(), "W2".to_string()];
        assert_eq!(default_waba(&granted, Some("W2")).as_deref(), Some("W2"));
        assert_eq!(default_waba(&granted, Some("W9")).as_deref(), Some("W1"));
        assert_eq!(default_waba(&[], Some("W9")), None);
    }

    #[test]
    fn a_reconnect_needs_the_same_user_and_a_shared_waba() {
        let accounts = vec![account("a", "u1", &["W1"]), account("b", "u2", &["W2"])];
        let w = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            reconnect_target(&accounts, Some("u2"), &w(&["W3", "W2"])).map(|a| a.id.as_str()),
            Some("b")
        );
        assert!(reconnect_target(&accounts, Some("u1"), &w(&["W2"])).is_none());
        assert!(reconnect_target(&accounts, None, &w(&["W1"])).is_none());
    }

    #[test]
    fn a_reconnect_keeps_identity_and_takes_the_new_token() {
        let existing = account("a", "u1", &["W1", "W2"]);
        let mut fresh = account("new", "u1", &["W2", "W3"]);
        fresh.status = AccountStatus::Ok;
        fresh.token_expires_at = Some(99);
        let merged = reconnected(&existing, &fresh);
        assert_eq!(merged.id, "a");
        assert_eq!(merged.api_key_hash, "key-a");
        assert_eq!(merged.access_token, "token-new");
        assert_eq!(merged.waba_ids, ["W2", "W3"]);
        assert_eq!(merged.business_account_id.as_deref(), Some("W2"));
        assert_eq!(merged.token_expires_at, Some(99));
        assert_eq!(merged.status, AccountStatus::Ok);
        assert_eq!(merged.status_reason, None);
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = json!({"id": "</script><script>alert('x')</script>&\u{2028}"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        assert!(!s.contains('\u{2028}'));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }
}
