//! The API of the events pipeline: a key sees its own account only, listener URLs
//! are guarded, starting a trigger subscribes the WABA (guide §2.5), a sent message's
//! status history (§2.4), and the admin's setup (guide §1.4, §1.5).

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::support::fake_meta::{FakeMeta, APP_ID, APP_SECRET};
use crate::support::gateway::{sample, Gateway, Options, VERIFY_TOKEN};
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::server::Reply;

const WAIT: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_millis(500);

const WABA_A: &str = "111111111111111";
const WABA_B: &str = "222222222222222";
const PHONE_A: &str = "100000000000001";
const PHONE_B: &str = "200000000000001";

/// Two customers on one gateway: A owns WABA A with token-a, B owns WABA B with token-b.
struct TwoCustomers {
    meta: FakeMeta,
    gw: Gateway,
    key_a: String,
    id_a: String,
    key_b: String,
}

fn two_customers() -> TwoCustomers {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (id_a, key_a) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let (_, key_b) = gw.add_account(&meta, "token-b", &[WABA_B]);
    TwoCustomers {
        meta,
        gw,
        key_a,
        id_a,
        key_b,
    }
}

fn new_listener(waba: &str, event: &str, url: &str) -> Value {
    json!({"wabaId": waba, "event": event, "url": url})
}

