//! The WhatsApp Flows data endpoint (CONTRACT §4.1): a flow tool sets it up
//! for its number, the test plays Meta's client (encrypting with the public
//! key wabridge uploaded, signing with the App Secret) and the receiver plays
//! the flow tool.

use std::time::{Duration, Instant};

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use rsa::{Oaep, PrivateKey, PublicKey};
use serde_json::{json, Value};

use crate::flow::{bearer, World, PHONE_A, PHONE_B, TOKEN_A};
use crate::support::admin_browser::Browser;
use crate::support::fake_meta::APP_SECRET;
use crate::support::gateway::{client, ADMIN_TOKEN, PUBLIC_URL};
use crate::support::meta_signature;
use crate::support::receiver::Receiver;
use crate::support::server::Reply;
use crate::support::standard_webhooks::assert_verified;

type FlowCipher = AesGcm<Aes128, U16>;

const AES_KEY: [u8; 16] = *b"flows-aes-key-16";
const IV: [u8; 16] = *b"initial-vector16";

fn endpoint_path(phone: &str) -> String {
    format!("/api/v1/phone-numbers/{phone}/flows-endpoint")
}

/// PUTs the endpoint of PHONE_A with account A's key; returns the answer.
fn set_up(w: &World, url: &str) -> Value {
    let (status, body) = w.a("PUT", &endpoint_path(PHONE_A), Some(&json!({"url": url})));
    assert_eq!(status, 200, "{body}");
    body
}

/// Meta's request body for `plain`, encrypted for `public_pem` as WhatsApp does.
fn meta_request(public_pem: &str, plain: &Value) -> Vec<u8> {
    let public = PublicKey::from_public_key_pem(public_pem).expect("a PEM public key");
    let wrapped = public
        .encrypt(&mut getrandom::SysRng, Oaep::<Sha256>::new(), &AES_KEY)
        .unwrap();
    let data = FlowCipher::new(&AES_KEY.into())
        .encrypt(&IV.into(), plain.to_string().as_bytes())
        .unwrap();
    serde_json::to_vec(&json!({
        "encrypted_flow_data": STANDARD.encode(data),
        "encrypted_aes_key": STANDARD.encode(wrapped),
        "initial_vector": STANDARD.encode(IV),
    }))
    .unwrap()
}

/// wabridge's answer opened as WhatsApp opens it: same key, every bit of the IV flipped.
fn open_answer(text: &str) -> Value {
    let flipped = IV.map(|b| !b);
    let sealed = STANDARD.decode(text.trim()).expect("a base64 answer");
    let plain = FlowCipher::new(&AES_KEY.into())
        .decrypt(&flipped.into(), sealed.as_slice())
        .expect("the answer opens with the flipped IV");
    serde_json::from_slice(&plain).unwrap()
}

