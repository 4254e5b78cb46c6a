//! Tokens that keep working: refreshed well before they expire, and an account
//! whose token Meta refuses shows `needs_reconnect` with Meta's reason.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_meta::{now_secs, FakeMeta, APP_ID, LONG_LIVED_SECS};
use crate::support::gateway::{Gateway, Options};
use crate::support::server::Reply;

const TWO_DAYS: u64 = 2 * 24 * 3600;

fn gateway(meta: &FakeMeta) -> Gateway {
    let gw = Gateway::start_with(
        meta,
        Options {
            args: vec!["--token-check-interval".into(), "300ms".into()],
            ..Options::default()
        },
    );
    gw.configure();
    gw
}

/// An account whose token expires in two days; returns its API key.
fn account_expiring_soon(gw: &Gateway, meta: &FakeMeta, token: &str, user: &str) -> String {
    meta.add_token_data(
        token,
        serde_json::json!({
            "app_id": APP_ID, "type": "USER", "is_valid": true,
            "expires_at": now_secs() + TWO_DAYS,
            "scopes": ["whatsapp_business_messaging", "whatsapp_business_management"],
            "granular_scopes": [{"scope": "whatsapp_business_management", "target_ids": ["W1"]}],
            "user_id": user
        }),
    );
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&serde_json::json!({"accessToken": token})),
    );
    assert_eq!(status, 201, "{body}");
    body["apiKey"].as_str().unwrap().to_string()
}

/// Polls `/api/v1/me` until `ready` holds.
fn wait_for_me(gw: &Gateway, key: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, me) = gw.request("GET", "/api/v1/me", Some(key), None);
        assert_eq!(status, 200, "{me}");
        if ready(&me) {
            return me;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting; last: {me}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn expires_in(me: &Value) -> u64 {
    me["tokenExpiresAt"]
        .as_str()
        .and_then(|at| humantime::parse_rfc3339(at).ok())
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs().saturating_sub(now_secs()))
}

#[test]
fn a_token_is_refreshed_before_it_expires_and_a_revoked_one_needs_reconnect() {
    let meta = FakeMeta::start();
    let gw = gateway(&meta);
    let key = account_expiring_soon(&gw, &meta, "soon-token", "meta-user-1");
    assert!(expires_in(&wait_for_me(&gw, &key, |_| true)) <= TWO_DAYS);

    let me = wait_for_me(&gw, &key, |me| expires_in(me) > TWO_DAYS);
    assert!(expires_in(&me) > LONG_LIVED_SECS - 120, "{me}");
    assert_eq!(me["status"], "ok");
    let refresh = meta.requests_to("GET", "/oauth/access_token");
    assert_eq!(
        refresh[0].query_param("grant_type").as_deref(),
        Some("fb_exchange_token")
    );
    assert_eq!(
        refresh[0].query_param("fb_exchange_token").as_deref(),
        Some("soon-token")
    );

    // The user changes their Facebook password: Meta invalidates every token (190).
    meta.revoke_user("meta-user-1");
    let me = wait_for_me(&gw, &key, |me| me["status"] == "needs_reconnect");
    let reason = me["statusReason"].as_str().unwrap();
    assert!(
        reason.contains("190") && reason.contains("Reconnect"),
        "{reason}"
    );
    let (_, list) = gw.admin("GET", "/api/v1/admin/accounts", None);
    assert_eq!(list["accounts"][0]["status"], "needs_reconnect");
}

#[test]
fn a_refresh_refused_with_error_190_marks_the_account() {
    let meta = FakeMeta::start();
    meta.script(
        "GET",
        "/oauth/access_token",
        Reply::json(
            400,
            serde_json::json!({"error": {"message": "Error validating access token: Session has expired on Friday.",
                "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "FAKEtrace"}}),
        ),
    );
    let gw = gateway(&meta);
    let key = account_expiring_soon(&gw, &meta, "expired-token", "meta-user-2");
    let me = wait_for_me(&gw, &key, |me| me["status"] == "needs_reconnect");
    let reason = me["statusReason"].as_str().unwrap();
    assert!(reason.contains("Meta error 190 (subcode 463)"), "{reason}");
    assert!(reason.contains("Session has expired"), "{reason}");
    assert!(reason.contains("FAKEtrace"), "{reason}");
}