fn listener_ids(gw: &Gateway, key: &str) -> Vec<String> {
    let (status, body) = gw.request("GET", "/api/v1/listeners", Some(key), None);
    assert_eq!(status, 200, "{body}");
    body["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// A key sees its own account only
// ---------------------------------------------------------------------------

#[test]
fn customer_a_cannot_list_read_or_stop_customer_bs_listeners() {
    let t = two_customers();
    let receiver = Receiver::start();
    let (id_b, _) =
        t.gw.add_listener(&t.key_b, WABA_B, "messages", &receiver.url("/b"));
    let (id_a, _) =
        t.gw.add_listener(&t.key_a, WABA_A, "messages", &receiver.url("/a"));

    assert_eq!(listener_ids(&t.gw, &t.key_a), [id_a]);
    assert_eq!(listener_ids(&t.gw, &t.key_b), std::slice::from_ref(&id_b));
    for (method, path) in [
        ("GET", format!("/api/v1/listeners/{id_b}")),
        ("GET", format!("/api/v1/listeners/{id_b}/deliveries")),
        ("POST", format!("/api/v1/listeners/{id_b}/redeliver-failed")),
        ("DELETE", format!("/api/v1/listeners/{id_b}")),
    ] {
        let (status, body) = t.gw.request(method, &path, Some(&t.key_a), None);
        assert_eq!(status, 404, "{method} {path} with A's key: {body}");
        assert!(
            !body.to_string().contains("whsec_"),
            "{method} {path} leaked a secret: {body}"
        );
    }
    // B's listener survived A's attempt to delete it, secret and all.
    let (status, body) = t.gw.request(
        "GET",
        &format!("/api/v1/listeners/{id_b}"),
        Some(&t.key_b),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wabaId"], WABA_B);
}

#[test]
fn customer_a_cannot_register_a_listener_on_customer_bs_waba() {
    let t = two_customers();
    let receiver = Receiver::start();
    for event in ["messages", "statuses"] {
        let (status, body) = t.gw.request(
            "POST",
            "/api/v1/listeners",
            Some(&t.key_a),
            Some(&new_listener(WABA_B, event, &receiver.url("/steal"))),
        );
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    assert!(listener_ids(&t.gw, &t.key_a).is_empty());
    assert!(listener_ids(&t.gw, &t.key_b).is_empty());
    // Meta was not asked to subscribe B's WABA, with anyone's token.
    assert!(t
        .meta
        .requests_to("POST", &format!("/{WABA_B}/subscribed_apps"))
        .is_empty());

    // And B's events do not reach A's receiver.
    let (status, _) = t.gw.post_webhook(&payloads::single_text(
        WABA_B,
        PHONE_B,
        "wamid.B-PRIVATE",
        "hi",
    ));
    assert_eq!(status, 200);
    receiver.wait_for_exactly(0, WAIT, GRACE);
}

#[test]
fn customer_a_cannot_read_the_status_history_of_customer_bs_message() {
    let t = two_customers();
    let (status, _) = t.gw.post_webhook(&payloads::statuses(
        WABA_B,
        PHONE_B,
        vec![payloads::status(
            "wamid.B-SENT-1",
            "delivered",
            "421905111222",
        )],
    ));
    assert_eq!(status, 200);
    let (status, body) = t.gw.request(
        "GET",
        "/api/v1/messages/wamid.B-SENT-1",
        Some(&t.key_b),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "delivered");
    let (status, body) = t.gw.request(
        "GET",
        "/api/v1/messages/wamid.B-SENT-1",
        Some(&t.key_a),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(!body.to_string().contains("421905111222"), "{body}");
}

#[test]
fn the_flow_api_needs_an_account_key_and_the_admin_api_refuses_one() {
    let t = two_customers();
    let flow_calls = [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/listeners"),
        ("POST", "/api/v1/listeners"),
        ("GET", "/api/v1/listeners/lst_x"),
        ("DELETE", "/api/v1/listeners/lst_x"),
        ("GET", "/api/v1/messages/wamid.X"),
    ];
    let body = new_listener(WABA_A, "messages", "http://127.0.0.1:9/hook");
    for (method, path) in flow_calls {
        let payload = (method == "POST").then_some(&body);
        for key in [None, Some("wbk_not-a-key"), Some(t.gw.admin_token.as_str())] {
            let (status, answer) = t.gw.request(method, path, key, payload);
            assert_eq!(status, 401, "{method} {path} with {key:?}: {answer}");
            assert_eq!(answer["error"]["code"], "unauthorized");
        }
    }
    let admin_calls = [
        ("GET", "/api/v1/admin/config".to_string()),
        ("PUT", "/api/v1/admin/config".to_string()),
        ("GET", "/api/v1/admin/accounts".to_string()),
        ("POST", "/api/v1/admin/accounts".to_string()),
        ("DELETE", format!("/api/v1/admin/accounts/{}", t.id_a)),
    ];
    for (method, path) in &admin_calls {
        let payload = match *method {
            "PUT" => Some(json!({"verifyToken": "taken-over"})),
            "POST" => Some(json!({"accessToken": "token-a"})),
            _ => None,
        };
        for key in [None, Some(t.key_a.as_str())] {
            let (status, answer) = t.gw.request(method, path, key, payload.as_ref());
            assert_eq!(status, 401, "{method} {path} with {key:?}: {answer}");
        }
    }
    // Nothing changed: A still exists and the verify token is the admin's.
    let (status, me) = t.gw.request("GET", "/api/v1/me", Some(&t.key_a), None);
    assert_eq!((status, me["id"].as_str()), (200, Some(t.id_a.as_str())));
    let (_, config) = t.gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(config["verifyToken"], VERIFY_TOKEN);
}

// ---------------------------------------------------------------------------
// Listener URLs must not become a way into the host's network
// ---------------------------------------------------------------------------

#[test]
fn a_listener_on_this_host_is_refused_unless_the_admin_allowed_its_network() {
    let meta = FakeMeta::start();
    let gw = Gateway::start_with(
        &meta,
        Options {
            webhook_allow_net: None,
            ..Default::default()
        },
    );
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let receiver = Receiver::start();
    let port = receiver.addr().port();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        "http://10.0.0.7/hook".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let (status, body) = gw.request(
            "POST",
            "/api/v1/listeners",
            Some(&key),
            Some(&new_listener(WABA_A, "messages", &url)),
        );
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["field"], "url", "{url}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("--webhook-allow-net"),
            "{url}: the refusal should say how to allow it: {message}"
        );
    }
    assert!(listener_ids(&gw, &key).is_empty());
    assert!(
        meta.requests_to("POST", &format!("/{WABA_A}/subscribed_apps"))
            .is_empty(),
        "a refused listener must not subscribe the WABA"
    );
}

#[test]
fn listener_urls_must_be_http_or_https_without_credentials() {
    let t = two_customers();
    let receiver = Receiver::start();
    let port = receiver.addr().port();
    for url in [
        format!("ftp://127.0.0.1:{port}/hook"),
        "file:///etc/passwd".to_string(),
        format!("http://flow:s3cret@127.0.0.1:{port}/hook"),
        format!("https://token@127.0.0.1:{port}/hook"),
        "not a url".to_string(),
        String::new(),
        // Allowed is 127.0.0.0/8 only: other private networks stay closed.
        "http://192.168.1.10/hook".to_string(),
        format!("http://[::1]:{port}/hook"),
    ] {
        let (status, body) = t.gw.request(
            "POST",
            "/api/v1/listeners",
            Some(&t.key_a),
            Some(&new_listener(WABA_A, "messages", &url)),
        );
        assert_eq!(status, 400, "{url:?}: {body}");
        assert_eq!(body["error"]["field"], "url", "{url:?}");
    }
    let (status, body) = t.gw.request(
        "POST",
        "/api/v1/listeners",
        Some(&t.key_a),
        Some(&new_listener(WABA_A, "sent", &receiver.url("/hook"))),
    );
    assert_eq!(status, 400, "an unknown event: {body}");
    assert_eq!(body["error"]["field"], "event");
    assert!(listener_ids(&t.gw, &t.key_a).is_empty());

    // The allowed network works (the refusals above were not for another reason).
    let (status, body) = t.gw.request(
        "POST",
        "/api/v1/listeners",
        Some(&t.key_a),
        Some(&new_listener(WABA_A, "messages", &receiver.url("/hook"))),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["event"], "messages");
    assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));
}

#[test]
fn stopping_a_trigger_stops_its_deliveries_and_leaves_the_others() {
    let t = two_customers();
    let stopped = Receiver::start();
    let kept = Receiver::start();
    let (id, _) =
        t.gw.add_listener(&t.key_a, WABA_A, "messages", &stopped.url("/flow-1"));
    let (kept_id, _) =
        t.gw.add_listener(&t.key_a, WABA_A, "messages", &kept.url("/flow-2"));
    let (status, body) = t.gw.request(
        "DELETE",
        &format!("/api/v1/listeners/{id}"),
        Some(&t.key_a),
        None,
    );
    assert!((200..300).contains(&status), "{status} {body}");
    assert_eq!(listener_ids(&t.gw, &t.key_a), [kept_id]);
    let (status, _) = t.gw.request(
        "GET",
        &format!("/api/v1/listeners/{id}"),
        Some(&t.key_a),
        None,
    );
    assert_eq!(status, 404);

    let (status, _) = t.gw.post_webhook(&payloads::single_text(
        WABA_A,
        PHONE_A,
        "wamid.AFTER-STOP",
        "still there?",
    ));
    assert_eq!(status, 200);
    kept.wait_for_exactly(1, WAIT, GRACE);
    stopped.wait_for_exactly(0, WAIT, Duration::ZERO);
}

// ---------------------------------------------------------------------------
// Starting a trigger subscribes the WABA (guide §2.5 step 1)
// ---------------------------------------------------------------------------

#[test]
fn starting_a_trigger_subscribes_the_waba_with_the_accounts_own_token_once() {
    let t = two_customers();
    let receiver = Receiver::start();
    t.gw.add_listener(&t.key_a, WABA_A, "messages", &receiver.url("/new-message"));
    let calls = t
        .meta
        .requests_to("POST", &format!("/{WABA_A}/subscribed_apps"));
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].header("authorization"), Some("Bearer token-a"));

    // A second trigger on the same WABA finds the app subscribed already.
    t.gw.add_listener(&t.key_a, WABA_A, "statuses", &receiver.url("/status"));
    let calls = t
        .meta
        .requests_to("POST", &format!("/{WABA_A}/subscribed_apps"));
    assert_eq!(calls.len(), 1, "subscribed again");
    // Every Graph call for A's WABA carried A's token, never B's.
    for r in t.meta.requests() {
        if r.path.contains(WABA_A) {
            assert_eq!(
                r.header("authorization"),
                Some("Bearer token-a"),
                "{}",
                r.path
            );
        }
    }
}

