//! Meta's side of the gateway: the verification handshake, signed POSTs, and what a
//! flow receives for every kind of message and status Meta sends (guide §1.6, §2.4–2.5).

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::support::fake_meta::{FakeMeta, APP_SECRET};
use crate::support::gateway::{client, Gateway, Options, VERIFY_TOKEN};
use crate::support::payloads::{self, fixture, rfc3339};
use crate::support::receiver::Receiver;
use crate::support::server::Recorded;
use crate::support::standard_webhooks::assert_verified;

/// The WABA and phone number of the fixtures under tests/fixtures/messages and statuses.
const WABA: &str = "102290129340398";
const PHONE: &str = "106540352242922";

const WAIT: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_millis(500);

/// A configured gateway with one account on the fixtures' WABA and a receiver
/// behind a `messages` and a `statuses` listener.
struct Pipeline {
    _meta: FakeMeta,
    gw: Gateway,
    key: String,
    messages: Receiver,
    messages_secret: String,
    statuses: Receiver,
    statuses_secret: String,
}

impl Pipeline {
    fn start() -> Pipeline {
        Self::start_with(Options::default())
    }

    fn start_with(options: Options) -> Pipeline {
        let meta = FakeMeta::start();
        let gw = Gateway::start_with(&meta, options);
        gw.configure();
        let (_, key) = gw.add_account(&meta, "token-roastery", &[WABA]);
        let messages = Receiver::start();
        let (_, messages_secret) =
            gw.add_listener(&key, WABA, "messages", &messages.url("/new-message"));
        let statuses = Receiver::start();
        let (_, statuses_secret) =
            gw.add_listener(&key, WABA, "statuses", &statuses.url("/status-updated"));
        Pipeline {
            _meta: meta,
            gw,
            key,
            messages,
            messages_secret,
            statuses,
            statuses_secret,
        }
    }
}

// ---------------------------------------------------------------------------
// The verification handshake (guide §1.6 step 4)
// ---------------------------------------------------------------------------

/// GET on the events URL as Meta's "Verify and save" does: (status, content-type, body).
fn handshake(gw: &Gateway, query: &str) -> (u16, String, String) {
    let mut resp = client()
        .get(gw.url(&format!("/plugins/appmixer/whatsapp/events?{query}")))
        .call()
        .expect("handshake GET failed");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (status, content_type, body)
}

#[test]
fn meta_verifies_the_callback_url_and_gets_exactly_its_challenge_back() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (status, content_type, body) = handshake(
        &gw,
        &format!("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"),
    );
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain"),
        "content-type {content_type:?}"
    );
    assert_eq!(body, "1158201444");

    // The parameters may come in any order; the challenge is echoed as sent.
    let (status, _, body) = handshake(
        &gw,
        &format!("hub.verify_token={VERIFY_TOKEN}&hub.challenge=abc-XYZ_987&hub.mode=subscribe"),
    );
    assert_eq!((status, body.as_str()), (200, "abc-XYZ_987"));
}

#[test]
fn a_handshake_with_the_wrong_token_mode_or_no_challenge_is_refused() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    for query in [
        "hub.mode=subscribe&hub.challenge=42&hub.verify_token=not-the-token".to_string(),
        format!("hub.mode=subscribe&hub.challenge=42&hub.verify_token={VERIFY_TOKEN}x"),
        format!(
            "hub.mode=subscribe&hub.challenge=42&hub.verify_token={}",
            VERIFY_TOKEN.to_uppercase()
        ),
        "hub.mode=subscribe&hub.challenge=42&hub.verify_token=".to_string(),
        "hub.mode=subscribe&hub.challenge=42".to_string(),
        format!("hub.mode=unsubscribe&hub.challenge=42&hub.verify_token={VERIFY_TOKEN}"),
        format!("hub.challenge=42&hub.verify_token={VERIFY_TOKEN}"),
        format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"),
        String::new(),
    ] {
        let (status, _, body) = handshake(&gw, &query);
        assert_eq!(status, 403, "{query:?} must be refused, got {body:?}");
        assert_ne!(body, "42", "{query:?} must not echo the challenge");
    }
}

