//! Sending every message type, validation before Meta, marking read, and the
//! 24-hour customer-service window (guide §2.4).

use serde_json::{json, Value};

use super::{bearer, field, World, PHONE_A, TOKEN_A};
use crate::support::payloads;

fn send_path() -> String {
    format!("/api/v1/phone-numbers/{PHONE_A}/messages")
}

/// What Meta must receive for a request: the same object plus messaging_product,
/// recipient_type and the normalised `to`.
fn expected(request: &Value, to: &str) -> Value {
    let mut e = request.clone();
    let o = e.as_object_mut().unwrap();
    o.insert("messaging_product".into(), json!("whatsapp"));
    o.insert("recipient_type".into(), json!("individual"));
    if o.contains_key("to") {
        o.insert("to".into(), json!(to));
    }
    e
}

#[test]
fn every_message_type_reaches_meta_exactly_as_meta_documents_it() {
    let w = World::start();
    let to = "+420 777 123 456";
    let cases = vec![
        json!({"to": to, "type": "text", "text": {"body": "Hello https://shop.example", "preview_url": true}}),
        json!({"to": to, "type": "image", "image": {"id": "1001", "caption": "Your order"}}),
        json!({"to": to, "type": "image", "image": {"link": "https://cdn.example/p.jpg"}}),
        json!({"to": to, "type": "video", "video": {"link": "https://cdn.example/v.mp4", "caption": "How to"}}),
        json!({"to": to, "type": "audio", "audio": {"id": "1002"}}),
        json!({"to": to, "type": "document", "document": {"id": "1003", "filename": "invoice.pdf", "caption": "Invoice"}}),
        json!({"to": to, "type": "sticker", "sticker": {"id": "1004"}}),
        json!({"to": to, "type": "location", "location": {"latitude": 50.087, "longitude": 14.421, "name": "Shop", "address": "Prague 1"}}),
        json!({"to": to, "type": "contacts", "contacts": [{"name": {"formatted_name": "Jana Nováková", "first_name": "Jana"}, "phones": [{"phone": "+420777000111", "type": "WORK"}]}]}),
        json!({"to": to, "type": "template", "template": {"name": "order_update", "language": {"code": "cs"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Jana"}]}]}}),
        json!({"to": to, "type": "interactive", "interactive": {"type": "button", "header": {"type": "text", "text": "Delivery"},
            "body": {"text": "When should we come?"}, "footer": {"text": "Reply by tapping"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "am", "title": "Morning"}}, {"type": "reply", "reply": {"id": "pm", "title": "Afternoon"}}]}}}),
        json!({"to": to, "type": "interactive", "interactive": {"type": "list", "body": {"text": "Our menu"},
            "action": {"button": "Choose", "sections": [{"title": "Pizza", "rows": [{"id": "p1", "title": "Margherita", "description": "Tomato, mozzarella"}]},
                                                         {"title": "Drinks", "rows": [{"id": "d1", "title": "Water"}]}]}}}),
        json!({"to": to, "type": "interactive", "interactive": {"type": "cta_url", "body": {"text": "Track your parcel"},
            "action": {"name": "cta_url", "parameters": {"display_text": "Track", "url": "https://shop.example/t/1"}}}}),
        json!({"to": to, "type": "reaction", "reaction": {"message_id": "wamid.IN1", "emoji": "👍"}}),
        json!({"to": to, "type": "text", "text": {"body": "Yes, in stock"}, "context": {"message_id": "wamid.IN2"}}),
    ];
    for request in cases {
        let before = w.graph_calls();
        let (status, body) = w.a("POST", &send_path(), Some(&request));
        assert_eq!(status, 200, "{request}: {body}");
        assert!(
            body["messageId"]
                .as_str()
                .unwrap()
                .starts_with("wamid.FAKE"),
            "{body}"
        );
        assert_eq!(body["waId"], "420777123456");
        let calls: Vec<_> = w.meta.api_requests().into_iter().skip(before).collect();
        let call = calls
            .iter()
            .find(|c| c.path == format!("/v25.0/{PHONE_A}/messages"))
            .expect("a Graph send");
        assert_eq!(call.method, "POST");
        assert_eq!(bearer(call), TOKEN_A);
        assert_eq!(
            call.json(),
            expected(&request, "+420777123456"),
            "{request}"
        );
    }
}

#[test]
fn a_bsuid_recipient_is_sent_as_recipient() {
    let w = World::start();
    let request =
        json!({"recipient": "US.13491208655302741918", "type": "text", "text": {"body": "hi"}});
    let (status, body) = w.a("POST", &send_path(), Some(&request));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userId"], "US.13491208655302741918");
    let call = w
        .meta
        .requests_to("POST", &format!("/{PHONE_A}/messages"))
        .pop()
        .unwrap();
    assert_eq!(call.json(), expected(&request, ""));
}

#[test]
fn input_meta_would_refuse_is_a_400_naming_the_field_and_meta_is_not_called() {
    let w = World::start();
    // The number is learned first, so that nothing below needs Meta.
    assert_eq!(
        w.a("GET", &format!("/api/v1/phone-numbers/{PHONE_A}"), None)
            .0,
        200
    );
    let before = w.graph_calls();
    let to = "+420777123456";
    let long = "x".repeat(4097);
    for (request, expected_field) in [
        (json!({"type": "text", "text": {"body": "hi"}}), "to"),
        (json!({"to": "777-CALL-NOW", "text": {"body": "hi"}}), "to"),
        (json!({"to": "0777123456", "text": {"body": "hi"}}), "to"),
        (
            json!({"recipient": "someone", "text": {"body": "hi"}}),
            "recipient",
        ),
        (json!({"to": to, "type": "text", "text": {}}), "text.body"),
        (
            json!({"to": to, "type": "text", "text": {"body": long}}),
            "text.body",
        ),
        (json!({"to": to, "type": "image", "image": {}}), "image.id"),
        (
            json!({"to": to, "type": "image", "image": {"id": "1", "caption": "c".repeat(1025)}}),
            "image.caption",
        ),
        (
            json!({"to": to, "type": "template", "template": {"language": {"code": "en_US"}}}),
            "template.name",
        ),
        (
            json!({"to": to, "type": "template", "template": {"name": "hello_world"}}),
            "template.language",
        ),
        (
            json!({"to": to, "type": "interactive", "interactive": {"type": "button", "body": {"text": "?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "1", "title": "A title that is too long"}}]}}}),
            "interactive.action.buttons[0].reply.title",
        ),
        (
            json!({"to": to, "type": "location", "location": {"latitude": 100, "longitude": 0}}),
            "location.latitude",
        ),
        (
            json!({"to": to, "type": "reaction", "reaction": {"emoji": "👍"}}),
            "reaction.message_id",
        ),
        (json!({"to": to, "type": "telegram"}), "type"),
        (json!("just a string"), "body"),
    ] {
        let (status, body) = w.a("POST", &send_path(), Some(&request));
        assert_eq!(status, 400, "{request}: {body}");
        assert_eq!(field(&body), expected_field, "{request}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(w.graph_calls(), before, "no Graph call for invalid input");
}

#[test]
fn the_window_is_unknown_open_or_closed_from_what_the_user_wrote() {
    let w = World::start();
    let text = |to: &str| json!({"to": to, "type": "text", "text": {"body": "hi"}});
    let template = json!({"to": "+420 777 000 001", "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}});

    // Never seen: unknown, with a warning for free-form messages only.
    let (_, body) = w.a("POST", &send_path(), Some(&text("+420 777 000 001")));
    assert_eq!(body["window"], "unknown");
    assert!(body["warning"].as_str().unwrap().contains("silently drop"));
    let (_, body) = w.a("POST", &send_path(), Some(&template));
    assert_eq!(body["window"], "unknown");
    assert!(
        body.get("warning").is_none(),
        "templates are never warned about: {body}"
    );

    // Wrote ten minutes ago: open, closing 24 h after the message.
    w.inbound(PHONE_A, Some("420777000002"), None, "wamid.A1", 600);
    let (status, body) = w.a("POST", &send_path(), Some(&text("00420 777 000 002")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["window"], "open");
    assert!(body.get("warning").is_none());
    let expires = body["windowExpiresAt"].as_str().unwrap();
    let expires = humantime::parse_rfc3339(expires).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((23 * 3600..24 * 3600).contains(&left), "{left}s left");

    // Wrote 25 hours ago: closed, with a warning; the same person on another number: unknown.
    w.inbound(PHONE_A, Some("420777000003"), None, "wamid.A2", 25 * 3600);
    let (status, body) = w.a("POST", &send_path(), Some(&text("+420777000003")));
    assert_eq!(status, 200);
    assert_eq!(body["window"], "closed");
    assert!(body["warning"].as_str().unwrap().contains("template"));
    let (_, body) = w.a(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_A}/windows/%2B420%20777%20000%20003"),
        None,
    );
    assert_eq!(body["window"], "closed");
    assert_eq!(body["user"], "420777000003");
    assert!(body["lastInboundAt"].is_string());
}

#[test]
fn a_person_known_by_phone_and_bsuid_has_one_window() {
    let w = World::start();
    let bsuid = "CZ.2384798234792834";
    // Wrote two days ago with both ids, then today with the BSUID only.
    w.inbound(
        PHONE_A,
        Some("420777000004"),
        Some(bsuid),
        "wamid.B1",
        48 * 3600,
    );
    w.inbound(PHONE_A, None, Some(bsuid), "wamid.B2", 60);
    for request in [
        json!({"to": "+420777000004", "type": "text", "text": {"body": "hi"}}),
        json!({"recipient": bsuid, "type": "text", "text": {"body": "hi"}}),
    ] {
        let (status, body) = w.a("POST", &send_path(), Some(&request));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["window"], "open", "{request}");
    }
    let (_, body) = w.a(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_A}/windows/{bsuid}"),
        None,
    );
    assert_eq!(body["window"], "open");
}

#[test]
fn a_number_written_two_ways_has_one_window() {
    let w = World::start();
    let strict = format!("{}?requireOpenWindow=true", send_path());
    let text = |to: &str| json!({"to": to, "type": "text", "text": {"body": "oi"}});

    // A Brazilian whose WhatsApp account predates the ninth digit writes as
    // 55 11 8765-4321; the flow has the number with the 9. Found even in strict mode.
    w.inbound(PHONE_A, Some("551187654321"), None, "wamid.BR1", 600);
    let (status, body) = w.a("POST", &strict, Some(&text("+55 11 98765-4321")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["window"], "open");
    // A Mexican mobile: 52 written by the flow, 521 by WhatsApp.
    w.inbound(PHONE_A, Some("5215512345678"), None, "wamid.MX1", 600);
    let (status, body) = w.a("POST", &strict, Some(&text("+52 55 1234 5678")));
    assert_eq!((status, &body["window"]), (200, &json!("open")), "{body}");

    // Two writings no rule knows: Meta's answer names the wa_id, which is
    // remembered, so the first answer is right and strict sends work after it.
    w.inbound(PHONE_A, Some("420777000099"), None, "wamid.CZ9", 600);
    w.meta.set_wa_id("420777000009", "420777000099");
    let (status, body) = w.a("POST", &send_path(), Some(&text("+420 777 000 009")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["waId"], "420777000099");
    assert_eq!(body["window"], "open", "{body}");
    assert!(body.get("warning").is_none(), "{body}");
    let (status, body) = w.a("POST", &strict, Some(&text("+420 777 000 009")));
    assert_eq!((status, &body["window"]), (200, &json!("open")), "{body}");
    let (_, body) = w.a(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_A}/windows/420777000009"),
        None,
    );
    assert_eq!(body["window"], "open", "{body}");
}

#[test]
fn require_open_window_refuses_free_form_sends_before_meta() {
    let w = World::start();
    w.inbound(PHONE_A, Some("420777000005"), None, "wamid.C1", 25 * 3600);
    w.inbound(PHONE_A, Some("420777000006"), None, "wamid.C2", 60);
    let strict = format!("{}?requireOpenWindow=true", send_path());
    let before = w.graph_calls();
    for to in ["+420777000005", "+420777000099"] {
        let (status, body) = w.a(
            "POST",
            &strict,
            Some(&json!({"to": to, "text": {"body": "hi"}})),
        );
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "window_closed");
        assert!(body["error"]["hint"].as_str().unwrap().contains("template"));
    }
    assert_eq!(w.graph_calls(), before, "a refused send never reaches Meta");
    // Templates always go; an open window lets free-form through.
    let (status, _) = w.a(
        "POST",
        &strict,
        Some(&json!({"to": "+420777000005", "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}})),
    );
    assert_eq!(status, 200);
    let (status, body) = w.a(
        "POST",
        &strict,
        Some(&json!({"to": "+420777000006", "text": {"body": "hi"}})),
    );
    assert_eq!((status, body["window"].clone()), (200, json!("open")));

    // The admin makes it the default; a request may still opt out.
    let (status, body) = w.gw.admin(
        "PUT",
        "/api/v1/admin/config",
        Some(&json!({"requireOpenWindow": true})),
    );
    assert_eq!(status, 200);
    assert_eq!(body["requireOpenWindow"], true);
    let closed = json!({"to": "+420777000005", "text": {"body": "hi"}});
    assert_eq!(w.a("POST", &send_path(), Some(&closed)).0, 409);
    let (status, body) = w.a(
        "POST",
        &format!("{}?requireOpenWindow=false", send_path()),
        Some(&closed),
    );
    assert_eq!((status, body["window"].clone()), (200, json!("closed")));
    assert_eq!(
        w.a(
            "POST",
            &format!("{}?requireOpenWindow=maybe", send_path()),
            Some(&closed)
        )
        .0,
        400
    );
}

#[test]
fn mark_as_read_with_the_typing_indicator() {
    let w = World::start();
    let path = format!("/api/v1/phone-numbers/{PHONE_A}/messages/wamid.IN9/read");
    let before = w.graph_calls();
    let (status, body) = w.a("POST", &path, Some(&json!({"typingIndicator": true})));
    assert_eq!((status, body), (200, json!({"success": true})));
    let call = w.only_call(before, "POST", &format!("/{PHONE_A}/messages"));
    assert_eq!(bearer(&call), TOKEN_A);
    assert_eq!(
        call.json(),
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN9", "typing_indicator": {"type": "text"}})
    );
    let before = w.graph_calls();
    let (status, _) = w.a("POST", &path, None);
    assert_eq!(status, 200);
    let call = w.only_call(before, "POST", &format!("/{PHONE_A}/messages"));
    assert_eq!(
        call.json(),
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN9"})
    );
    let (status, _) = w.a("POST", &path, Some(&json!({"typing": "yes"})));
    assert_eq!(status, 400);
}

#[test]
fn a_sent_message_has_its_history_right_after_the_send() {
    let w = World::start();
    let request = json!({"to": "+420 777 123 456", "type": "text", "text": {"body": "hi"},
        "biz_opaque_callback_data": "order-7"});
    let (status, body) = w.a("POST", &send_path(), Some(&request));
    assert_eq!(status, 200, "{body}");
    let id = body["messageId"].as_str().unwrap().to_string();
    let path = format!("/api/v1/messages/{id}");
    let (status, history) = w.a("GET", &path, None);
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["status"], "accepted");
    assert_eq!(history["recipientId"], "420777123456");
    assert_eq!(history["phoneNumberId"], PHONE_A);
    assert_eq!(history["history"].as_array().unwrap().len(), 1);
    // Another account's key does not see it.
    let (status, _) = w.gw.request("GET", &path, Some(&w.key_b), None);
    assert_eq!(status, 404);
    // Meta's first status moves it on, after the send in its history.
    let sent = payloads::status_with(&id, "sent", "4102444800", json!({}));
    let (status, _) =
        w.gw.post_webhook(&payloads::statuses(super::WABA_A, PHONE_A, vec![sent]));
    assert_eq!(status, 200);
    let (_, history) = w.a("GET", &path, None);
    assert_eq!(history["status"], "sent");
    let steps: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["accepted", "sent"]);
}
