//! WhatsApp calls through the flow API (issue 12): Meta's Calling API proxied
//! for one of the caller's numbers. Each action reaches Meta as Meta takes it,
//! the SDP byte for byte; Meta's answers and refusals come back; wrong input
//! and another account's number never reach Meta.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{bearer, field, World, PHONE_A, PHONE_B, TOKEN_A};
use crate::support::server::Reply;

/// An SDP as a browser's WebRTC stack writes one: CRLF lines, `+` and `/`
/// in the ICE password, a trailing CRLF — all of which must reach Meta as is.
const OFFER: &str = "v=0\r\no=- 6314352886888624490 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS ccd3f422-8d7d-49c9-936c-a152979ee4fa\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 110 126\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:/PSS\r\na=ice-pwd:buBIz+JlbmakiCT7JdJIq/j0\r\na=fingerprint:sha-256 43:08:34:16:67:E3:D9:A2:F5:AA:6A:AE:03:97:C8:D5:B8:F2:4B:40:79:C8:1A:44:53:69:4B:9C:89:88:D7:22\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n";
const ANSWER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=setup:active\r\na=rtpmap:111 opus/48000/2\r\n";
const CALL: &str = "wacid.HBgLMTIxNTU1MDgyMDUVAgASGCA";
const USER: &str = "420777123456";

fn calls() -> String {
    format!("/api/v1/phone-numbers/{PHONE_A}/calls")
}

fn settings() -> String {
    format!("/api/v1/phone-numbers/{PHONE_A}/call-settings")
}

/// Calling on for PHONE_A, and the user's permission to be called.
fn ready() -> World {
    let w = World::start();
    w.meta.enable_calling(PHONE_A);
    w.meta.grant_call_permission(PHONE_A, USER);
    w
}

#[test]
fn a_business_call_reaches_meta_with_the_sdp_offer_byte_for_byte() {
    let w = ready();
    let before = w.graph_calls();
    let request = json!({
        "action": "connect",
        "to": "+420 777 123 456",
        "session": {"sdp_type": "offer", "sdp": OFFER},
        "biz_opaque_callback_data": "ticket-42"
    });
    let (status, body) = w.a("POST", &calls(), Some(&request));
    assert_eq!(status, 200, "{body}");
    let call = w.only_call(before, "POST", &format!("/{PHONE_A}/calls"));
    assert_eq!(call.path, format!("/v25.0/{PHONE_A}/calls"));
    assert_eq!(bearer(&call), TOKEN_A);
    assert!(call.query_param("appsecret_proof").is_some());
    assert_eq!(
        call.json(),
        json!({
            "messaging_product": "whatsapp",
            "action": "connect",
            "to": USER,
            "session": {"sdp_type": "offer", "sdp": OFFER},
            "biz_opaque_callback_data": "ticket-42"
        })
    );
    assert_eq!(
        call.json()["session"]["sdp"].as_str().unwrap().as_bytes(),
        OFFER.as_bytes()
    );
    // Meta's new call id comes back for the flow to follow its events.
    assert!(
        body["callId"]
            .as_str()
            .is_some_and(|id| id.starts_with("wacid.FAKE")),
        "{body}"
    );
    assert_eq!(body["action"], "connect");
    assert_eq!(body["success"], true);
    assert_eq!(body["phoneNumberId"], PHONE_A);
}

