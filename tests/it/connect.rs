//! A customer connects their WhatsApp Business Account (connector guide §2.1):
//! the connect link, Meta's login (plain OAuth or Embedded Signup), the callback.
//! The browser is played by hand: redirects are read, not followed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::admin_browser::Browser;
use crate::support::browser::{self, Page};
use crate::support::fake_meta::{now_secs, FakeMeta, APP_ID, LONG_LIVED_SECS};
use crate::support::gateway::{Gateway, Options, ADMIN_TOKEN, PUBLIC_URL};
use crate::support::receiver::Receiver;

const CALLBACK: &str = "https://gateway.test/auth/whatsapp/callback";
const ES_CONFIG: &str = "987654321";

/// The redirect of `/connect` for a fresh link, and the login's `state`.
fn start(gw: &Gateway) -> (String, String) {
    let link = gw.connect_link();
    let to = browser::get(&gw.local(&link)).location();
    let state = browser::query(&to, "state").expect("no state in the redirect");
    (to, state)
}

/// Plain OAuth: Meta redirects the browser back with `code` and `state`.
fn oauth_callback(gw: &Gateway, code: &str, state: &str) -> Page {
    browser::get(&format!(
        "{}?code={code}&state={state}",
        gw.url("/auth/whatsapp/callback")
    ))
}

/// Embedded Signup: the page's form posts the SDK's code and the wizard's picks.
fn signup_callback(gw: &Gateway, state: &str, code: &str, waba: &str) -> Page {
    browser::post_form(
        &gw.url("/auth/whatsapp/callback"),
        &[
            ("state", state),
            ("code", code),
            ("waba_id", waba),
            ("phone_number_id", "PN-1"),
            ("error", ""),
            ("error_description", ""),
        ],
    )
}

fn me(gw: &Gateway, key: &str) -> Value {
    let (status, body) = gw.request("GET", "/api/v1/me", Some(key), None);
    assert_eq!(status, 200, "{body}");
    body
}

fn expires_in_secs(account: &Value) -> u64 {
    let at = account["tokenExpiresAt"]
        .as_str()
        .expect("no tokenExpiresAt");
    let at = humantime::parse_rfc3339(at).unwrap();
    at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - now_secs()
}

fn accounts(gw: &Gateway) -> Vec<Value> {
    let (status, body) = gw.admin("GET", "/api/v1/admin/accounts", None);
    assert_eq!(status, 200, "{body}");
    body["accounts"].as_array().unwrap().clone()
}

#[test]
fn plain_oauth_connects_an_account_end_to_end() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let link = gw.connect_link();

    let to = browser::get(&gw.local(&link)).location();
    assert!(
        to.starts_with(&format!("{}/v25.0/dialog/oauth?", meta.url())),
        "{to}"
    );
    for (key, value) in [
        ("client_id", APP_ID),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        (
            "scope",
            "whatsapp_business_messaging,whatsapp_business_management",
        ),
        ("auth_type", "rerequest"),
    ] {
        assert_eq!(
            browser::query(&to, key).as_deref(),
            Some(value),
            "{key} in {to}"
        );
    }
    let state = browser::query(&to, "state").unwrap();
    assert!(state.len() >= 43, "a 256-bit state: {state}");

    // The user approves; the token names no WABA (plain OAuth), /me/businesses does.
    meta.add_user_token("user-token", "meta-user-1", &[], Some(5400));
    meta.set_businesses(&["W1"], &["W2"]);
    meta.issue_code("code-1", "user-token", Some(CALLBACK));
    let page = oauth_callback(&gw, "code-1", &state);
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_browser_headers();
    assert!(page.body.contains("WhatsApp is connected"), "{}", page.body);
    let key = page.secret().expect("the API key is shown once");

    let account = me(&gw, &key);
    assert_eq!(account["wabaIds"], serde_json::json!(["W1", "W2"]));
    assert_eq!(account["businessAccountId"], "W1");
    assert_eq!(account["status"], "ok");
    assert_eq!(account["name"], "Test Business");
    let left = expires_in_secs(&account);
    assert!(
        left > LONG_LIVED_SECS - 120,
        "long-lived token expected, {left}s left"
    );

    let exchange = meta.requests_to("GET", "/oauth/access_token");
    assert_eq!(
        exchange[0].query_param("redirect_uri").as_deref(),
        Some(CALLBACK)
    );
    assert_eq!(
        exchange[1].query_param("grant_type").as_deref(),
        Some("fb_exchange_token")
    );
    assert_eq!(
        exchange[1].query_param("fb_exchange_token").as_deref(),
        Some("user-token")
    );
    let businesses = meta.requests_to("GET", "/me/businesses");
    assert!(businesses[0].query_param("appsecret_proof").is_some());

    // The link connected an account: it is spent.
    let again = browser::get(&gw.local(&link));
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(again.header("location").is_none());
}