#[test]
fn before_a_verify_token_is_configured_every_handshake_is_refused() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    for token in [VERIFY_TOKEN, ""] {
        let (status, _, body) = handshake(
            &gw,
            &format!("hub.mode=subscribe&hub.challenge=42&hub.verify_token={token}"),
        );
        assert_eq!(status, 403, "token {token:?} before setup: {body}");
    }
    // The app credentials alone do not make an empty verify token acceptable.
    let (status, body) = gw.admin(
        "PUT",
        "/api/v1/admin/config",
        Some(&json!({"clientId": "1234567890", "clientSecret": APP_SECRET})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = handshake(&gw, "hub.mode=subscribe&hub.challenge=42&hub.verify_token=");
    assert_eq!(status, 403);
}

// ---------------------------------------------------------------------------
// Signed POSTs (X-Hub-Signature-256)
// ---------------------------------------------------------------------------

#[test]
fn a_post_with_a_missing_malformed_or_wrong_signature_is_refused_and_nothing_is_kept() {
    let p = Pipeline::start();
    let body = payloads::single_text(WABA, PHONE, "wamid.SIGNED-1", "is this really Meta?");
    let right = crate::support::meta_signature(&body, APP_SECRET);
    let hex = right.strip_prefix("sha256=").unwrap().to_string();
    let other_body = payloads::single_text(WABA, PHONE, "wamid.SIGNED-2", "another body");
    let bad: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("empty", Some(String::new())),
        ("no sha256= prefix", Some(hex.clone())),
        ("sha1 instead of sha256", Some(format!("sha1={hex}"))),
        ("not hex", Some(format!("sha256={}", "zz".repeat(32)))),
        ("truncated", Some(format!("sha256={}", &hex[..40]))),
        (
            "signed with another secret",
            Some(crate::support::meta_signature(&body, "not-the-app-secret")),
        ),
        (
            "signature of another body",
            Some(crate::support::meta_signature(&other_body, APP_SECRET)),
        ),
    ];
    for (what, signature) in &bad {
        let (status, answer) = p.gw.post_webhook_signed(&body, signature.as_deref());
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_signature", "{what}");
    }
    // Nothing was delivered…
    p.messages.wait_for_exactly(0, WAIT, GRACE);
    // …and nothing was stored: the same message, correctly signed, is new to the gateway.
    let (status, answer) = p.gw.post_webhook_signed(&body, Some(&right));
    assert_eq!(status, 200, "{answer}");
    let got = p.messages.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(got[0].json()["data"]["id"], "wamid.SIGNED-1");
    p.statuses.wait_for_exactly(0, WAIT, Duration::ZERO);
}

#[test]
fn without_a_client_secret_meta_is_told_to_retry_and_the_same_body_is_accepted_later() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let body = payloads::single_text(WABA, PHONE, "wamid.EARLY-1", "sent before setup");
    let (status, answer) = gw.post_webhook(&body);
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "not_configured");

    // The admin finishes setup; Meta retries the very same body.
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-roastery", &[WABA]);
    let receiver = Receiver::start();
    let (_, secret) = gw.add_listener(&key, WABA, "messages", &receiver.url("/hook"));
    let (status, answer) = gw.post_webhook(&body);
    assert_eq!(status, 200, "{answer}");
    let got = receiver.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(got[0].json()["data"]["id"], "wamid.EARLY-1");
    assert_verified(&got, &secret);
}

#[test]
fn a_body_over_max_body_bytes_is_refused_with_413() {
    let p = Pipeline::start_with(Options {
        args: vec!["--max-body-bytes".into(), "4096".into()],
        ..Default::default()
    });
    let big = payloads::single_text(WABA, PHONE, "wamid.BIG-1", &"x".repeat(16 * 1024));
    assert!(big.len() > 4096);
    let (status, answer) = p.gw.post_webhook(&big);
    assert_eq!(status, 413, "{answer}");

    let small = payloads::single_text(WABA, PHONE, "wamid.SMALL-1", "fits");
    assert!(small.len() < 4096);
    let (status, answer) = p.gw.post_webhook(&small);
    assert_eq!(status, 200, "{answer}");
    let got = p.messages.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(got[0].json()["data"]["id"], "wamid.SMALL-1");
}

// ---------------------------------------------------------------------------
// Every inbound message type reaches the `messages` listener as Meta sent it
// ---------------------------------------------------------------------------

/// What the contract adds from the matching `contacts[]` entry for the fixtures' usual sender.
fn jana() -> Value {
    json!({"waId": "420777123456", "userId": "CZ.10592837461028374651", "name": "Jana Nováková"})
}

/// Posts `tests/fixtures/messages/{name}.json` and checks the one delivery against
/// the contract: the envelope, and `data` = Meta's message object + wabaId,
/// phoneNumberId + the sender fields given here, compared as whole JSON.
fn assert_delivered_as_received(name: &str, sender: Value) {
    let p = Pipeline::start();
    let path = format!("messages/{name}.json");
    let (status, answer) = p.gw.post_webhook(&fixture(&path));
    assert_eq!(status, 200, "{name}: {answer}");

    let sent = payloads::fixture_json(&path);
    let message = sent["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    let mut data: Map<String, Value> = message.as_object().unwrap().clone();
    data.insert("field".into(), json!("messages"));
    data.insert("wabaId".into(), json!(WABA));
    data.insert("phoneNumberId".into(), json!(PHONE));
    data.extend(sender.as_object().unwrap().clone());
    let secs: u64 = message["timestamp"].as_str().unwrap().parse().unwrap();
    let expected = json!({
        "type": "whatsapp.message.received",
        "timestamp": rfc3339(secs),
        "data": data,
    });

    let got = p.messages.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "{name}");
    assert_eq!(
        got[0].header("content-type"),
        Some("application/json"),
        "{name}"
    );
    assert_eq!(got[0].json(), expected, "{name}: delivered body differs");
    assert_verified(&got, &p.messages_secret);
    assert!(
        p.statuses.all_requests().is_empty(),
        "{name} went to the statuses listener"
    );
}