#[test]
fn a_waba_already_subscribed_to_the_app_is_not_subscribed_again() {
    let t = two_customers();
    t.meta.preset_subscribed(WABA_A);
    let receiver = Receiver::start();
    let (status, body) = t.gw.request(
        "POST",
        "/api/v1/listeners",
        Some(&t.key_a),
        Some(&new_listener(WABA_A, "messages", &receiver.url("/hook"))),
    );
    assert_eq!(status, 201, "{body}");
    assert!(t
        .meta
        .requests_to("POST", &format!("/{WABA_A}/subscribed_apps"))
        .is_empty());
    // The listener works although no subscription call was needed.
    let (status, _) = t.gw.post_webhook(&payloads::single_text(
        WABA_A,
        PHONE_A,
        "wamid.PRESET-1",
        "hello",
    ));
    assert_eq!(status, 200);
    receiver.wait_for_exactly(1, WAIT, Duration::ZERO);
}

#[test]
fn a_meta_refusal_while_subscribing_comes_back_as_422_and_no_listener_is_kept() {
    let t = two_customers();
    t.meta.script(
        "POST",
        &format!("/{WABA_A}/subscribed_apps"),
        Reply::json(
            403,
            json!({"error": {"message": "(#200) Permissions error", "type": "OAuthException", "code": 200, "fbtrace_id": "AkQ3xYz"}}),
        ),
    );
    let receiver = Receiver::start();
    let (status, body) = t.gw.request(
        "POST",
        "/api/v1/listeners",
        Some(&t.key_a),
        Some(&new_listener(WABA_A, "messages", &receiver.url("/hook"))),
    );
    // Meta refused (HTTP 4xx): the caller's to fix, not a bad gateway (see http/response.rs).
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "meta_error");
    assert_eq!(body["error"]["meta"]["code"], 200);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Permissions error"),
        "{body}"
    );
    assert!(
        body["error"]["hint"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{body}"
    );
    assert!(listener_ids(&t.gw, &t.key_a).is_empty());
    // No half-registered listener receives events either.
    let (status, _) = t.gw.post_webhook(&payloads::single_text(
        WABA_A,
        PHONE_A,
        "wamid.UNSUB-1",
        "anyone?",
    ));
    assert_eq!(status, 200);
    receiver.wait_for_exactly(0, WAIT, GRACE);
}