#[test]
fn embedded_signup_connects_with_the_sdk_code() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    gw.set_es_config(ES_CONFIG);

    let (to, state) = start(&gw);
    assert!(
        to.starts_with(&format!("{PUBLIC_URL}/plugins/appmixer/whatsapp/signup?")),
        "{to}"
    );
    assert_eq!(
        browser::query(&to, "redirect_uri").as_deref(),
        Some(CALLBACK)
    );

    let page = browser::get(&gw.local(&to));
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_browser_headers();
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    assert!(csp.contains("https://connect.facebook.net"), "{csp}");
    assert!(csp.contains("form-action https://gateway.test;"), "{csp}");
    assert!(page
        .body
        .contains("https://connect.facebook.net/en_US/sdk.js"));
    assert!(page.body.contains(&format!("\"configId\":\"{ES_CONFIG}\"")));
    assert!(page.body.contains("response_type: \"code\""));
    assert!(page.body.contains("override_default_response_type: true"));
    assert!(page.body.contains("sessionInfoVersion"));
    assert!(page.body.contains("WA_EMBEDDED_SIGNUP"));
    assert_eq!(page.field("state").as_deref(), Some(state.as_str()));

    // The wizard finished: a System User token that never expires, granted on W9.
    meta.add_user_token("es-token", "meta-user-9", &["W9"], None);
    meta.issue_code("sdk-code", "es-token", None);
    let done = signup_callback(&gw, &state, "sdk-code", "W9");
    assert_eq!(done.status, 200, "{}", done.body);
    let key = done.secret().expect("the API key is shown once");

    let account = me(&gw, &key);
    assert_eq!(account["wabaIds"], serde_json::json!(["W9"]));
    assert_eq!(account["businessAccountId"], "W9");
    assert_eq!(account["tokenExpiresAt"], Value::Null);
    let exchange = meta.requests_to("GET", "/oauth/access_token");
    assert_eq!(
        exchange.len(),
        1,
        "a token that never expires is not exchanged again"
    );
    assert_eq!(exchange[0].query_param("code").as_deref(), Some("sdk-code"));
    assert_eq!(exchange[0].query_param("redirect_uri"), None);
    assert!(meta.requests_to("GET", "/me/businesses").is_empty());
}

#[test]
fn a_state_works_once_and_only_if_the_gateway_made_it() {
    let meta = FakeMeta::start();
    let gw = Gateway::start_with(
        &meta,
        Options {
            args: vec!["--connect-state-ttl".into(), "1s".into()],
            ..Options::default()
        },
    );
    gw.configure();
    meta.add_user_token("user-token", "meta-user-1", &["W1"], Some(5400));

    // Forged: never issued by this gateway.
    meta.issue_code("code-1", "user-token", Some(CALLBACK));
    let forged = oauth_callback(&gw, "code-1", "st_forged0000000000000000000000000000000000");
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.body.contains("This login is not valid"));

    // Expired: issued, but the login came back too late.
    let (_, late) = start(&gw);
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let expired = oauth_callback(&gw, "code-1", &late);
    assert_eq!(expired.status, 410, "{}", expired.body);
    assert!(expired.body.contains("took too long"));
    assert!(
        meta.requests_to("GET", "/oauth/access_token").is_empty(),
        "no code may be exchanged for a bad state"
    );

    // Replayed: the same callback twice connects once.
    let (_, state) = start(&gw);
    let first = oauth_callback(&gw, "code-1", &state);
    assert_eq!(first.status, 200, "{}", first.body);
    let replay = oauth_callback(&gw, "code-1", &state);
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_eq!(accounts(&gw).len(), 1);
    assert_eq!(meta.requests_to("GET", "/oauth/access_token").len(), 2);
}

