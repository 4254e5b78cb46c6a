//! Message templates managed, not only listed (issue 12): create, read one,
//! edit, delete through one of the caller's WABAs; checked before Meta sees
//! them, Meta's refusals passed on with a hint, and another account's WABA
//! refused without a Graph call.

use serde_json::{json, Value};

use super::{bearer, field, World, TOKEN_A, WABA_A, WABA_B};
use crate::support::fake_meta::meta_error;
use crate::support::server::Reply;

fn order_update() -> Value {
    json!({
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2UvcG5n:ARb"]}},
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped.", "example": {"body_text": [["Jana", "A-42"]]}},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop updates"},
                {"type": "URL", "text": "Track", "url": "https://shop.example.com/t/{{1}}", "example": ["https://shop.example.com/t/A-42"]}
            ]}
        ]
    })
}

fn collection() -> String {
    format!("/api/v1/business-accounts/{WABA_A}/templates")
}

/// Creates `order_update` on WABA A and answers its id.
fn created(w: &World) -> String {
    let (status, body) = w.a("POST", &collection(), Some(&order_update()));
    assert_eq!(status, 201, "{body}");
    body["templateId"].as_str().unwrap().to_string()
}

#[test]
fn a_template_is_created_as_meta_takes_it_and_metas_answer_comes_back() {
    let w = World::start();
    let before = w.graph_calls();
    let (status, body) = w.a("POST", &collection(), Some(&order_update()));
    assert_eq!(status, 201, "{body}");
    let call = w.only_call(before, "POST", &format!("/{WABA_A}/message_templates"));
    assert_eq!(call.path, format!("/v25.0/{WABA_A}/message_templates"));
    assert_eq!(bearer(&call), TOKEN_A);
    assert!(call.query_param("appsecret_proof").is_some());
    assert_eq!(call.json(), order_update());
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["category"], "UTILITY");
    assert_eq!(body["wabaId"], WABA_A);
    assert!(body["templateId"].as_str().is_some_and(|id| !id.is_empty()));
}

#[test]
fn an_invalid_template_is_refused_with_its_field_before_meta_sees_it() {
    let w = World::start();
    let before = w.graph_calls();
    let mut bad_name = order_update();
    bad_name["name"] = json!("Order Update");
    let mut no_sample = order_update();
    no_sample["components"][1]["example"] = json!({"body_text": [["Jana"]]});
    let mut long_reply = order_update();
    long_reply["components"][3]["buttons"][0]["text"] = json!("x".repeat(26));
    for (template, named) in [
        (bad_name, "name"),
        (no_sample, "components[1].example.body_text"),
        (long_reply, "components[3].buttons[0].text"),
    ] {
        let (status, body) = w.a("POST", &collection(), Some(&template));
        assert_eq!(status, 400, "{body}");
        assert_eq!(field(&body), named, "{body}");
    }
    assert_eq!(w.graph_calls(), before, "Meta must see no invalid template");
}

#[test]
fn metas_refusal_comes_back_with_code_subcode_trace_and_a_hint() {
    let w = World::start();
    created(&w);
    // Meta's own answer to the same name and language again.
    let (status, body) = w.a("POST", &collection(), Some(&order_update()));
    assert_eq!(status, 422, "{body}");
    let meta = &body["error"]["meta"];
    assert_eq!(meta["code"], 100);
    assert_eq!(meta["subcode"], 2388023);
    assert_eq!(meta["fbtrace_id"], "FAKEtrace");
    assert!(body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("another name"));
}

#[test]
fn one_template_is_read_with_status_quality_and_rejection() {
    let w = World::start();
    let id = created(&w);
    let before = w.graph_calls();
    let (status, body) = w.a("GET", &format!("{}/{id}", collection()), None);
    assert_eq!(status, 200, "{body}");
    let read = w.only_call(before, "GET", &format!("/{id}"));
    let fields = read.query_param("fields").unwrap();
    for f in ["status", "quality_score", "rejected_reason", "components"] {
        assert!(fields.contains(f), "{fields}");
    }
    assert_eq!(bearer(&read), TOKEN_A);
    let listed = w.only_call(before, "GET", &format!("/{WABA_A}/message_templates"));
    assert_eq!(listed.query_param("name").as_deref(), Some("order_update"));
    assert_eq!(body["templateId"], id.as_str());
    assert_eq!(body["name"], "order_update");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["qualityScore"]["score"], "UNKNOWN");
    assert_eq!(body["components"][1]["type"], "BODY");
    assert_eq!(body["history"], json!([]), "no webhook said anything yet");

    w.meta.script(
        "GET",
        &format!("/{id}"),
        Reply::json(
            200,
            json!({"id": id, "name": "order_update", "language": "en_US", "status": "REJECTED",
                   "category": "UTILITY", "rejected_reason": "INVALID_FORMAT", "components": []}),
        ),
    );
    let (status, body) = w.a("GET", &format!("{}/{id}", collection()), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "REJECTED");
    assert_eq!(body["rejectedReason"], "INVALID_FORMAT");
}