// ---------------------------------------------------------------------------
// GET /api/v1/messages/{id}: a sent message's story (guide §2.4)
// ---------------------------------------------------------------------------

fn post_status(gw: &Gateway, id: &str, status: &str, timestamp: &str, extra: Value) {
    let (code, answer) = gw.post_webhook(&payloads::statuses(
        WABA_A,
        PHONE_A,
        vec![payloads::status_with(id, status, timestamp, extra)],
    ));
    assert_eq!(code, 200, "{answer}");
}

fn history(gw: &Gateway, key: &str, id: &str) -> (u16, Value) {
    let encoded = utf8_percent_encode(id, NON_ALPHANUMERIC).to_string();
    gw.request(
        "GET",
        &format!("/api/v1/messages/{encoded}"),
        Some(key),
        None,
    )
}

fn steps(body: &Value) -> Vec<(String, String)> {
    body["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history in {body}"))
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap_or_default().to_string(),
                s["timestamp"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn step(status: &str, secs: u64) -> (String, String) {
    (status.to_string(), payloads::rfc3339(secs))
}

#[test]
fn a_sent_message_goes_sent_delivered_read() {
    let t = two_customers();
    let id = "wamid.HISTORY-1";
    post_status(&t.gw, id, "sent", "1764000100", json!({}));
    post_status(&t.gw, id, "delivered", "1764000104", json!({}));
    post_status(&t.gw, id, "read", "1764000160", json!({}));
    let (status, body) = history(&t.gw, &t.key_a, id);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messageId"], id);
    assert_eq!(body["status"], "read");
    assert_eq!(body["wabaId"], WABA_A);
    assert_eq!(body["phoneNumberId"], PHONE_A);
    assert_eq!(body["recipientId"], "420777123456");
    assert_eq!(
        steps(&body),
        [
            step("sent", 1764000100),
            step("delivered", 1764000104),
            step("read", 1764000160)
        ]
    );
}

#[test]
fn statuses_that_arrive_out_of_order_are_told_in_order_and_a_late_sent_does_not_hide_read() {
    let t = two_customers();
    let id = "wamid.HISTORY-2";
    post_status(&t.gw, id, "read", "1764000160", json!({}));
    post_status(&t.gw, id, "sent", "1764000100", json!({}));
    post_status(&t.gw, id, "delivered", "1764000104", json!({}));
    let (status, body) = history(&t.gw, &t.key_a, id);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "read");
    assert_eq!(
        steps(&body),
        [
            step("sent", 1764000100),
            step("delivered", 1764000104),
            step("read", 1764000160)
        ]
    );

    // Meta often stamps delivered and read with the same second.
    let id = "wamid.HISTORY-3";
    post_status(&t.gw, id, "read", "1764000200", json!({}));
    post_status(&t.gw, id, "delivered", "1764000200", json!({}));
    post_status(&t.gw, id, "sent", "1764000199", json!({}));
    let (_, body) = history(&t.gw, &t.key_a, id);
    assert_eq!(body["status"], "read");
    assert_eq!(
        steps(&body),
        [
            step("sent", 1764000199),
            step("delivered", 1764000200),
            step("read", 1764000200)
        ]
    );
}