#[test]
fn a_text_message_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("text", jana());
}

#[test]
fn an_image_message_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("image", jana());
}

#[test]
fn a_voice_note_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("audio", jana());
}

#[test]
fn a_video_message_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("video", jana());
}

#[test]
fn a_document_message_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("document", jana());
}

#[test]
fn a_sticker_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("sticker", jana());
}

#[test]
fn a_shared_location_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("location", jana());
}

#[test]
fn a_shared_contact_card_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("contacts", jana());
}

#[test]
fn a_reply_button_click_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("interactive_button_reply", jana());
}

#[test]
fn a_list_choice_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("interactive_list_reply", jana());
}

#[test]
fn a_completed_whatsapp_flow_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("interactive_nfm_reply", jana());
}

#[test]
fn a_template_quick_reply_button_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("button", jana());
}

#[test]
fn a_reaction_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("reaction", jana());
}

#[test]
fn a_catalog_order_reaches_its_wabas_messages_listener() {
    assert_delivered_as_received("order", jana());
}

#[test]
fn a_system_message_without_contacts_names_its_sender_by_from() {
    // Meta sends no contacts[] with a number change; the sender is still `from`.
    assert_delivered_as_received("system", json!({"waId": "420777123456"}));
}

#[test]
fn an_unsupported_message_reaches_the_listener_with_metas_errors() {
    assert_delivered_as_received("unsupported", jana());
}

#[test]
fn a_reply_keeps_the_context_of_the_message_it_answers() {
    assert_delivered_as_received("reply_with_context", jana());
}

#[test]
fn a_message_from_a_click_to_whatsapp_ad_keeps_its_referral() {
    assert_delivered_as_received("referral", jana());
}

#[test]
fn a_sender_known_only_by_bsuid_and_username_is_identified_by_user_id() {
    // No wa_id anywhere: no waId, but userId, parentUserId, name and username.
    assert_delivered_as_received(
        "bsuid_only",
        json!({
            "userId": "US.13491208655302741918",
            "parentUserId": "US.ENT.11815799212886844830",
            "name": "Sam",
            "username": "@sam.roasts",
        }),
    );
}

// ---------------------------------------------------------------------------
// Statuses reach the `statuses` listener in the contract's shape (§5)
// ---------------------------------------------------------------------------