/// POSTs to `/flows/{phone}` as Meta does; returns (status, content type, body).
fn post_flows(
    w: &World,
    phone: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (u16, String, String) {
    let mut req = client()
        .post(w.gw.url(&format!("/flows/{phone}")))
        .header("content-type", "application/json");
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    let mut resp = req.send(body).expect("the Flows POST got an answer");
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (
        status,
        kind,
        resp.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn signed(body: &[u8]) -> String {
    meta_signature(body, APP_SECRET)
}

#[test]
fn a_flows_request_is_decrypted_forwarded_signed_answered_and_encrypted_back() {
    let w = World::start();
    let tool = Receiver::start();
    let answer =
        json!({"version": "3.0", "screen": "CONFIRM", "data": {"slots": ["9:00", "10:00"]}});
    tool.script([Reply::json(200, answer.clone())]);

    let started = Instant::now();
    let endpoint = set_up(&w, &tool.url("/flow"));
    println!("PUT with key generation took {:?}", started.elapsed());
    assert_eq!(
        endpoint["endpointUrl"],
        format!("{PUBLIC_URL}/flows/{PHONE_A}")
    );
    assert_eq!(endpoint["url"], tool.url("/flow"));
    assert_eq!(endpoint["keyUploaded"], true);
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let public_key = endpoint["publicKey"].as_str().unwrap().to_string();
    assert!(!endpoint.to_string().contains("PRIVATE"), "{endpoint}");

    // Meta was given the public key, for this number, with account A's token.
    let uploads = w
        .meta
        .requests_to("POST", &format!("/{PHONE_A}/whatsapp_business_encryption"));
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].path,
        format!("/v25.0/{PHONE_A}/whatsapp_business_encryption")
    );
    assert_eq!(uploads[0].json()["business_public_key"], public_key);
    assert_eq!(bearer(&uploads[0]), TOKEN_A);

    // GET shows the same, never the private key.
    let (status, shown) = w.a("GET", &endpoint_path(PHONE_A), None);
    assert_eq!(status, 200);
    assert_eq!(shown, endpoint);

    let request = json!({"version": "3.0", "action": "data_exchange", "screen": "BOOK",
                         "data": {"date": "2026-12-01"}, "flow_token": "tok-42"});
    let body = meta_request(&public_key, &request);
    let (status, kind, text) = post_flows(&w, PHONE_A, &body, Some(&signed(&body)));
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("text/plain"), "{kind}");
    assert_eq!(open_answer(&text), answer);

    // The flow tool got the plain request, signed as every delivery is.
    let got = tool.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/flow");
    assert_verified(&got, &secret);
    let sent = got[0].json();
    assert_eq!(sent["type"], "whatsapp.flow.data_exchange");
    assert!(sent["timestamp"].as_str().unwrap().ends_with('Z'));
    let mut expected = request.clone();
    expected["phoneNumberId"] = json!(PHONE_A);
    assert_eq!(sent["data"], expected);

    // A second PUT (a new URL) keeps the key and the secret, and uploads the key again.
    let again = set_up(&w, &tool.url("/flow2"));
    assert_eq!(again["publicKey"], public_key.as_str());
    assert_eq!(again["secret"], secret.as_str());
    assert_eq!(again["url"], tool.url("/flow2"));
}

#[test]
fn metas_ping_is_answered_by_wabridge_without_the_flow_tool() {
    let w = World::start();
    let tool = Receiver::start();
    let endpoint = set_up(&w, &tool.url("/flow"));
    let body = meta_request(
        endpoint["publicKey"].as_str().unwrap(),
        &json!({"version": "3.0", "action": "ping"}),
    );
    let (status, _, text) = post_flows(&w, PHONE_A, &body, Some(&signed(&body)));
    assert_eq!(status, 200, "{text}");
    assert_eq!(open_answer(&text), json!({"data": {"status": "active"}}));
    assert!(
        tool.all_requests().is_empty(),
        "the flow tool never sees a ping"
    );
}

#[test]
fn a_request_for_another_key_is_421_and_an_unsigned_or_missigned_one_432() {
    let w = World::start();
    let tool = Receiver::start();
    let endpoint = set_up(&w, &tool.url("/flow"));
    let ping = json!({"version": "3.0", "action": "ping"});

    let other = PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    let other_pem = rsa::pkcs8::EncodePublicKey::to_public_key_pem(
        &other.to_public_key(),
        rsa::pkcs8::LineEnding::LF,
    )
    .unwrap();
    let body = meta_request(&other_pem, &ping);
    let (status, _, text) = post_flows(&w, PHONE_A, &body, Some(&signed(&body)));
    assert_eq!(status, 421, "{text}");
    // Unsigned, it is refused for that before anyone tries to decrypt it.
    let (status, _, text) = post_flows(&w, PHONE_A, &body, None);
    assert_eq!(status, 432, "{text}");

    let body = meta_request(endpoint["publicKey"].as_str().unwrap(), &ping);
    let (status, _, text) = post_flows(&w, PHONE_A, &body, None);
    assert_eq!(status, 432, "{text}");
    let (status, _, text) = post_flows(
        &w,
        PHONE_A,
        &body,
        Some(&meta_signature(&body, "not-the-app-secret")),
    );
    assert_eq!(status, 432, "{text}");
    // The signature is checked before anything else: also for a number without an endpoint.
    let (status, _, _) = post_flows(&w, PHONE_B, &body, None);
    assert_eq!(status, 432);
    assert!(tool.all_requests().is_empty());
}