#[test]
fn a_failed_message_carries_metas_errors_with_the_guides_hint() {
    let t = two_customers();
    let id = "wamid.HISTORY-FAIL";
    let error = json!({
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
    });
    post_status(&t.gw, id, "sent", "1764000100", json!({}));
    post_status(
        &t.gw,
        id,
        "failed",
        "1764000101",
        json!({"errors": [error.clone()]}),
    );
    let (status, body) = history(&t.gw, &t.key_a, id);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(
        steps(&body),
        [step("sent", 1764000100), step("failed", 1764000101)]
    );
    let failed = &body["history"][1];
    let errors = failed["errors"]
        .as_array()
        .expect("errors[] on the failed step");
    assert_eq!(errors.len(), 1);
    // Meta's error as sent, plus the guide's advice.
    let mut reported = errors[0].clone();
    let hint = reported
        .as_object_mut()
        .unwrap()
        .remove("hint")
        .and_then(|h| h.as_str().map(str::to_string))
        .expect("a hint for 131047");
    assert_eq!(reported, error);
    assert!(hint.contains("24 hours"), "{hint}");
    assert!(hint.to_lowercase().contains("template"), "{hint}");
    assert!(body["history"][0].get("errors").is_none(), "{body}");
}

#[test]
fn an_unknown_message_id_is_404() {
    let t = two_customers();
    post_status(&t.gw, "wamid.KNOWN", "sent", "1764000100", json!({}));
    for id in ["wamid.UNKNOWN", "wamid.KNOWN2", "wamid.KNOW"] {
        let (status, body) = history(&t.gw, &t.key_a, id);
        assert_eq!(status, 404, "{id}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

#[test]
fn message_ids_with_plus_slash_and_equals_work_when_percent_encoded() {
    let t = two_customers();
    let id = "wamid.HBgLMTY1+MDM4/Nzk0MzkVAgARGBI5QTND==";
    let sibling = "wamid.HBgLMTY1+MDM4/Nzk0MzkVAgARGBI5QTND";
    post_status(&t.gw, id, "delivered", "1764000104", json!({}));
    post_status(&t.gw, sibling, "read", "1764000105", json!({}));
    let (status, body) = history(&t.gw, &t.key_a, id);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messageId"], id);
    assert_eq!(body["status"], "delivered");
    let (status, body) = history(&t.gw, &t.key_a, sibling);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "read");
}

// ---------------------------------------------------------------------------
// The admin API (guide §1.4, §1.5)
// ---------------------------------------------------------------------------

#[test]
fn the_admin_config_shows_whether_the_app_secret_is_set_but_never_the_secret() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let (status, before) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["clientSecretSet"], false);

    let (status, put) = gw.admin(
        "PUT",
        "/api/v1/admin/config",
        Some(&json!({"clientId": APP_ID, "clientSecret": APP_SECRET, "verifyToken": VERIFY_TOKEN, "esConfigId": "987654321012345"})),
    );
    assert_eq!(status, 200, "{put}");
    let (status, after) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(status, 200);
    for body in [&put, &after] {
        assert!(
            !body.to_string().contains(APP_SECRET),
            "the secret leaked: {body}"
        );
        assert!(body.get("clientSecret").is_none(), "{body}");
    }
    assert_eq!(
        after,
        json!({
            "clientId": APP_ID,
            "clientSecretSet": true,
            "esConfigId": "987654321012345",
            "verifyToken": VERIFY_TOKEN,
            "webhookUrl": "https://gateway.test/plugins/appmixer/whatsapp/events",
            "callbackUrl": "https://gateway.test/auth/whatsapp/callback",
            "requireOpenWindow": false,
        })
    );

    // A change of one field leaves the others, the secret included, as they were.
    let (status, _) = gw.admin(
        "PUT",
        "/api/v1/admin/config",
        Some(&json!({"verifyToken": "rotated-token"})),
    );
    assert_eq!(status, 200);
    let (_, after) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(after["clientSecretSet"], true);
    assert_eq!(after["clientId"], APP_ID);
    assert_eq!(after["verifyToken"], "rotated-token");
}