#[test]
fn a_login_without_whatsapp_permissions_fails_with_the_guides_fixes() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let link = gw.connect_link();
    let state = browser::query(&browser::get(&gw.local(&link)).location(), "state").unwrap();

    meta.add_token_data(
        "stale-grant",
        serde_json::json!({"app_id": APP_ID, "is_valid": true, "expires_at": 0,
            "scopes": ["public_profile"], "user_id": "meta-user-1"}),
    );
    meta.issue_code("code-1", "stale-grant", Some(CALLBACK));
    let page = oauth_callback(&gw, "code-1", &state);
    assert_eq!(page.status, 400, "{}", page.body);
    page.assert_browser_headers();
    for needle in [
        "WhatsApp permissions missing",
        "<code>whatsapp_business_messaging</code>",
        "<code>whatsapp_business_management</code>",
        "Business integrations",
        "declined",
        "no role",
        "WhatsApp Accounts → Add",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing in:\n{}",
            page.body
        );
    }
    assert!(accounts(&gw).is_empty());
    // Nothing was connected, so the customer can try again with the same link.
    assert_eq!(browser::get(&gw.local(&link)).status, 303);
}

#[test]
fn wabas_are_discovered_from_target_ids_before_businesses() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    meta.add_user_token("user-token", "meta-user-1", &["W7", "W8"], Some(5400));
    meta.set_businesses(&["W1"], &[]);
    meta.issue_code("code-1", "user-token", Some(CALLBACK));
    let (_, state) = start(&gw);
    let page = oauth_callback(&gw, "code-1", &state);
    assert_eq!(page.status, 200, "{}", page.body);
    let account = me(&gw, &page.secret().unwrap());
    assert_eq!(account["wabaIds"], serde_json::json!(["W7", "W8"]));
    assert!(meta.requests_to("GET", "/me/businesses").is_empty());
}

#[test]
fn wabas_are_found_in_every_page_of_the_users_businesses() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    meta.add_user_token("user-token", "meta-user-1", &[], Some(5400));
    // An agency: more businesses than one page of 50 holds; the WABAs are on the last.
    for _ in 0..60 {
        meta.add_business(&[], &[]);
    }
    meta.add_business(&["W61"], &["W62"]);
    meta.issue_code("code-1", "user-token", Some(CALLBACK));
    let (_, state) = start(&gw);
    let page = oauth_callback(&gw, "code-1", &state);
    assert_eq!(page.status, 200, "{}", page.body);
    let account = me(&gw, &page.secret().unwrap());
    assert_eq!(account["wabaIds"], serde_json::json!(["W61", "W62"]));
    let calls = meta.requests_to("GET", "/me/businesses");
    assert_eq!(calls.len(), 2, "two pages of 50");
    assert_eq!(calls[0].query_param("after"), None);
    assert_eq!(calls[1].query_param("after").as_deref(), Some("cur50"));
}

#[test]
fn a_login_without_any_waba_connects_nothing() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    meta.add_user_token("user-token", "meta-user-1", &[], Some(5400));
    meta.issue_code("code-1", "user-token", Some(CALLBACK));
    let (_, state) = start(&gw);
    let page = oauth_callback(&gw, "code-1", &state);
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("No WhatsApp Business Account found"));
    assert!(accounts(&gw).is_empty());
}

/// Meta refusing the code exchange is Meta's refusal like any other: 422 with
/// Meta's own words (a 502 would say Meta failed, and invite a retry).
#[test]
fn metas_refusal_of_the_login_is_a_422_page_with_metas_words() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, state) = start(&gw);
    // A code Meta did not issue, or one already used: Meta answers 400, code 100.
    let page = oauth_callback(&gw, "code-used", &state);
    assert_eq!(page.status, 422, "{}", page.body);
    page.assert_browser_headers();
    for needle in [
        "Meta refused the login",
        "<code>100</code>",
        "<code>36009</code>",
        "This authorization code has been used.",
        "<code>FAKEtrace</code>",
        "Open the connect link again",
    ] {
        assert!(
            page.body.contains(needle),
            "{needle} missing in:\n{}",
            page.body
        );
    }
    assert!(accounts(&gw).is_empty());
}

