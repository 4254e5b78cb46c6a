//! Marketing messages through Meta's Marketing Messages Lite API: a
//! marketing template goes to `POST /{phone-number-id}/marketing_messages`
//! with MM Lite's own fields, after the checks of any send; what Meta's
//! `account_update` says of a WABA's onboarding shows in the API's reads.

use serde_json::{json, Value};

use super::{bearer, field, World, PHONE_A, TOKEN_A, WABA_A, WABA_B};
use crate::support::fake_meta::meta_error;

fn marketing_path(phone: &str) -> String {
    format!("/api/v1/phone-numbers/{phone}/marketing-messages")
}

fn spring_sale() -> Value {
    json!({"to": "+420777123456", "type": "template",
        "template": {"name": "spring_sale", "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "20%"}]}]},
        "optimization_spec": {"bid_amount": 0.04, "bid_strategy": "MAX_PRICE"},
        "message_activity_sharing": true})
}

#[test]
fn a_marketing_template_goes_to_metas_marketing_messages_with_its_optimization_spec() {
    let w = World::start();
    let before = w.graph_calls();
    let (status, body) = w.a("POST", &marketing_path(PHONE_A), Some(&spring_sale()));
    assert_eq!(status, 200, "{body}");
    assert!(
        body["messageId"].as_str().unwrap().starts_with("wamid."),
        "{body}"
    );
    assert_eq!(body["waId"], "420777123456");

    let call = w.only_call(before, "POST", &format!("/{PHONE_A}/marketing_messages"));
    assert_eq!(call.path, format!("/v25.0/{PHONE_A}/marketing_messages"));
    assert_eq!(bearer(&call), TOKEN_A);
    let sent = call.json();
    assert_eq!(sent["messaging_product"], "whatsapp");
    assert_eq!(sent["recipient_type"], "individual");
    assert_eq!(sent["type"], "template");
    assert_eq!(sent["to"], "+420777123456");
    assert_eq!(sent["template"]["name"], "spring_sale");
    assert_eq!(
        sent["optimization_spec"],
        json!({"bid_amount": 0.04, "bid_strategy": "MAX_PRICE"})
    );
    assert_eq!(sent["message_activity_sharing"], true);
    assert!(
        w.meta
            .requests_to("POST", &format!("/{PHONE_A}/messages"))
            .is_empty(),
        "not sent through Cloud API's /messages"
    );
    // Its status history starts as any send's.
    let id = body["messageId"].as_str().unwrap();
    let (status, history) = w.a("GET", &format!("/api/v1/messages/{id}"), None);
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["phoneNumberId"], PHONE_A);
}

#[test]
fn bid_spec_and_non_templates_are_refused_before_meta() {
    let w = World::start();
    let before = w.graph_calls();

    let mut old = spring_sale();
    old.as_object_mut().unwrap().remove("optimization_spec");
    old["bid_spec"] = json!({"bid_amount": 0.04});
    let (status, body) = w.a("POST", &marketing_path(PHONE_A), Some(&old));
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "bid_spec");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("optimization_spec") && message.contains("July 31, 2026"),
        "{message}"
    );

    let text = json!({"to": "+420777123456", "type": "text", "text": {"body": "Sale!"}});
    let (status, body) = w.a("POST", &marketing_path(PHONE_A), Some(&text));
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "type");

    let mut empty_spec = spring_sale();
    empty_spec["optimization_spec"] = json!({});
    let (status, body) = w.a("POST", &marketing_path(PHONE_A), Some(&empty_spec));
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "optimization_spec");

    assert_eq!(w.graph_calls(), before, "Meta was never asked");
}

#[test]
fn metas_refusal_of_a_waba_not_onboarded_comes_back_with_a_hint() {
    let w = World::start();
    w.meta.script(
        "POST",
        &format!("/{PHONE_A}/marketing_messages"),
        meta_error(
            400,
            131055,
            "(#200) You must accept the Marketing Messages Lite API terms to use the API.",
        ),
    );
    let (status, body) = w.a("POST", &marketing_path(PHONE_A), Some(&spring_sale()));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "meta_error");
    assert_eq!(body["error"]["meta"]["code"], 131055);
    assert_eq!(body["error"]["meta"]["fbtrace_id"], "FAKEtrace");
    let hint = body["error"]["hint"].as_str().unwrap();
    assert!(
        hint.contains("Marketing Messages Lite API terms") && hint.contains("MM_LITE_TERMS_SIGNED"),
        "{hint}"
    );
}

#[test]
fn account_b_cannot_send_marketing_from_account_as_number() {
    let w = World::start();
    // Account A's send teaches wabridge whose number it is.
    let (status, _) = w.a("POST", &marketing_path(PHONE_A), Some(&spring_sale()));
    assert_eq!(status, 200);
    let before = w.graph_calls();
    let (status, body) = w.gw.request(
        "POST",
        &marketing_path(PHONE_A),
        Some(&w.key_b),
        Some(&spring_sale()),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(w.graph_calls(), before, "no Graph call with either token");
}

/// Meta's `account_update` for a WABA whose business accepted the MM Lite terms.
fn terms_signed(waba: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
        {"id": "900000000000001", "time": 1_764_000_000, "changes": [{"field": "account_update", "value": {
            "event": "MM_LITE_TERMS_SIGNED",
            "waba_info": {"waba_id": waba, "owner_business_id": "900000000000001"}}}]}
    ]}))
    .unwrap()
}

#[test]
fn mm_lite_terms_signed_shows_in_the_accounts_reads() {
    let w = World::start();
    let (_, me) = w.a("GET", "/api/v1/me", None);
    assert_eq!(me["wabas"][0]["id"], WABA_A, "{me}");
    assert_eq!(
        me["wabas"][0]["marketingMessages"]["status"], "unknown",
        "{me}"
    );

    let (status, answer) = w.gw.post_webhook(&terms_signed(WABA_A));
    assert_eq!(status, 200, "{answer}");
    // Meta redelivers: the first word is kept.
    let (status, _) = w.gw.post_webhook(&terms_signed(WABA_A));
    assert_eq!(status, 200);

    let (_, me) = w.a("GET", "/api/v1/me", None);
    let mm = &me["wabas"][0]["marketingMessages"];
    assert_eq!(mm["status"], "onboarded", "{me}");
    assert_eq!(mm["event"], "MM_LITE_TERMS_SIGNED");
    assert!(mm["since"].as_str().unwrap().ends_with('Z'), "{mm}");

    let (status, list) = w.a("GET", "/api/v1/business-accounts", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["businessAccounts"][0]["marketingMessages"]["status"], "onboarded",
        "{list}"
    );

    // Account B's WABA is not onboarded by A's event.
    let (_, me_b) = w.gw.request("GET", "/api/v1/me", Some(&w.key_b), None);
    assert_eq!(me_b["wabas"][0]["id"], WABA_B);
    assert_eq!(me_b["wabas"][0]["marketingMessages"]["status"], "unknown");

    // The admin's listing shows it too.
    let (_, accounts) = w.gw.admin("GET", "/api/v1/admin/accounts", None);
    let a = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["wabaIds"][0] == WABA_A)
        .unwrap()
        .clone();
    assert_eq!(
        a["wabas"][0]["marketingMessages"]["status"], "onboarded",
        "{a}"
    );
}