#[test]
fn a_config_change_that_meta_would_not_accept_is_refused_naming_the_field() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    for (change, field) in [
        (json!({"clientId": "my-meta-app"}), "clientId"),
        (json!({"clientId": "12345 678"}), "clientId"),
        (json!({"esConfigId": "config-1"}), "esConfigId"),
        (json!({"verifyToken": "has a space"}), "verifyToken"),
    ] {
        let (status, body) = gw.admin("PUT", "/api/v1/admin/config", Some(&change));
        assert_eq!(status, 400, "{change}: {body}");
        assert_eq!(body["error"]["field"], field, "{change}: {body}");
    }
    let (status, body) = gw.admin(
        "PUT",
        "/api/v1/admin/config",
        Some(&json!({"appSecret": "x"})),
    );
    assert_eq!(status, 400, "an unknown setting: {body}");
    // Nothing of the refused changes stuck.
    let (_, config) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(config["clientId"], APP_ID);
    assert_eq!(config["esConfigId"], "");
    assert_eq!(config["verifyToken"], VERIFY_TOKEN);
}

#[test]
fn a_token_without_the_whatsapp_scopes_is_refused_naming_the_missing_scope() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    // Meta silently dropped whatsapp_business_management (a stale Business Integration).
    meta.add_token_data(
        "token-stale-grant",
        json!({
            "app_id": APP_ID, "type": "USER", "application": "Test App", "is_valid": true,
            "expires_at": 0,
            "scopes": ["whatsapp_business_messaging", "public_profile"],
            "granular_scopes": [{"scope": "whatsapp_business_messaging", "target_ids": [WABA_A]}],
            "user_id": "user-stale"
        }),
    );
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"accessToken": "token-stale-grant"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "missing_permissions");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("whatsapp_business_management"),
        "{message}"
    );
    assert!(
        !message.contains("whatsapp_business_messaging"),
        "names a scope the token has: {message}"
    );
    let hint = body["error"]["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("Business integrations"), "{hint}");

    // No scopes at all: both are named.
    meta.add_token_data(
        "token-no-scopes",
        json!({"app_id": APP_ID, "is_valid": true, "scopes": ["public_profile"], "granular_scopes": []}),
    );
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"accessToken": "token-no-scopes"})),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("whatsapp_business_management")
            && message.contains("whatsapp_business_messaging"),
        "{message}"
    );
    let (_, accounts) = gw.admin("GET", "/api/v1/admin/accounts", None);
    assert_eq!(accounts["accounts"], json!([]));
}

#[test]
fn an_invalid_or_empty_token_is_refused() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    for token in ["EAAG-expired-or-made-up", "", "two words"] {
        let (status, body) = gw.admin(
            "POST",
            "/api/v1/admin/accounts",
            Some(&json!({"accessToken": token})),
        );
        assert_eq!(status, 400, "{token:?}: {body}");
        assert_eq!(body["error"]["field"], "accessToken", "{token:?}: {body}");
    }
    let (_, accounts) = gw.admin("GET", "/api/v1/admin/accounts", None);
    assert_eq!(accounts["accounts"], json!([]));
}

#[test]
fn accounts_cannot_be_added_before_the_meta_app_is_configured() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    meta.add_token("token-a", &[WABA_A]);
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"accessToken": "token-a"})),
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "not_configured");
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("/api/v1/admin/config"),
        "{body}"
    );
    // Only the App ID is not enough: /debug_token needs the secret too.
    let (status, _) = gw.admin(
        "PUT",
        "/api/v1/admin/config",
        Some(&json!({"clientId": APP_ID})),
    );
    assert_eq!(status, 200);
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"accessToken": "token-a"})),
    );
    assert_eq!(status, 503, "{body}");
    assert!(meta.requests_to("GET", "/debug_token").is_empty());
}