#[test]
fn reconnecting_updates_the_account_and_keeps_its_key() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    gw.set_es_config(ES_CONFIG);

    meta.add_user_token("es-token-1", "meta-user-9", &["W9"], None);
    meta.issue_code("sdk-code-1", "es-token-1", None);
    let (_, state) = start(&gw);
    let first = signup_callback(&gw, &state, "sdk-code-1", "W9");
    let key = first.secret().expect("first connection shows the key");
    let id = me(&gw, &key)["id"].clone();

    meta.add_user_token("es-token-2", "meta-user-9", &["W9", "W10"], None);
    meta.issue_code("sdk-code-2", "es-token-2", None);
    let (_, state) = start(&gw);
    let second = signup_callback(&gw, &state, "sdk-code-2", "W10");
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(second.secret().is_none(), "a reconnect shows no new key");
    assert!(second.body.contains("already connected"), "{}", second.body);

    assert_eq!(accounts(&gw).len(), 1);
    let account = me(&gw, &key);
    assert_eq!(account["id"], id);
    assert_eq!(account["wabaIds"], serde_json::json!(["W9", "W10"]));
    assert_eq!(account["businessAccountId"], "W9");
}

#[test]
fn a_cancelled_login_offers_to_try_again() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, state) = start(&gw);
    let page = browser::get(&format!(
        "{}?error=access_denied&error_reason=user_denied&error_description=Permissions+error&state={state}",
        gw.url("/auth/whatsapp/callback")
    ));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Login cancelled"));
    let retry = page
        .body
        .split("class=\"button\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a Try again link")
        .replace("&#38;", "&");
    assert!(
        retry.starts_with(&format!("{}/v25.0/dialog/oauth?", meta.url())),
        "{retry}"
    );
    assert_ne!(browser::query(&retry, "state").unwrap(), state);
}

#[test]
fn connect_without_a_valid_link_shows_a_page_and_redirects_nowhere() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    for path in ["/connect", "/connect?link=wbl_not-a-real-link"] {
        let page = browser::get(&gw.url(path));
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(page.header("location").is_none());
        assert!(page.body.contains("This connect link is not valid"));
        page.assert_browser_headers();
    }
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/connect-links",
        Some(&serde_json::json!({"expiresInHours": 0})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "expiresInHours");
    let (status, body) = gw.request("POST", "/api/v1/admin/connect-links", None, None);
    assert_eq!(status, 401, "{body}");
}

#[test]
fn the_admin_lists_and_revokes_open_connect_links() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    meta.add_user_token("user-token", "meta-user-1", &["W1"], Some(5400));
    let link_id = |url: &str| {
        let (_, links) = gw.admin("GET", "/api/v1/admin/connect-links", None);
        let secret = url.split("link=").nth(1).unwrap();
        assert!(
            !links.to_string().contains(secret),
            "the secret is never listed"
        );
        links["connectLinks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (status, first) = gw.admin("POST", "/api/v1/admin/connect-links", None);
    assert_eq!(status, 201, "{first}");
    let (_, second) = gw.admin("POST", "/api/v1/admin/connect-links", None);
    let first_url = first["url"].as_str().unwrap();
    assert_eq!(
        link_id(first_url),
        [
            second["id"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ],
        "newest first"
    );

    // The second customer has started Meta's login when the admin revokes its link.
    let second_url = second["url"].as_str().unwrap();
    let to = browser::get(&gw.local(second_url)).location();
    let state = browser::query(&to, "state").unwrap();
    let path = format!(
        "/api/v1/admin/connect-links/{}",
        second["id"].as_str().unwrap()
    );
    let (status, body) = gw.admin("DELETE", &path, None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = gw.admin("DELETE", &path, None);
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &serde_json::json!("not_found"))
    );
    assert_eq!(link_id(first_url), [first["id"].as_str().unwrap()]);

    let page = browser::get(&gw.local(second_url));
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("revoked"), "{}", page.body);
    meta.issue_code("code-1", "user-token", Some(CALLBACK));
    let late = oauth_callback(&gw, "code-1", &state);
    assert_eq!(late.status, 403, "{}", late.body);
    assert!(accounts(&gw).is_empty(), "a revoked link connects nothing");
    assert!(meta.requests_to("GET", "/oauth/access_token").is_empty());

    // A used link is no longer open, so there is nothing to revoke.
    let (_, state) = {
        let to = browser::get(&gw.local(first_url)).location();
        (to.clone(), browser::query(&to, "state").unwrap())
    };
    meta.issue_code("code-2", "user-token", Some(CALLBACK));
    assert_eq!(oauth_callback(&gw, "code-2", &state).status, 200);
    assert!(link_id(first_url).is_empty());
    let path = format!(
        "/api/v1/admin/connect-links/{}",
        first["id"].as_str().unwrap()
    );
    assert_eq!(gw.admin("DELETE", &path, None).0, 404);
    assert_eq!(
        gw.request("GET", "/api/v1/admin/connect-links", None, None)
            .0,
        401
    );
}