#[test]
fn a_template_not_in_the_wabas_listing_is_not_found() {
    let w = World::start();
    w.meta.add_templates(WABA_A, 1);
    // Meta reads the id, but the WABA's listing does not hold it.
    w.meta.script(
        "GET",
        "/777",
        Reply::json(
            200,
            json!({"id": "777", "name": "template_0", "status": "APPROVED"}),
        ),
    );
    let (status, body) = w.a("GET", &format!("{}/777", collection()), None);
    assert_eq!(status, 404, "{body}");
    let before = w.graph_calls();
    let (status, _) = w.a("GET", &format!("{}/not-an-id", collection()), None);
    assert_eq!(status, 404);
    assert_eq!(w.graph_calls(), before);
}

#[test]
fn a_template_is_edited_and_deleted() {
    let w = World::start();
    let id = created(&w);
    let item = format!("{}/{id}", collection());
    let change = json!({"components": [{"type": "BODY", "text": "Order {{1}} is on its way.", "example": {"body_text": [["A-42"]]}}]});
    let before = w.graph_calls();
    let (status, body) = w.a("POST", &item, Some(&change));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"success": true}));
    let edit = w.only_call(before, "POST", &format!("/{id}"));
    assert_eq!(edit.json(), change);
    let (_, read) = w.a("GET", &item, None);
    assert_eq!(read["components"][0]["text"], "Order {{1}} is on its way.");

    let before = w.graph_calls();
    let (status, body) = w.a("POST", &item, Some(&json!({"category": "PROMO"})));
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "category");
    assert_eq!(w.graph_calls(), before, "an invalid edit asks Meta nothing");

    let before = w.graph_calls();
    let (status, body) = w.a("DELETE", &item, None);
    assert_eq!(status, 200, "{body}");
    let delete = w.only_call(before, "DELETE", &format!("/{WABA_A}/message_templates"));
    assert_eq!(delete.query_param("hsm_id").as_deref(), Some(id.as_str()));
    assert_eq!(delete.query_param("name").as_deref(), Some("order_update"));
    let (status, body) = w.a("GET", &item, None);
    assert_eq!(status, 404, "Meta no longer has it: {body}");
}

#[test]
fn a_template_is_deleted_by_name_in_every_language() {
    let w = World::start();
    created(&w);
    let before = w.graph_calls();
    let (status, body) = w.a(
        "DELETE",
        &format!("{}?name=order_update", collection()),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let call = w.only_call(before, "DELETE", &format!("/{WABA_A}/message_templates"));
    assert_eq!(call.query_param("name").as_deref(), Some("order_update"));
    assert_eq!(call.query_param("hsm_id"), None);
    let (status, body) = w.a("DELETE", &format!("{}?name=Bad%20Name", collection()), None);
    assert_eq!((status, field(&body)), (400, "name"));
    let (status, body) = w.a("DELETE", &collection(), None);
    assert_eq!((status, field(&body)), (400, "name"));

    w.meta.script(
        "DELETE",
        &format!("/{WABA_A}/message_templates"),
        meta_error(400, 100, "Message template \"gone\" not found"),
    );
    let (status, body) = w.a("DELETE", &format!("{}?name=gone", collection()), None);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["meta"]["code"], 100);
}

#[test]
fn another_accounts_waba_is_refused_without_a_graph_call() {
    let w = World::start();
    let id = created(&w);
    let before = w.graph_calls();
    let b = |method: &str, path: &str, body: Option<&Value>| {
        w.gw.request(method, path, Some(&w.key_b), body).0
    };
    let item = format!("{}/{id}", collection());
    assert_eq!(b("POST", &collection(), Some(&order_update())), 403);
    assert_eq!(b("GET", &item, None), 403);
    assert_eq!(
        b("POST", &item, Some(&json!({"category": "MARKETING"}))),
        403
    );
    assert_eq!(b("DELETE", &item, None), 403);
    assert_eq!(
        b(
            "DELETE",
            &format!("{}?name=order_update", collection()),
            None
        ),
        403
    );
    assert_eq!(
        w.graph_calls(),
        before,
        "Meta must not be called for a foreign WABA"
    );

    // Account A reaching for B's WABA the same way.
    let (status, _) = w.a(
        "POST",
        &format!("/api/v1/business-accounts/{WABA_B}/templates"),
        Some(&order_update()),
    );
    assert_eq!(status, 403);
    assert_eq!(w.graph_calls(), before);
}