#[test]
fn an_accounts_wabas_come_from_the_tokens_target_ids_and_the_request() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    // Embedded Signup granted two WABAs; the admin names one of them and a third.
    meta.add_token("token-es", &[WABA_A, WABA_B]);
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"accessToken": "token-es", "name": "Roastery Praha", "wabaIds": [WABA_B, "333333333333333"]})),
    );
    assert_eq!(status, 201, "{body}");
    let mut wabas: Vec<String> = serde_json::from_value(body["wabaIds"].clone()).unwrap();
    wabas.sort();
    assert_eq!(wabas, [WABA_A, WABA_B, "333333333333333"]);
    assert_eq!(body["name"], "Roastery Praha");
    assert!(body["id"].as_str().is_some_and(|s| !s.is_empty()));
    let key = body["apiKey"]
        .as_str()
        .expect("apiKey shown once")
        .to_string();
    assert!(
        !body.to_string().contains("token-es"),
        "the Meta token leaked: {body}"
    );

    // The key sees the same account, without the key or the token.
    let (status, me) = gw.request("GET", "/api/v1/me", Some(&key), None);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], body["id"]);
    assert_eq!(me["wabaIds"], body["wabaIds"]);
    assert!(me.get("apiKey").is_none() && !me.to_string().contains("token-es"));
    let (_, list) = gw.admin("GET", "/api/v1/admin/accounts", None);
    assert!(
        !list.to_string().contains(&key),
        "the API key is shown again: {list}"
    );

    // The WABA the admin named is usable like a granted one.
    let receiver = Receiver::start();
    gw.add_listener(&key, "333333333333333", "messages", &receiver.url("/hook"));
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"accessToken": "token-es", "wabaIds": ["not-a-waba"]})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "wabaIds");
}

#[test]
fn removing_an_account_stops_its_listeners_and_its_key() {
    let t = two_customers();
    let a = Receiver::start();
    let b = Receiver::start();
    t.gw.add_listener(&t.key_a, WABA_A, "messages", &a.url("/a"));
    t.gw.add_listener(&t.key_a, WABA_A, "statuses", &a.url("/a-status"));
    t.gw.add_listener(&t.key_b, WABA_B, "messages", &b.url("/b"));

    let (status, body) = t.gw.admin(
        "DELETE",
        &format!("/api/v1/admin/accounts/{}", t.id_a),
        None,
    );
    assert_eq!(status, 204, "{body}");

    let (status, _) = t.gw.request("GET", "/api/v1/me", Some(&t.key_a), None);
    assert_eq!(status, 401, "the removed account's key still works");
    let (status, _) =
        t.gw.request("GET", "/api/v1/listeners", Some(&t.key_a), None);
    assert_eq!(status, 401);
    let (_, accounts) = t.gw.admin("GET", "/api/v1/admin/accounts", None);
    let ids: Vec<&str> = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&t.id_a.as_str()) && ids.len() == 1,
        "{accounts}"
    );

    // Events for both WABAs: B's flow still gets its own, A's gets nothing.
    let body = payloads::notification(&[
        (
            WABA_A,
            vec![
                payloads::messages_value(
                    PHONE_A,
                    vec![payloads::contact("420777123456", "Jana")],
                    vec![payloads::text(
                        "wamid.AFTER-A",
                        "420777123456",
                        "anyone there?",
                    )],
                ),
                payloads::statuses_value(
                    PHONE_A,
                    vec![payloads::status(
                        "wamid.AFTER-A-OUT",
                        "read",
                        "420777123456",
                    )],
                ),
            ],
        ),
        (
            WABA_B,
            vec![payloads::messages_value(
                PHONE_B,
                vec![payloads::contact("421905111222", "Eva")],
                vec![payloads::text("wamid.AFTER-B", "421905111222", "hello B")],
            )],
        ),
    ]);
    let (status, _) = t.gw.post_webhook(&body);
    assert_eq!(status, 200);
    let got = b.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(got[0].json()["data"]["id"], "wamid.AFTER-B");
    a.wait_for_exactly(0, WAIT, Duration::ZERO);

    let (status, _) = t.gw.admin(
        "DELETE",
        &format!("/api/v1/admin/accounts/{}", t.id_a),
        None,
    );
    assert_eq!(status, 404, "removing twice");
}