#[test]
fn a_slow_flow_tool_gets_meta_a_5xx_within_10_seconds() {
    let w = World::start();
    let tool = Receiver::start();
    tool.script([Reply::json(200, json!({"screen": "LATE"})).delayed(Duration::from_secs(12))]);
    let endpoint = set_up(&w, &tool.url("/flow"));
    let body = meta_request(
        endpoint["publicKey"].as_str().unwrap(),
        &json!({"version": "3.0", "action": "INIT", "flow_token": "t"}),
    );
    let started = Instant::now();
    let (status, _, text) = post_flows(&w, PHONE_A, &body, Some(&signed(&body)));
    let took = started.elapsed();
    assert!((500..600).contains(&status), "{status} {text}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    assert!(text.contains("flow_tool_failed"), "{text}");

    // A flow tool answering an error is a 5xx too.
    tool.script([Reply::status(500)]);
    let (status, _, text) = post_flows(&w, PHONE_A, &body, Some(&signed(&body)));
    assert_eq!(status, 502, "{text}");
}

#[test]
fn another_accounts_number_is_refused_and_meta_is_given_no_key() {
    let w = World::start();
    let tool = Receiver::start();
    // Account B has used its number, so wabridge knows it is B's.
    let (status, _) = w.gw.request(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_B}"),
        Some(&w.key_b),
        None,
    );
    assert_eq!(status, 200);
    let before = w.graph_calls();
    let (status, body) = w.a(
        "PUT",
        &endpoint_path(PHONE_B),
        Some(&json!({"url": tool.url("/flow")})),
    );
    assert!(status == 403 || status == 404, "{status} {body}");
    for method in ["GET", "DELETE"] {
        let (status, _) = w.a(method, &endpoint_path(PHONE_B), None);
        assert!(status == 403 || status == 404, "{method}: {status}");
    }
    assert_eq!(w.graph_calls(), before, "Meta saw a call");
    assert!(w
        .meta
        .requests_to("POST", &format!("/{PHONE_B}/whatsapp_business_encryption"))
        .is_empty());
}

#[test]
fn a_removed_endpoint_answers_nothing() {
    let w = World::start();
    let tool = Receiver::start();
    let endpoint = set_up(&w, &tool.url("/flow"));
    let (status, _) = w.a("DELETE", &endpoint_path(PHONE_A), None);
    assert_eq!(status, 204);
    let (status, _) = w.a("GET", &endpoint_path(PHONE_A), None);
    assert_eq!(status, 404);
    let body = meta_request(
        endpoint["publicKey"].as_str().unwrap(),
        &json!({"version": "3.0", "action": "ping"}),
    );
    let (status, _, _) = post_flows(&w, PHONE_A, &body, Some(&signed(&body)));
    assert_eq!(status, 404);
}