/// The `data` the contract promises for each status in tests/fixtures/statuses/every_status.json.
fn expected_statuses() -> Vec<Value> {
    let mid = "wamid.HBgMNDIwNzc3MTIzNDU2FQIAERgSQjM0QzFBN0U5RjBFMkQ4N0EyAA==";
    let pricing =
        json!({"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"});
    vec![
        json!({
            "id": mid, "status": "sent", "timestamp": "1764000100",
            "recipientId": "420777123456", "recipientUserId": "CZ.10592837461028374651",
            "conversation": {"id": "6ceb9d929c8e3b7e1a2d0d4a3b1f6e21", "expiration_timestamp": "1764086400", "origin": {"type": "utility"}},
            "pricing": pricing,
            "wabaId": WABA, "phoneNumberId": PHONE,
        }),
        json!({
            "id": mid, "status": "delivered", "timestamp": "1764000104",
            "recipientId": "420777123456", "recipientUserId": "CZ.10592837461028374651",
            "conversation": {"id": "6ceb9d929c8e3b7e1a2d0d4a3b1f6e21", "origin": {"type": "utility"}},
            "pricing": pricing,
            "wabaId": WABA, "phoneNumberId": PHONE,
        }),
        json!({
            "id": mid, "status": "read", "timestamp": "1764000160",
            "recipientId": "420777123456", "recipientUserId": "CZ.10592837461028374651",
            "wabaId": WABA, "phoneNumberId": PHONE,
        }),
        json!({
            "id": "wamid.HBgMNDIwNzc3MTIzNDU2FQIAERgSRkFJTEVEMDAwMDAwMDAwMDAxAA==",
            "status": "failed", "timestamp": "1764000200",
            "recipientId": "420608111222",
            "errors": [{
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
            }],
            "wabaId": WABA, "phoneNumberId": PHONE,
        }),
        json!({
            "id": "wamid.HBgXVVMuMTM0OTEyMDg2NTUzMDI3NDE5MTgVAgARGBJCU1VJRFNFTlQwMDAwMDAwMQA=",
            "status": "sent", "timestamp": "1764000300",
            "recipientUserId": "US.13491208655302741918",
            "recipientParentUserId": "US.ENT.11815799212886844830",
            "conversation": {"id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "expiration_timestamp": "1764086700", "origin": {"type": "service"}},
            "pricing": {"billable": false, "pricing_model": "PMP", "category": "service", "type": "free_customer_service"},
            "wabaId": WABA, "phoneNumberId": PHONE,
        }),
    ]
}

fn by_id_and_status(deliveries: &[Recorded]) -> Vec<Value> {
    let mut bodies: Vec<Value> = deliveries.iter().map(Recorded::json).collect();
    bodies.sort_by_key(|b| {
        (
            b["data"]["timestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            b["data"]["status"].as_str().unwrap_or_default().to_string(),
        )
    });
    bodies
}

#[test]
fn sent_delivered_read_and_failed_reach_the_statuses_listener_in_the_contract_shape() {
    let p = Pipeline::start();
    let (status, answer) = p.gw.post_webhook(&fixture("statuses/every_status.json"));
    assert_eq!(status, 200, "{answer}");

    let expected = expected_statuses();
    let got = p.statuses.wait_for_exactly(expected.len(), WAIT, GRACE);
    assert_verified(&got, &p.statuses_secret);
    for (body, data) in by_id_and_status(&got).iter().zip(&expected) {
        let mut data = data.clone();
        data["field"] = json!("messages");
        let secs: u64 = data["timestamp"].as_str().unwrap().parse().unwrap();
        let want =
            json!({"type": "whatsapp.message.status", "timestamp": rfc3339(secs), "data": data});
        assert_eq!(body, &want);
    }
    assert!(
        p.messages.all_requests().is_empty(),
        "a status went to the messages listener"
    );
}

// ---------------------------------------------------------------------------
// Quarantine: signed but unusable bodies
// ---------------------------------------------------------------------------

#[test]
fn a_signed_body_that_is_not_a_whatsapp_notification_is_quarantined_and_not_delivered() {
    let p = Pipeline::start();
    let mut ids = Vec::new();
    for body in [
        b"this is not JSON at all".to_vec(),
        b"{\"object\": \"whatsapp_business_account\", \"entry\": [".to_vec(),
        serde_json::to_vec(&json!({
            "object": "page",
            "entry": [{"id": WABA, "changes": [{"field": "messages", "value":
                payloads::messages_value(PHONE, vec![payloads::contact("420777123456", "Jana")],
                    vec![payloads::text("wamid.PAGE-1", "420777123456", "wrong object")])}]}]
        }))
        .unwrap(),
        serde_json::to_vec(&json!({"entry": []})).unwrap(),
    ] {
        let (status, answer) = p.gw.post_webhook(&body);
        assert_eq!(status, 200, "{}: {answer}", String::from_utf8_lossy(&body));
        let id = answer["quarantined"].clone();
        assert!(
            !id.is_null() && id != json!(""),
            "no quarantine id in {answer}"
        );
        ids.push(id);
    }
    let mut distinct = ids.clone();
    distinct.sort_by_key(Value::to_string);
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "quarantine ids repeat: {ids:?}");

    // The admin can see each body, as received, and why it was kept.
    let (status, list) = p.gw.admin("GET", "/api/v1/admin/quarantine", None);
    assert_eq!(status, 200, "{list}");
    let items = list["quarantine"].as_array().expect("quarantine[]");
    assert_eq!(items.len(), ids.len(), "{list}");
    let not_json = items
        .iter()
        .find(|i| i["id"] == ids[0])
        .unwrap_or_else(|| panic!("quarantine item {} missing: {list}", ids[0]));
    assert_eq!(not_json["body"], "this is not JSON at all");
    assert!(not_json["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let page = items.iter().find(|i| i["id"] == ids[2]).unwrap();
    assert!(page["reason"].as_str().unwrap().contains("page"), "{page}");
    // Account keys do not see the quarantine.
    let (status, _) =
        p.gw.request("GET", "/api/v1/admin/quarantine", Some(&p.key), None);
    assert_eq!(status, 401);

    // A good event afterwards arrives alone: nothing quarantined was queued before it.
    let (status, _) =
        p.gw.post_webhook(&payloads::single_text(WABA, PHONE, "wamid.AFTER-1", "hi"));
    assert_eq!(status, 200);
    let got = p.messages.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(got[0].json()["data"]["id"], "wamid.AFTER-1");
    p.statuses.wait_for_exactly(0, WAIT, Duration::ZERO);
}