#[test]
fn a_known_path_asked_with_another_method_answers_405_with_allow() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let resp = crate::support::gateway::client()
        .delete(gw.url("/api/v1/me"))
        .call()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    let unknown = crate::support::gateway::client()
        .get(gw.url("/api/v1/nope"))
        .call()
        .expect("request");
    assert_eq!(unknown.status().as_u16(), 404);
    assert!(unknown.headers().get("allow").is_none());
}

#[test]
fn metrics_count_webhooks_and_show_what_waits() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let down = Receiver::start();
    down.script((0..10).map(|_| Reply::status(500)));
    let (listener, _) = gw.add_listener(&key, WABA_A, "messages", &down.url("/hook"));
    let metrics = || {
        let page = crate::support::browser::get(&gw.url("/metrics"));
        assert_eq!(page.status, 200);
        page.body
    };
    let m = metrics();
    assert!(m.contains("# TYPE wabridge_deliveries_queued gauge"), "{m}");
    assert_eq!(sample(&m, "wabridge_deliveries_queued"), 0);
    assert_eq!(sample(&m, "wabridge_accounts{status=\"ok\"}"), 1);
    assert_eq!(sample(&m, "wabridge_listeners{state=\"active\"}"), 1);

    let body = payloads::single_text(WABA_A, PHONE_A, "wamid.M1", "hi");
    assert_eq!(gw.post_webhook(&body).0, 200);
    assert_eq!(gw.post_webhook(&body).0, 200, "Meta's redelivery");
    assert_eq!(gw.post_webhook_signed(&body, Some("sha256=00")).0, 401);
    assert_eq!(gw.post_webhook(br#"{"object":"page"}"#).0, 200);
    // The receiver fails: the delivery waits in the outbox for its retry.
    let m = crate::delivery::wait_until(WAIT, "the failed attempt", || {
        let m = metrics();
        (sample(&m, "wabridge_delivery_attempts_total") >= 1).then_some(m)
    });
    assert_eq!(sample(&m, "wabridge_webhooks_received_total"), 4);
    assert_eq!(sample(&m, "wabridge_webhook_signature_failures_total"), 1);
    assert_eq!(sample(&m, "wabridge_events_accepted_total"), 1);
    assert_eq!(sample(&m, "wabridge_events_duplicate_total"), 1);
    assert_eq!(sample(&m, "wabridge_quarantined_webhooks"), 1);
    assert_eq!(sample(&m, "wabridge_deliveries_queued"), 1);
    // Every write is a commit timed in the histogram: at least the account,
    // the listener, the event and the attempt's outcome.
    assert!(
        m.contains("# TYPE wabridge_store_commit_seconds histogram"),
        "{m}"
    );
    let commits = sample(&m, "wabridge_store_commit_seconds_count");
    assert!(commits >= 4, "{commits} commits timed:\n{m}");
    assert_eq!(
        sample(&m, "wabridge_store_commit_seconds_bucket{le=\"+Inf\"}"),
        commits
    );
    // Each 200 Meta got is timed, the quarantined body's too; the refused POST is not.
    assert_eq!(sample(&m, "wabridge_webhook_seconds_count"), 3, "{m}");
    assert_eq!(
        sample(&m, "wabridge_webhook_seconds_bucket{le=\"+Inf\"}"),
        3
    );

    let mut b = crate::support::admin_browser::Browser::new(&gw);
    assert_eq!(b.login(crate::support::gateway::ADMIN_TOKEN).status, 303);
    let csrf = b.csrf();
    let pause = format!("/admin/listeners/{listener}/pause");
    assert_eq!(b.post(&pause, &[("csrf", &csrf)]).status, 303);
    meta.revoke_user("user-token-a");
    let (status, _) = gw.request(
        "GET",
        &format!("/api/v1/business-accounts/{WABA_A}/phone-numbers"),
        Some(&key),
        None,
    );
    assert_eq!(status, 422);
    let m = metrics();
    assert_eq!(sample(&m, "wabridge_listeners{state=\"paused\"}"), 1);
    assert_eq!(sample(&m, "wabridge_listeners{state=\"active\"}"), 0);
    assert_eq!(
        sample(&m, "wabridge_accounts{status=\"needs_reconnect\"}"),
        1
    );
}