#[test]
fn the_admin_connects_without_a_link_by_token_or_backoffice_session() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let dialog = format!("{}/v25.0/dialog/oauth?", meta.url());

    // The admin token, as an API client sends it.
    let by_token = browser::get_with_bearer(&gw.url("/connect"), ADMIN_TOKEN).location();
    assert!(by_token.starts_with(&dialog), "{by_token}");
    let wrong = browser::get_with_bearer(&gw.url("/connect"), "not-the-admin-token");
    assert_eq!(wrong.status, 403, "{}", wrong.body);

    // A backoffice session that has not logged in is nobody.
    let mut visitor = Browser::new(&gw);
    assert_eq!(visitor.get("/admin/login").status, 200);
    assert!(visitor.cookie.is_some());
    let refused = visitor.get("/connect");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("This connect link is not valid"));

    // The admin logged into the backoffice: the Accounts page links to /connect,
    // which starts a login without a link.
    let mut admin = Browser::new(&gw);
    assert_eq!(admin.login(ADMIN_TOKEN).status, 303);
    assert!(admin
        .get("/admin/accounts")
        .body
        .contains(r#"href="/connect""#));
    let start = admin.get("/connect");
    assert_eq!(start.status, 303, "{}", start.body);
    let to = start.location().unwrap().to_string();
    assert!(to.starts_with(&dialog), "{to}");
    let state = browser::query(&to, "state").unwrap();

    // Meta sends the browser back: the account is connected, no link involved.
    meta.add_user_token("admin-user-token", "meta-user-admin", &["W9"], Some(5400));
    meta.issue_code("code-admin", "admin-user-token", Some(CALLBACK));
    let page = oauth_callback(&gw, "code-admin", &state);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("WhatsApp is connected"), "{}", page.body);
    let connected = accounts(&gw);
    assert_eq!(connected.len(), 1);
    assert_eq!(connected[0]["wabaIds"], serde_json::json!(["W9"]));

    // Logged out, the same browser is nobody again.
    let csrf = admin.csrf();
    let out = admin.post("/admin/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert_eq!(admin.get("/connect").status, 403);
}

#[test]
fn connect_before_setup_says_what_is_missing() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let link = gw.connect_link();
    let page = browser::get(&gw.local(&link));
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("not configured"));
    assert!(page.header("location").is_none());
}