#[test]
fn a_users_call_is_pre_accepted_accepted_rejected_and_terminated_as_meta_takes_them() {
    let w = ready();
    let answering = |action: &str| json!({"action": action, "call_id": CALL, "session": {"sdp_type": "answer", "sdp": ANSWER}});
    for (request, sent) in [
        (
            answering("pre_accept"),
            json!({"messaging_product": "whatsapp", "action": "pre_accept", "call_id": CALL,
                   "session": {"sdp_type": "answer", "sdp": ANSWER}}),
        ),
        (
            answering("accept"),
            json!({"messaging_product": "whatsapp", "action": "accept", "call_id": CALL,
                   "session": {"sdp_type": "answer", "sdp": ANSWER}}),
        ),
        (
            json!({"action": "reject", "call_id": CALL}),
            json!({"messaging_product": "whatsapp", "action": "reject", "call_id": CALL}),
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "terminate", "call_id": CALL}),
            json!({"messaging_product": "whatsapp", "action": "terminate", "call_id": CALL}),
        ),
    ] {
        let before = w.graph_calls();
        let (status, body) = w.a("POST", &calls(), Some(&request));
        assert_eq!(status, 200, "{request} → {body}");
        let call = w.only_call(before, "POST", &format!("/{PHONE_A}/calls"));
        assert_eq!(bearer(&call), TOKEN_A);
        assert_eq!(call.json(), sent);
        assert_eq!(
            body,
            json!({"phoneNumberId": PHONE_A, "action": sent["action"], "callId": CALL, "success": true})
        );
    }
}

#[test]
fn metas_refusals_come_back_with_code_trace_and_a_calling_hint() {
    let w = World::start();
    let connect = json!({"action": "connect", "to": "+420777123456", "session": {"sdp_type": "offer", "sdp": OFFER}});
    // Calling is off on the number.
    let (status, body) = w.a("POST", &calls(), Some(&connect));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["meta"]["code"], 138000);
    assert_eq!(body["error"]["meta"]["fbtrace_id"], "FAKEtrace");
    assert!(body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("call-settings"));

    // On, but the user never allowed the call.
    w.meta.enable_calling(PHONE_A);
    let (status, body) = w.a("POST", &calls(), Some(&connect));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["meta"]["code"], 138006);
    assert!(body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("call_permission_request"));

    // A limit is throttling: 429, with Meta's details of when to try again,
    // and that time as Retry-After.
    let next = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let details = format!("next call allowed at {next}");
    w.meta.script(
        "POST",
        &format!("/{PHONE_A}/calls"),
        Reply::json(
            400,
            json!({"error": {"message": "Business initiated calls limit reached", "type": "OAuthException",
                   "code": 138012, "error_subcode": 4999, "fbtrace_id": "Atrace",
                   "error_data": {"details": details}}}),
        ),
    );
    let (status, retry_after, body) = w.post_a_with_retry_after(&calls(), &connect);
    assert_eq!(status, 429, "{body}");
    let wait = retry_after.expect("Retry-After");
    assert!((3500..=3600).contains(&wait), "Retry-After {wait}");
    let meta = &body["error"]["meta"];
    assert_eq!(meta["code"], 138012);
    assert_eq!(meta["subcode"], 4999);
    assert_eq!(meta["fbtrace_id"], "Atrace");
    assert_eq!(meta["error_data"]["details"], details);
}

