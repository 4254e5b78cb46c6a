//! Business accounts, phone numbers, registration (guide §2.2), templates and
//! the business profile.

use serde_json::json;

use super::{bearer, field, World, PHONE_A, PHONE_A2, PHONE_B, TOKEN_A, WABA_A, WABA_B};
use crate::support::fake_meta::meta_error;

#[test]
fn business_accounts_and_their_phone_numbers() {
    let w = World::start();
    let (status, body) = w.a("GET", "/api/v1/business-accounts", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["businessAccounts"][0]["id"], WABA_A);
    assert_eq!(body["businessAccounts"][0]["currency"], "EUR");
    assert_eq!(body["businessAccounts"].as_array().unwrap().len(), 1);

    let before = w.graph_calls();
    let path = format!("/api/v1/business-accounts/{WABA_A}/phone-numbers");
    let (status, body) = w.a("GET", &path, None);
    assert_eq!(status, 200, "{body}");
    let call = w.only_call(before, "GET", &format!("/{WABA_A}/phone_numbers"));
    assert_eq!(bearer(&call), TOKEN_A);
    assert!(call
        .query_param("fields")
        .unwrap()
        .contains("platform_type"));
    assert!(call.query_param("appsecret_proof").is_some());
    let numbers = body["phoneNumbers"].as_array().unwrap();
    assert_eq!(numbers.len(), 2);
    assert_eq!(numbers[0]["id"], PHONE_A);
    assert_eq!(numbers[0]["displayPhoneNumber"], "+420 800 111 111");
    assert_eq!(numbers[0]["platformType"], "CLOUD_API");

    let (status, body) = w.a("GET", &format!("/api/v1/phone-numbers/{PHONE_A}"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wabaId"], WABA_A);
    assert_eq!(body["qualityRating"], "GREEN");
}

#[test]
fn another_accounts_waba_or_number_is_refused_without_using_its_token() {
    let w = World::start();
    let before = w.graph_calls();
    let (status, body) = w.a(
        "GET",
        &format!("/api/v1/business-accounts/{WABA_B}/phone-numbers"),
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        w.graph_calls(),
        before,
        "Meta must not be called for a foreign WABA"
    );

    // Unknown to wabridge: it lists account A's own WABA (with A's token) and does not find it.
    let (status, body) = w.a("GET", &format!("/api/v1/phone-numbers/{PHONE_B}"), None);
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(PHONE_B));
    for call in w.meta.api_requests().iter().skip(before) {
        assert_eq!(call.path, format!("/v25.0/{WABA_A}/phone_numbers"));
        assert_eq!(bearer(call), TOKEN_A);
    }
    // Once account B has used it, wabridge knows the number is B's: no Graph call at all.
    let (status, _) = w.gw.request(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_B}"),
        Some(&w.key_b),
        None,
    );
    assert_eq!(status, 200);
    let before = w.graph_calls();
    for path in [
        format!("/api/v1/phone-numbers/{PHONE_B}/registration-status"),
        format!("/api/v1/phone-numbers/{PHONE_B}/business-profile"),
    ] {
        let (status, _) = w.a("GET", &path, None);
        assert_eq!(status, 403, "{path}");
    }
    let (status, _) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_B}/messages"),
        Some(&json!({"to": "+420777123456", "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}})),
    );
    assert_eq!(status, 403);
    assert_eq!(w.graph_calls(), before);
    // Ids that are not Meta ids never reach a Graph URL.
    let (status, _) = w.a("GET", "/api/v1/phone-numbers/..%2Fme", None);
    assert_eq!(status, 403);
    assert_eq!(w.graph_calls(), before);
}

#[test]
fn registration_status_register_deregister_and_ensure_registered() {
    let w = World::start();
    let status_path = format!("/api/v1/phone-numbers/{PHONE_A2}/registration-status");
    let (status, body) = w.a("GET", &status_path, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["registered"], false);
    assert_eq!(body["platformType"], "NOT_APPLICABLE");
    assert_eq!(body["codeVerified"], true);

    // Ensure: registers the first time …
    let ensure = format!("/api/v1/phone-numbers/{PHONE_A2}/ensure-registered");
    let before = w.graph_calls();
    let (status, body) = w.a("POST", &ensure, Some(&json!({"pin": "000000"})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"registered": true, "wasAlreadyRegistered": false, "platformType": "CLOUD_API"})
    );
    let call = w.only_call(before, "POST", &format!("/{PHONE_A2}/register"));
    assert_eq!(
        call.json(),
        json!({"messaging_product": "whatsapp", "pin": "000000"})
    );
    assert_eq!(bearer(&call), TOKEN_A);
    assert!(w.meta.is_registered(PHONE_A2));

    // … and the second time only looks.
    let before = w.graph_calls();
    let (status, body) = w.a("POST", &ensure, Some(&json!({"pin": "000000"})));
    assert_eq!(status, 200);
    assert_eq!(body["wasAlreadyRegistered"], true);
    assert_eq!(body["platformType"], "CLOUD_API");
    assert!(
        w.meta
            .requests_to("POST", &format!("/{PHONE_A2}/register"))
            .len()
            == 1
    );
    assert!(w.graph_calls() > before);

    let before = w.graph_calls();
    let (status, body) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_A2}/deregister"),
        None,
    );
    assert_eq!((status, body), (200, json!({"success": true})));
    w.only_call(before, "POST", &format!("/{PHONE_A2}/deregister"));
    assert!(!w.meta.is_registered(PHONE_A2));

    let before = w.graph_calls();
    let (status, body) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_A2}/register"),
        Some(&json!({"pin": "000000", "dataLocalizationRegion": "DE"})),
    );
    assert_eq!((status, body), (200, json!({"success": true})));
    let call = w.only_call(before, "POST", &format!("/{PHONE_A2}/register"));
    assert_eq!(call.json()["data_localization_region"], "DE");
}