#[test]
fn a_flow_tool_url_the_guard_refuses_is_a_400_before_any_key_is_made() {
    let w = World::start();
    let (status, body) = w.a(
        "PUT",
        &endpoint_path(PHONE_A),
        Some(&json!({"url": "http://10.1.2.3/flow"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "url");
    assert!(w
        .meta
        .requests_to("POST", &format!("/{PHONE_A}/whatsapp_business_encryption"))
        .is_empty());
}

#[test]
fn the_admin_sets_up_a_numbers_flows_endpoint_from_the_backoffice() {
    let w = World::start();
    let tool = Receiver::start();
    let account = w.gw.request("GET", "/api/v1/me", Some(&w.key_a), None).1["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&w.gw);
    assert_eq!(b.login(ADMIN_TOKEN).status, 303);
    let page_path = format!("/admin/accounts/{account}/test-send");
    let page = b.get(&page_path);
    assert!(
        page.body.contains(r#"id="flows-endpoint""#),
        "{}",
        page.body
    );
    let csrf = b.csrf();
    let done = b.post(
        &format!("/admin/accounts/{account}/flows-endpoint"),
        &[
            ("csrf", csrf.as_str()),
            ("phoneNumberId", PHONE_A),
            ("url", &tool.url("/flow")),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), Some(page_path.as_str()));
    let shown = b.get(&page_path).body;
    assert!(
        shown.contains(&format!("{PUBLIC_URL}/flows/{PHONE_A}")),
        "{shown}"
    );
    assert!(shown.contains("Meta took the number"), "{shown}");

    // The same endpoint the flow API shows, its key at Meta, its secret shown once.
    let (status, endpoint) = w.a("GET", &endpoint_path(PHONE_A), None);
    assert_eq!(status, 200);
    assert!(shown.contains(endpoint["secret"].as_str().unwrap()));
    let uploads = w
        .meta
        .requests_to("POST", &format!("/{PHONE_A}/whatsapp_business_encryption"));
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].json()["business_public_key"],
        endpoint["publicKey"]
    );
    assert!(!shown.contains("PRIVATE KEY"));

    // Another account's number is refused, and Meta is given nothing.
    let refused = b.post(
        &format!("/admin/accounts/{account}/flows-endpoint"),
        &[
            ("csrf", csrf.as_str()),
            ("phoneNumberId", PHONE_B),
            ("url", &tool.url("/flow")),
        ],
    );
    assert_eq!(refused.location(), Some(page_path.as_str()));
    assert!(b.get(&page_path).body.contains(PHONE_B));
    assert!(w
        .meta
        .requests_to("POST", &format!("/{PHONE_B}/whatsapp_business_encryption"))
        .is_empty());
}

/// Two people connected the same WABA: two accounts. The endpoint, its
/// secret and its key stay the first one's.
#[test]
fn an_endpoint_is_only_its_own_accounts_when_two_accounts_share_the_waba() {
    let w = World::start();
    let tool = Receiver::start();
    let set = set_up(&w, &tool.url("/flow"));
    let (_, other) =
        w.gw.add_account(&w.meta, "token-a-colleague", &[crate::flow::WABA_A]);
    let path = endpoint_path(PHONE_A);
    let as_other =
        |method: &str, body: Option<&Value>| w.gw.request(method, &path, Some(&other), body);
    let (status, seen) = as_other("GET", None);
    assert_eq!(status, 404, "{seen}");
    let (status, taken) = as_other("PUT", Some(&json!({"url": tool.url("/theirs")})));
    assert_eq!(status, 409, "{taken}");
    let (status, removed) = as_other("DELETE", None);
    assert_eq!(status, 404, "{removed}");
    let (status, still) = w.a("GET", &path, None);
    assert_eq!(status, 200, "{still}");
    assert_eq!(still["url"], set["url"]);
    assert_eq!(still["secret"], set["secret"]);
}

/// A flow tool lists its WABA's Flows and sends one in an interactive
/// message; another account's WABA is refused before Graph is asked.
#[test]
fn the_wabas_flows_are_listed_and_one_is_sent() {
    let w = World::start();
    let flow = json!({"id": "1197715005513101", "name": "booking", "status": "PUBLISHED",
        "categories": ["APPOINTMENT_BOOKING"], "validation_errors": []});
    w.meta.script(
        "GET",
        &format!("/{}/flows", crate::flow::WABA_A),
        Reply::json(200, json!({"data": [flow]})),
    );
    let before = w.graph_calls();
    let path = format!("/api/v1/business-accounts/{}/flows", crate::flow::WABA_A);
    let (status, listed) = w.a("GET", &path, None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["flows"], json!([flow]));
    let call = w.only_call(before, "GET", &format!("/{}/flows", crate::flow::WABA_A));
    assert!(call.query_param("fields").unwrap().contains("status"));
    assert_eq!(bearer(&call), TOKEN_A);

    let before = w.graph_calls();
    let other = format!("/api/v1/business-accounts/{}/flows", crate::flow::WABA_B);
    let (status, refused) = w.a("GET", &other, None);
    assert_eq!(status, 403, "{refused}");
    assert_eq!(w.graph_calls(), before);

    let message = json!({"to": "+420 777 000 111", "type": "interactive", "interactive": {
        "type": "flow", "body": {"text": "Book a table"},
        "action": {"name": "flow", "parameters": {"flow_message_version": "3",
            "flow_id": "1197715005513101", "flow_token": "t-1", "flow_cta": "Book now",
            "flow_action": "navigate", "flow_action_payload": {"screen": "BOOKING"}}}}});
    let send = format!("/api/v1/phone-numbers/{PHONE_A}/messages");
    let (status, sent) = w.a("POST", &send, Some(&message));
    assert_eq!(status, 200, "{sent}");
    let sends = w.meta.requests_to("POST", &format!("/{PHONE_A}/messages"));
    let body = sends.last().unwrap().json();
    assert_eq!(
        body["interactive"]["action"],
        message["interactive"]["action"]
    );
}