#[test]
fn invalid_call_input_is_refused_with_its_field_before_meta_sees_it() {
    let w = ready();
    let before = w.graph_calls();
    let session = |t: &str, sdp: Value| json!({"sdp_type": t, "sdp": sdp});
    for (request, named) in [
        (json!({"call_id": CALL}), "action"),
        (json!({"action": "hang_up", "call_id": CALL}), "action"),
        (json!({"action": "terminate"}), "call_id"),
        (
            json!({"action": "accept", "call_id": CALL, "session": session("offer", json!(ANSWER))}),
            "session.sdp_type",
        ),
        (
            json!({"action": "accept", "call_id": CALL, "session": {"sdp_type": "answer"}}),
            "session.sdp",
        ),
        (
            json!({"action": "pre_accept", "call_id": CALL, "session": session("answer", json!(42))}),
            "session.sdp",
        ),
        (
            json!({"action": "accept", "call_id": CALL, "session": session("answer", json!(format!("v=0\r\n{}", "a=x\r\n".repeat(20_000))))}),
            "session.sdp",
        ),
        (json!({"action": "pre_accept", "call_id": CALL}), "session"),
        (
            json!({"action": "connect", "to": "not a number", "session": session("offer", json!(OFFER))}),
            "to",
        ),
        (
            json!({"action": "connect", "session": session("offer", json!(OFFER))}),
            "to",
        ),
        (json!({"action": "reject", "callId": CALL}), "callId"),
    ] {
        let (status, body) = w.a("POST", &calls(), Some(&request));
        assert_eq!(status, 400, "{request} → {body}");
        assert_eq!(field(&body), named, "{body}");
    }
    // The settings, the same way.
    for (change, named) in [
        (json!({"status": "ON"}), "status"),
        (
            json!({"call_hours": {"status": "ENABLED", "timezone_id": "Europe/Prague",
                   "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "1800", "close_time": "0900"}]}}),
            "call_hours.weekly_operating_hours[0].close_time",
        ),
    ] {
        let (status, body) = w.a("POST", &settings(), Some(&change));
        assert_eq!(status, 400, "{change} → {body}");
        assert_eq!(field(&body), named, "{body}");
    }
    let (status, body) = w.a(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_A}/call-permissions/jana"),
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "user");
    let (status, body) = w.a(
        "GET",
        &format!("{}?includeSipCredentials=yes", settings()),
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "includeSipCredentials");
    assert_eq!(w.graph_calls(), before, "Meta must see no invalid input");
}

#[test]
fn a_users_call_permission_is_read_by_phone_number_or_bsuid() {
    let w = ready();
    let before = w.graph_calls();
    let (status, body) = w.a(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_A}/call-permissions/%2B420%20777%20123%20456"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let asked = w.only_call(before, "GET", &format!("/{PHONE_A}/call_permissions"));
    assert_eq!(asked.query_param("user_wa_id").as_deref(), Some(USER));
    assert_eq!(bearer(&asked), TOKEN_A);
    assert_eq!(body["user"], USER);
    assert_eq!(body["permission"]["status"], "temporary");
    assert_eq!(body["canStartCall"], true);
    assert_eq!(body["canRequestPermission"], false);
    assert_eq!(body["actions"][1]["action_name"], "start_call");

    let before = w.graph_calls();
    let bsuid = "US.13491208655302741918";
    let (status, body) = w.a(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_A}/call-permissions/{bsuid}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let asked = w.only_call(before, "GET", &format!("/{PHONE_A}/call_permissions"));
    assert_eq!(asked.query_param("recipient").as_deref(), Some(bsuid));
    assert!(asked.query_param("user_wa_id").is_none());
    assert_eq!(body["permission"]["status"], "no_permission");
    assert_eq!(body["canStartCall"], false);
    assert_eq!(body["canRequestPermission"], true);
}

#[test]
fn calling_settings_are_read_and_changed_in_metas_names() {
    let w = World::start();
    let (status, body) = w.a("GET", &settings(), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["calling"]["status"], "DISABLED");
    assert_eq!(body["phoneNumberId"], PHONE_A);

    let change = json!({
        "status": "ENABLED",
        "call_icon_visibility": "DEFAULT",
        "callback_permission_status": "ENABLED",
        // A setting newer than wabridge goes on to Meta as it is.
        "voicemail": {"status": "ENABLED"},
        "call_hours": {
            "status": "ENABLED",
            "timezone_id": "Europe/Prague",
            "weekly_operating_hours": [
                {"day_of_week": "MONDAY", "open_time": "0900", "close_time": "1200"},
                {"day_of_week": "MONDAY", "open_time": "1300", "close_time": "1700"}
            ],
            "holiday_schedule": [{"date": "2026-12-24", "start_time": "0000", "end_time": "2359"}]
        }
    });
    let before = w.graph_calls();
    let (status, body) = w.a("POST", &settings(), Some(&change));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let sent = w.only_call(before, "POST", &format!("/{PHONE_A}/settings"));
    assert_eq!(sent.json(), json!({ "calling": change }));
    assert_eq!(bearer(&sent), TOKEN_A);

    let before = w.graph_calls();
    let (_, body) = w.a("GET", &settings(), None);
    let read = w.only_call(before, "GET", &format!("/{PHONE_A}/settings"));
    assert!(read.query_param("include_sip_credentials").is_none());
    assert_eq!(body["calling"]["status"], "ENABLED");
    assert_eq!(
        body["calling"]["call_hours"]["timezone_id"],
        "Europe/Prague"
    );
    let before = w.graph_calls();
    let (status, _) = w.a(
        "GET",
        &format!("{}?includeSipCredentials=true", settings()),
        None,
    );
    assert_eq!(status, 200);
    let read = w.only_call(before, "GET", &format!("/{PHONE_A}/settings"));
    assert_eq!(
        read.query_param("include_sip_credentials").as_deref(),
        Some("true")
    );

    // With calling on and permission given, the number can call.
    w.meta.grant_call_permission(PHONE_A, USER);
    let connect = json!({"action": "connect", "to": "+420777123456", "session": {"sdp_type": "offer", "sdp": OFFER}});
    assert_eq!(w.a("POST", &calls(), Some(&connect)).0, 200);
}

#[test]
fn a_call_permission_request_is_sent_as_an_interactive_message() {
    let w = World::start();
    let before = w.graph_calls();
    let message = json!({
        "to": "+420777123456",
        "type": "interactive",
        "interactive": {
            "type": "call_permission_request",
            "body": {"text": "May we call you about your order?"},
            "action": {"name": "call_permission_request"}
        }
    });
    let (status, body) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_A}/messages"),
        Some(&message),
    );
    assert_eq!(status, 200, "{body}");
    let sent = w.only_call(before, "POST", &format!("/{PHONE_A}/messages"));
    assert_eq!(sent.json()["interactive"], message["interactive"]);

    let mut no_body = message.clone();
    no_body["interactive"]
        .as_object_mut()
        .unwrap()
        .remove("body");
    let (status, body) = w.a(
        "POST",
        &format!("/api/v1/phone-numbers/{PHONE_A}/messages"),
        Some(&no_body),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "interactive.body.text");
}