#[test]
fn business_level_events_reach_the_wabas_their_portfolio_owns() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();

    // Plain OAuth: biz-1 owns W1 and manages W2 for a client whose owner
    // Meta does not tell; the business listing says who owns what.
    meta.add_user_token("user-token", "meta-user-1", &[], Some(5400));
    meta.set_businesses(&["W1"], &["W2"]);
    meta.issue_code("code-1", "user-token", Some(CALLBACK));
    let (_, state) = start(&gw);
    let key_a = oauth_callback(&gw, "code-1", &state)
        .secret()
        .expect("the API key is shown once");

    // Embedded Signup names only the WABA: the gateway asks Meta for its owner.
    gw.set_es_config(ES_CONFIG);
    meta.add_user_token("es-token", "meta-user-9", &["W9"], None);
    meta.set_owner("W9", "biz-9");
    meta.issue_code("sdk-code", "es-token", None);
    let (_, state) = start(&gw);
    let key_b = signup_callback(&gw, &state, "sdk-code", "W9")
        .secret()
        .expect("the API key is shown once");
    let asked = meta.requests_to("GET", "/W9");
    assert_eq!(
        asked[0].query_param("fields").as_deref(),
        Some("owner_business_info")
    );

    // A token the admin pastes: the same question about its WABA.
    meta.set_owner("W5", "biz-5");
    let (_, key_c) = gw.add_account(&meta, "system-user-token", &["W5"]);

    let receiver = Receiver::start();
    for (key, waba) in [
        (&key_a, "W1"),
        (&key_a, "W2"),
        (&key_b, "W9"),
        (&key_c, "W5"),
    ] {
        let listener = json!({"wabaId": waba, "events": ["whatsapp.account.*"], "url": receiver.url(&format!("/{waba}"))});
        let (status, body) = gw.request("POST", "/api/v1/listeners", Some(key), Some(&listener));
        assert_eq!(status, 201, "{body}");
    }
    // Business-level entries: `entry.id` is the portfolio, no WABA named.
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "biz-1", "time": 1796213400, "changes": [{"field": "account_update", "value": {"event": "MM_LITE_TERMS_SIGNED"}}]},
        {"id": "biz-9", "time": 1796213401, "changes": [{"field": "account_update", "value": {"event": "BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE", "country": "CZ"}}]},
        {"id": "biz-5", "time": 1796213402, "changes": [{"field": "account_update", "value": {"event": "MM_LITE_TERMS_SIGNED"}}]}
    ]});
    let (status, answer) = gw.post_webhook(&serde_json::to_vec(&body).unwrap());
    assert_eq!(status, 200, "{answer}");
    let got = receiver.wait_for_exactly(3, Duration::from_secs(10), Duration::from_millis(700));
    let mut seen: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let data = &r.json()["data"];
            assert_eq!(format!("/{}", data["wabaId"].as_str().unwrap()), r.path);
            (r.path.clone(), data["event"].as_str().unwrap().to_string())
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("/W1".to_string(), "MM_LITE_TERMS_SIGNED".to_string()),
            ("/W5".to_string(), "MM_LITE_TERMS_SIGNED".to_string()),
            (
                "/W9".to_string(),
                "BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE".to_string()
            )
        ]
    );
}

/// A coexistence login lists the WABA's numbers once it is connected: the
/// number that stays in the WhatsApp Business app is known at once.
#[test]
fn a_coexistence_login_learns_its_business_app_number_when_it_connects() {
    const WABA: &str = "2000000000081";
    const PHONE: &str = "3000000000081";
    let meta = FakeMeta::start();
    meta.add_phone_number(WABA, PHONE, "+420 800 111 181", true);
    meta.set_on_biz_app(PHONE);
    let gw = Gateway::start(&meta);
    gw.configure();
    gw.set_es_config(ES_CONFIG);

    let (status, made) = gw.admin(
        "POST",
        "/api/v1/admin/connect-links",
        Some(&json!({"coexistence": true})),
    );
    assert_eq!(status, 201, "{made}");
    let to = browser::get(&gw.local(made["url"].as_str().unwrap())).location();
    let state = browser::query(&to, "state").unwrap();
    meta.add_user_token("coex-token", "meta-user-81", &[WABA], None);
    meta.issue_code("coex-code", "coex-token", None);
    let done = signup_callback(&gw, &state, "coex-code", WABA);
    assert_eq!(done.status, 200, "{}", done.body);
    let key = done.secret().expect("the API key is shown once");

    assert_eq!(
        meta.requests_to("GET", &format!("/{WABA}/phone_numbers"))
            .len(),
        1
    );
    let account = me(&gw, &key);
    assert_eq!(
        account["wabas"][0]["coexistencePhoneNumbers"],
        json!([PHONE]),
        "{account}"
    );
}