#[test]
fn a_wrong_pin_comes_back_with_metas_error_and_the_guides_hint() {
    let w = World::start();
    let (status, body) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_A2}/register"),
        Some(&json!({"pin": "123456"})),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "meta_error");
    assert_eq!(body["error"]["meta"]["code"], 133005);
    assert_eq!(body["error"]["meta"]["fbtrace_id"], "FAKEtrace");
    assert!(body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("Two-step verification PIN"));

    // A PIN that is not six digits never reaches Meta.
    let before = w.graph_calls();
    for bad in [
        json!({"pin": "12"}),
        json!({}),
        json!({"pin": "000000", "dataLocalizationRegion": "Germany"}),
    ] {
        let (status, body) = w.a(
            "POST",
            &format!("/api/v1/phone-numbers/{PHONE_A2}/ensure-registered"),
            Some(&bad),
        );
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, body) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_A2}/register"),
        Some(&json!({"pin": "12"})),
    );
    assert_eq!(field(&body), "pin");
    assert_eq!(w.graph_calls(), before);
}

#[test]
fn meta_errors_keep_code_subcode_and_trace_with_hints() {
    let w = World::start();
    // Learn the number first so the scripted error meets the send itself.
    assert_eq!(
        w.a("GET", &format!("/api/v1/phone-numbers/{PHONE_A}"), None)
            .0,
        200
    );
    let send = |code: i64, message: &str| {
        w.meta.script(
            "POST",
            &format!("/{PHONE_A}/messages"),
            meta_error(400, code, message),
        );
        w.a(
            "POST",
            &format!("/api/v1/phone-numbers/{PHONE_A}/messages"),
            Some(&json!({"to": "+420777123456", "type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}})),
        )
    };
    for (code, message, hint) in [
        (
            133010,
            "(#133010) Account not registered",
            "ensure-registered",
        ),
        (
            131030,
            "(#131030) Recipient phone number not in allowed list",
            "Manage phone number list",
        ),
        (
            132000,
            "(#132000) Number of parameters does not match",
            "Message Templates",
        ),
        (131047, "(#131047) Re-engagement message", "template"),
        (
            190,
            "Error validating access token: Session has expired",
            "Reconnect",
        ),
    ] {
        let (status, body) = send(code, message);
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["meta"]["code"], code);
        assert_eq!(body["error"]["meta"]["message"], message);
        assert_eq!(body["error"]["meta"]["fbtrace_id"], "FAKEtrace");
        assert!(
            body["error"]["hint"].as_str().unwrap().contains(hint),
            "{code}: {body}"
        );
    }
    w.meta.script(
        "POST",
        &format!("/{PHONE_A}/messages"),
        crate::support::server::Reply::json(
            400,
            json!({"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100, "error_subcode": 2494010, "fbtrace_id": "T2"}}),
        ),
    );
    let (_, body) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_A}/messages"),
        Some(&json!({"to": "+420777123456", "text": {"body": "x"}})),
    );
    assert_eq!(body["error"]["meta"]["subcode"], 2494010);
}

#[test]
fn templates_follow_metas_paging_up_to_the_limit() {
    let w = World::start();
    w.meta.add_templates(WABA_A, 230);
    let path = format!("/api/v1/business-accounts/{WABA_A}/templates");
    let before = w.graph_calls();
    let (status, body) = w.a("GET", &format!("{path}?limit=150"), None);
    assert_eq!(status, 200, "{body}");
    let templates = body["templates"].as_array().unwrap();
    assert_eq!(templates.len(), 150);
    assert_eq!(templates[0]["name"], "template_0");
    assert_eq!(templates[149]["name"], "template_149");
    assert_eq!(body["nextCursor"], "cur150");
    let calls: Vec<_> = w.meta.api_requests().into_iter().skip(before).collect();
    assert_eq!(calls.len(), 2, "two pages of at most 100");
    assert!(calls
        .iter()
        .all(|c| c.path == format!("/v25.0/{WABA_A}/message_templates") && bearer(c) == TOKEN_A));
    assert_eq!(calls[1].query_param("after").as_deref(), Some("cur100"));

    let (status, body) = w.a(
        "GET",
        &format!("{path}?limit=1000&after=cur150&status=APPROVED"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body["templates"].as_array().unwrap().len(), 80);
    assert_eq!(body["templates"][0]["name"], "template_150");
    assert_eq!(body["nextCursor"], json!(null));
    let last = w.meta.api_requests().pop().unwrap();
    assert_eq!(last.query_param("status").as_deref(), Some("APPROVED"));

    let (status, body) = w.a("GET", &format!("{path}?limit=0"), None);
    assert_eq!((status, field(&body)), (400, "limit"));
    let (status, _) = w.a(
        "GET",
        &format!("/api/v1/business-accounts/{WABA_B}/templates"),
        None,
    );
    assert_eq!(status, 403);
}

#[test]
fn the_business_profile_is_read_and_changed() {
    let w = World::start();
    let path = format!("/api/v1/phone-numbers/{PHONE_A}/business-profile");
    let (status, body) = w.a("GET", &path, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["about"], "Hello");
    assert_eq!(body["websites"][0], "https://shop.example.com");

    let before = w.graph_calls();
    let (status, body) = w.a(
        "POST",
        &path,
        Some(
            &json!({"about": "Open 9-17", "websites": ["https://a.example"], "vertical": "RETAIL"}),
        ),
    );
    assert_eq!((status, body), (200, json!({"success": true})));
    let call = w.only_call(
        before,
        "POST",
        &format!("/{PHONE_A}/whatsapp_business_profile"),
    );
    assert_eq!(
        call.json(),
        json!({"messaging_product": "whatsapp", "about": "Open 9-17", "websites": ["https://a.example"], "vertical": "RETAIL"})
    );
    let (_, body) = w.a("GET", &path, None);
    assert_eq!(body["about"], "Open 9-17");

    let before = w.graph_calls();
    for (bad, f) in [
        (json!({"about": "x".repeat(140)}), "about"),
        (json!({"websites": ["a", "b", "c"]}), "websites"),
        (json!({"vertical": "SPACESHIPS"}), "vertical"),
        (json!({}), "body"),
    ] {
        let (status, body) = w.a("POST", &path, Some(&bad));
        assert_eq!((status, field(&body)), (400, f), "{body}");
    }
    assert_eq!(w.graph_calls(), before);
}

#[test]
fn a_token_meta_refuses_during_a_flow_call_marks_the_account_at_once() {
    let w = World::start();
    // Meta refusing something else says nothing about the token.
    let (status, body) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_A2}/register"),
        Some(&json!({"pin": "123456"})),
    );
    assert_eq!(status, 422, "{body}");
    let (_, me) = w.a("GET", "/api/v1/me", None);
    assert_eq!(me["status"], "ok", "{me}");

    // The user changes their Facebook password: Meta refuses every token (190).
    w.meta.revoke_user(&format!("user-{TOKEN_A}"));
    let (status, body) = w.a("GET", &format!("/api/v1/phone-numbers/{PHONE_A}"), None);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["meta"]["code"], 190);
    assert!(body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("Reconnect"));
    // Without waiting for the token keeper's round.
    let (_, me) = w.a("GET", "/api/v1/me", None);
    assert_eq!(me["status"], "needs_reconnect", "{me}");
    let reason = me["statusReason"].as_str().unwrap();
    assert!(
        reason.contains("Meta error 190 (subcode 460)") && reason.contains("FAKEtrace"),
        "{reason}"
    );
    let (_, me_b) = w.gw.request("GET", "/api/v1/me", Some(&w.key_b), None);
    assert_eq!(me_b["status"], "ok", "{me_b}");
}

#[test]
fn a_meta_that_refuses_the_coexistence_field_still_lists_the_numbers() {
    let w = World::start();
    w.meta.script(
        "GET",
        &format!("/{WABA_A}/phone_numbers"),
        meta_error(
            400,
            100,
            "(#100) Tried accessing nonexisting field (is_on_biz_app)",
        ),
    );
    let before = w.graph_calls();
    let path = format!("/api/v1/business-accounts/{WABA_A}/phone-numbers");
    let (status, body) = w.a("GET", &path, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phoneNumbers"].as_array().unwrap().len(), 2);
    let fields: Vec<String> = w
        .meta
        .api_requests()
        .into_iter()
        .skip(before)
        .filter(|r| r.path.ends_with(&format!("/{WABA_A}/phone_numbers")))
        .map(|r| r.query_param("fields").unwrap_or_default())
        .collect();
    assert_eq!(fields.len(), 2, "{fields:?}");
    assert!(fields[0].contains("is_on_biz_app"));
    assert!(!fields[1].contains("is_on_biz_app") && fields[1].contains("throughput"));
}