#[test]
fn another_accounts_number_is_refused_without_a_graph_call() {
    let w = ready();
    w.meta.enable_calling(PHONE_B);
    // A learns of its own numbers first, so what follows is only the refusal.
    assert_eq!(w.a("GET", &settings(), None).0, 200);
    let before = w.graph_calls();
    let accept = json!({"action": "accept", "call_id": CALL, "session": {"sdp_type": "answer", "sdp": ANSWER}});
    let b = |method: &str, path: &str, body: Option<&Value>| {
        w.gw.request(method, path, Some(&w.key_b), body).0
    };
    assert_eq!(b("POST", &calls(), Some(&accept)), 403);
    assert_eq!(b("GET", &settings(), None), 403);
    assert_eq!(
        b("POST", &settings(), Some(&json!({"status": "DISABLED"}))),
        403
    );
    assert_eq!(
        b(
            "GET",
            &format!("/api/v1/phone-numbers/{PHONE_A}/call-permissions/{USER}"),
            None
        ),
        403
    );
    assert_eq!(
        w.graph_calls(),
        before,
        "Meta must not be called for another account's number"
    );
    // Account A reaching for B's number the same way.
    let theirs = format!("/api/v1/phone-numbers/{PHONE_B}");
    assert_eq!(
        w.a("POST", &format!("{theirs}/calls"), Some(&accept)).0,
        403
    );
    assert_eq!(w.a("GET", &format!("{theirs}/call-settings"), None).0, 403);
    assert_eq!(
        w.meta
            .requests_to("POST", &format!("/{PHONE_A}/calls"))
            .len()
            + w.meta
                .requests_to("POST", &format!("/{PHONE_B}/calls"))
                .len(),
        0
    );
    assert!(
        w.meta
            .api_requests()
            .iter()
            .skip(before)
            .all(|r| !r.path.contains("/calls")
                && !r.path.contains("/settings")
                && !r.path.contains("call_permissions")),
        "Meta must not be asked about a number of another account"
    );
}