/// One of Meta's template webhooks, from `waba` at `time` (seconds).
fn template_webhook(waba: &str, time: u64, field: &str, value: Value) -> Vec<u8> {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "time": time,
        "changes": [{"field": field, "value": value}]}]});
    serde_json::to_vec(&body).unwrap()
}

#[test]
fn a_templates_webhook_events_are_read_back_as_its_history_oldest_first() {
    let w = World::start();
    let id = created(&w);
    let number: u64 = id.parse().expect("Meta's template ids are numbers");
    let post = |body: Vec<u8>| {
        let (status, answer) = w.gw.post_webhook(&body);
        assert_eq!(status, 200, "{answer}");
    };
    post(template_webhook(
        WABA_A,
        1_796_213_200,
        "message_template_status_update",
        json!({"event": "REJECTED", "message_template_id": number, "message_template_name": "order_update",
               "message_template_language": "en_US", "reason": "INVALID_FORMAT", "message_template_category": "UTILITY"}),
    ));
    post(template_webhook(
        WABA_A,
        1_796_213_300,
        "message_template_status_update",
        json!({"event": "APPROVED", "message_template_id": number, "message_template_name": "order_update",
               "message_template_language": "en_US", "reason": "NONE", "message_template_category": "UTILITY"}),
    ));
    post(template_webhook(
        WABA_A,
        1_796_213_400,
        "message_template_quality_update",
        json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW", "message_template_id": number,
               "message_template_name": "order_update", "message_template_language": "en_US"}),
    ));
    post(template_webhook(
        WABA_A,
        1_796_213_500,
        "template_category_update",
        json!({"message_template_id": number, "message_template_name": "order_update",
               "message_template_language": "en_US", "previous_category": "UTILITY", "new_category": "MARKETING"}),
    ));
    // Another WABA's webhook naming the same id is not this template's history,
    let (status, _) = w.gw.post_webhook(&template_webhook(
        WABA_B,
        1_796_213_350,
        "message_template_status_update",
        json!({"event": "DISABLED", "message_template_id": number, "reason": "NONE"}),
    ));
    assert_eq!(status, 200);
    // and Meta's redelivery adds no entry.
    post(template_webhook(
        WABA_A,
        1_796_213_400,
        "message_template_quality_update",
        json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW", "message_template_id": number,
               "message_template_name": "order_update", "message_template_language": "en_US"}),
    ));

    let (status, body) = w.a("GET", &format!("{}/{id}", collection()), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["history"],
        json!([
            {"event": "status", "status": "REJECTED", "reason": "INVALID_FORMAT", "category": "UTILITY",
             "at": "2026-12-02T12:06:40.000Z"},
            {"event": "status", "status": "APPROVED", "reason": "NONE", "category": "UTILITY",
             "at": "2026-12-02T12:08:20.000Z"},
            {"event": "quality", "previousQuality": "GREEN", "quality": "YELLOW",
             "at": "2026-12-02T12:10:00.000Z"},
            {"event": "category", "previousCategory": "UTILITY", "category": "MARKETING",
             "at": "2026-12-02T12:11:40.000Z"},
        ]),
        "{body}"
    );
}

/// Meta's media card carousel template: a message body and two alike cards.
fn summer_plants() -> Value {
    let card = |n: u32| {
        json!({"components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": [format!("4::aW1hZ2UvcG5n:card{n}")]}},
            {"type": "BODY", "text": "Plant {{1}} for {{2}}", "example": {"body_text": [[format!("no. {n}"), "9 EUR"]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Send more like this"},
                {"type": "URL", "text": "Buy", "url": "https://shop.example.com/p/{{1}}", "example": ["https://shop.example.com/p/12"]}
            ]}
        ]})
    };
    json!({
        "name": "summer_plants",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "Hi {{1}}, these suit your balcony:", "example": {"body_text": [["Jana"]]}},
            {"type": "CAROUSEL", "cards": [card(1), card(2)]}
        ]
    })
}

#[test]
fn a_carousel_template_reaches_meta_as_given_and_unlike_cards_do_not() {
    let w = World::start();
    let before = w.graph_calls();
    let (status, body) = w.a("POST", &collection(), Some(&summer_plants()));
    assert_eq!(status, 201, "{body}");
    let call = w.only_call(before, "POST", &format!("/{WABA_A}/message_templates"));
    assert_eq!(call.json(), summer_plants());
    assert_eq!(bearer(&call), TOKEN_A);
    assert_eq!(body["category"], "MARKETING");

    let before = w.graph_calls();
    let mut unlike = summer_plants();
    unlike["components"][1]["cards"][1]["components"][0]["format"] = json!("VIDEO");
    let (status, body) = w.a("POST", &collection(), Some(&unlike));
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "components[1].cards[1].components", "{body}");
    assert_eq!(w.graph_calls(), before, "Meta must see no invalid carousel");
}
