//! WhatsApp groups (issue 12) through one of the caller's phone numbers:
//! created, listed, read, invite link read and reset, participants listed and
//! removed, join requests listed, approved and rejected, deleted — each checked before Meta sees it, Meta's refusals passed
//! on with a hint, another account's number or group refused without a Graph
//! call that changes anything; sends to a group and each participant's
//! status in the message's history.

use serde_json::{json, Value};

use super::{bearer, field, World, PHONE_A, PHONE_B, TOKEN_A, WABA_A};
use crate::support::payloads;
use crate::support::server::Reply;

const GROUP: &str = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD";

fn groups() -> String {
    format!("/api/v1/phone-numbers/{PHONE_A}/groups")
}

fn group(suffix: &str) -> String {
    format!("{}/{GROUP}{suffix}", groups())
}

/// WABA A's first number with one group of two participants, one of whom
/// hides their number.
fn world() -> World {
    let w = World::start();
    w.meta.add_group(
        PHONE_A,
        GROUP,
        "Launch crew",
        vec![
            json!({"wa_id": "420777000001", "user_id": "CZ.1"}),
            json!({"user_id": "CZ.2", "username": "jana"}),
        ],
    );
    w
}

/// The Graph calls made since `before`, as "METHOD /path".
fn calls_since(w: &World, before: usize) -> Vec<String> {
    w.meta
        .api_requests()
        .into_iter()
        .skip(before)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn a_group_is_created_as_meta_takes_it_and_metas_request_id_comes_back() {
    let w = world();
    let before = w.graph_calls();
    let request = json!({"subject": " Spring launch ", "description": "Early access", "join_approval_mode": "approval_required"});
    let (status, body) = w.a("POST", &groups(), Some(&request));
    assert_eq!(status, 202, "{body}");
    let call = w.only_call(before, "POST", &format!("/{PHONE_A}/groups"));
    assert_eq!(call.path, format!("/v25.0/{PHONE_A}/groups"));
    assert_eq!(bearer(&call), TOKEN_A);
    assert!(call.query_param("appsecret_proof").is_some());
    assert_eq!(
        call.json(),
        json!({"messaging_product": "whatsapp", "subject": "Spring launch", "description": "Early access", "join_approval_mode": "approval_required"})
    );
    assert_eq!(body["phoneNumberId"], PHONE_A);
    assert!(body["requestId"].as_str().unwrap().starts_with("REQ"));
}

#[test]
fn an_invalid_group_is_refused_with_its_field_before_meta_sees_it() {
    let w = world();
    let before = w.graph_calls();
    for (request, named) in [
        (json!({"subject": "  "}), "subject"),
        (json!({"subject": "x".repeat(129)}), "subject"),
        (
            json!({"subject": "x", "description": "d".repeat(2049)}),
            "description",
        ),
        (
            json!({"subject": "x", "join_approval_mode": "manual"}),
            "join_approval_mode",
        ),
    ] {
        let (status, body) = w.a("POST", &groups(), Some(&request));
        assert_eq!(status, 400, "{body}");
        assert_eq!(field(&body), named, "{body}");
    }
    let (status, _) = w.a(
        "DELETE",
        &group("/participants"),
        Some(&json!({"participants": vec!["420777000001"; 9]})),
    );
    assert_eq!(status, 400);
    // Only the number itself may be looked up (the route's guard).
    let asked = calls_since(&w, before);
    assert!(
        asked
            .iter()
            .all(|c| !c.contains("groups") && !c.contains(GROUP)),
        "Meta must see no invalid request: {asked:?}"
    );
}

#[test]
fn an_invalid_change_to_an_unknown_numbers_group_is_a_400_before_any_graph_call() {
    // The body is checked before the number, as for creating a group
    // (CONTRACT §4): a number wabridge has never seen would otherwise be
    // looked up at Meta first.
    let w = world();
    let unknown = format!("/api/v1/phone-numbers/1999000000001/groups/{GROUP}");
    let before = w.meta.requests().len();
    for (method, suffix, request, named) in [
        (
            "DELETE",
            "/participants",
            json!({"participants": vec!["420777000001"; 9]}),
            "participants",
        ),
        (
            "POST",
            "/join-requests",
            json!({"join_requests": []}),
            "join_requests",
        ),
        (
            "DELETE",
            "/join-requests",
            json!({"join_requests": ["not a request id"]}),
            "join_requests",
        ),
    ] {
        let path = format!("{unknown}{suffix}");
        let (status, body) = w.a(method, &path, Some(&request));
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert!(field(&body).starts_with(named), "{body}");
    }
    assert_eq!(w.meta.requests().len(), before, "Meta must not be asked");
}

#[test]
fn the_numbers_groups_are_listed_and_one_is_read() {
    let w = world();
    let before = w.graph_calls();
    let (status, body) = w.a("GET", &groups(), None);
    assert_eq!(status, 200, "{body}");
    let listed = w.only_call(before, "GET", &format!("/{PHONE_A}/groups"));
    assert_eq!(bearer(&listed), TOKEN_A);
    assert_eq!(body["groups"][0]["groupId"], GROUP);
    assert_eq!(body["groups"][0]["subject"], "Launch crew");
    assert_eq!(body["groups"].as_array().unwrap().len(), 1);

    let before = w.graph_calls();
    let (status, body) = w.a("GET", &group(""), None);
    assert_eq!(status, 200, "{body}");
    w.only_call(before, "GET", &format!("/{PHONE_A}/groups"));
    let read = w.only_call(before, "GET", &format!("/{GROUP}"));
    let fields = read.query_param("fields").unwrap();
    for f in [
        "subject",
        "description",
        "join_approval_mode",
        "suspended",
        "total_participant_count",
    ] {
        assert!(fields.contains(f), "{fields}");
    }
    assert_eq!(body["groupId"], GROUP);
    assert_eq!(body["subject"], "Launch crew");
    assert_eq!(body["joinApprovalMode"], "auto_approve");
    assert_eq!(body["suspended"], false);
    assert_eq!(body["totalParticipantCount"], 2);
}

#[test]
fn the_invite_link_is_read_and_reset() {
    let w = world();
    let before = w.graph_calls();
    let (status, body) = w.a("GET", &group("/invite-link"), None);
    assert_eq!(status, 200, "{body}");
    w.only_call(before, "GET", &format!("/{GROUP}/invite_link"));
    let old = body["inviteLink"].as_str().unwrap().to_string();
    assert!(old.starts_with("https://chat.whatsapp.com/"), "{body}");

    let before = w.graph_calls();
    let (status, body) = w.a("POST", &group("/invite-link"), None);
    assert_eq!(status, 200, "{body}");
    let reset = w.only_call(before, "POST", &format!("/{GROUP}/invite_link"));
    assert_eq!(reset.json(), json!({"messaging_product": "whatsapp"}));
    assert_eq!(bearer(&reset), TOKEN_A);
    let new = body["inviteLink"].as_str().unwrap();
    assert_ne!(new, old);
    let (_, again) = w.a("GET", &group("/invite-link"), None);
    assert_eq!(again["inviteLink"], new);
}

#[test]
fn participants_are_listed_and_removed_by_phone_or_bsuid() {
    let w = world();
    let (status, body) = w.a("GET", &group("/participants"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalParticipantCount"], 2);
    assert_eq!(body["participants"][0]["waId"], "420777000001");
    assert_eq!(body["participants"][1]["userId"], "CZ.2");
    assert_eq!(body["participants"][1]["username"], "jana");

    let before = w.graph_calls();
    let (status, body) = w.a(
        "DELETE",
        &group("/participants"),
        Some(&json!({"participants": ["+420 777 000 001", "CZ.2"]})),
    );
    assert_eq!(status, 202, "{body}");
    let call = w.only_call(before, "DELETE", &format!("/{GROUP}/participants"));
    assert_eq!(bearer(&call), TOKEN_A);
    assert_eq!(
        call.json(),
        json!({"messaging_product": "whatsapp", "participants": [{"user": "420777000001"}, {"user_id": "CZ.2"}]})
    );
    assert!(body["requestId"].as_str().is_some(), "{body}");
    let (_, body) = w.a("GET", &group("/participants"), None);
    assert_eq!(body["participants"], json!([]));
}

#[test]
fn join_requests_are_listed_approved_and_rejected() {
    let w = world();
    w.meta.add_join_request(GROUP, "JR1", "420777000003");
    w.meta.add_join_request(GROUP, "JR2", "420777000004");
    let before = w.graph_calls();
    let (status, body) = w.a("GET", &group("/join-requests"), None);
    assert_eq!(status, 200, "{body}");
    let listed = w.only_call(before, "GET", &format!("/{GROUP}/join_requests"));
    assert_eq!(bearer(&listed), TOKEN_A);
    assert_eq!(body["joinRequests"][0]["joinRequestId"], "JR1");
    assert_eq!(body["joinRequests"][1]["waId"], "420777000004");

    let before = w.graph_calls();
    let (status, body) = w.a(
        "POST",
        &group("/join-requests"),
        Some(&json!({"join_requests": ["JR1"]})),
    );
    assert_eq!(status, 202, "{body}");
    let approve = w.only_call(before, "POST", &format!("/{GROUP}/join_requests"));
    assert_eq!(
        approve.json(),
        json!({"messaging_product": "whatsapp", "join_requests": ["JR1"]})
    );
    assert!(body["requestId"].as_str().is_some(), "{body}");

    let before = w.graph_calls();
    let (status, _) = w.a(
        "DELETE",
        &group("/join-requests"),
        Some(&json!({"join_requests": ["JR2"]})),
    );
    assert_eq!(status, 202);
    let reject = w.only_call(before, "DELETE", &format!("/{GROUP}/join_requests"));
    assert_eq!(
        reject.json(),
        json!({"messaging_product": "whatsapp", "join_requests": ["JR2"]})
    );
    let (_, body) = w.a("GET", &group("/join-requests"), None);
    assert_eq!(body["joinRequests"], json!([]));
    let (_, body) = w.a("GET", &group("/participants"), None);
    assert_eq!(body["totalParticipantCount"], 3, "{body}");

    let before = w.graph_calls();
    let (status, body) = w.a(
        "POST",
        &group("/join-requests"),
        Some(&json!({"join_requests": []})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "join_requests");
    assert!(calls_since(&w, before).iter().all(|c| !c.contains(GROUP)));
}

#[test]
fn a_group_is_deleted_and_is_then_not_found() {
    let w = world();
    let before = w.graph_calls();
    let (status, body) = w.a("DELETE", &group(""), None);
    assert_eq!(status, 202, "{body}");
    let call = w.only_call(before, "DELETE", &format!("/{GROUP}"));
    assert_eq!(bearer(&call), TOKEN_A);
    assert_eq!(body["groupId"], GROUP);
    assert!(body["requestId"].as_str().is_some(), "{body}");
    let before = w.graph_calls();
    let (status, _) = w.a("GET", &group(""), None);
    assert_eq!(status, 404);
    assert_eq!(
        calls_since(&w, before),
        [format!("GET /v25.0/{PHONE_A}/groups")],
        "only the number's listing is asked"
    );
}

#[test]
fn metas_refusal_comes_back_with_code_subcode_trace_and_a_hint() {
    let w = world();
    w.meta.script(
        "POST",
        &format!("/{PHONE_A}/groups"),
        Reply::json(
            400,
            json!({"error": {"message": "(#10) This phone number is not eligible for the Groups API", "type": "OAuthException",
                   "code": 10, "error_subcode": 2494001, "fbtrace_id": "FAKEtrace"}}),
        ),
    );
    let (status, body) = w.a("POST", &groups(), Some(&json!({"subject": "x"})));
    assert!(status == 403 || status == 422, "{status} {body}");
    let meta = &body["error"]["meta"];
    assert_eq!(meta["code"], 10);
    assert_eq!(meta["subcode"], 2494001);
    assert_eq!(meta["fbtrace_id"], "FAKEtrace");
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("Official Business Account"),
        "{body}"
    );
}

#[test]
fn another_accounts_number_or_group_is_refused_without_a_graph_call_that_changes_anything() {
    let w = world();
    // Both numbers are known to wabridge, as after any earlier call.
    let (status, _) = w.a("GET", &format!("/api/v1/phone-numbers/{PHONE_A}"), None);
    assert_eq!(status, 200);
    let (status, _) = w.gw.request(
        "GET",
        &format!("/api/v1/phone-numbers/{PHONE_B}"),
        Some(&w.key_b),
        None,
    );
    assert_eq!(status, 200);
    let before = w.graph_calls();
    let remove = json!({"participants": ["420777000001"]});
    for (method, path, body) in [
        ("GET", groups(), None),
        ("POST", groups(), Some(json!({"subject": "mine now"}))),
        ("GET", group(""), None),
        ("DELETE", group(""), None),
        ("GET", group("/invite-link"), None),
        ("POST", group("/invite-link"), None),
        ("GET", group("/participants"), None),
        ("DELETE", group("/participants"), Some(remove.clone())),
        ("GET", group("/join-requests"), None),
        (
            "POST",
            group("/join-requests"),
            Some(json!({"join_requests": ["JR1"]})),
        ),
    ] {
        let (status, answer) = w.gw.request(method, &path, Some(&w.key_b), body.as_ref());
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    assert_eq!(w.graph_calls(), before, "Meta must not be asked");

    // A's group through B's own number: not B's number's group.
    let theirs = |suffix: &str| format!("/api/v1/phone-numbers/{PHONE_B}/groups/{GROUP}{suffix}");
    for (method, path, body) in [
        ("GET", theirs(""), None),
        ("DELETE", theirs(""), None),
        ("POST", theirs("/invite-link"), None),
        ("DELETE", theirs("/participants"), Some(remove.clone())),
        (
            "DELETE",
            theirs("/join-requests"),
            Some(json!({"join_requests": ["JR1"]})),
        ),
    ] {
        let (status, answer) = w.gw.request(method, &path, Some(&w.key_b), body.as_ref());
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    let asked = calls_since(&w, before);
    assert!(
        asked
            .iter()
            .all(|c| c == &format!("GET /v25.0/{PHONE_B}/groups")),
        "only B's number's listing may be asked: {asked:?}"
    );
    let (_, still) = w.a("GET", &group("/participants"), None);
    assert_eq!(still["totalParticipantCount"], 2, "{still}");
}

fn send_path() -> String {
    format!("/api/v1/phone-numbers/{PHONE_A}/messages")
}

#[test]
fn a_group_send_reaches_meta_as_a_group_message() {
    let w = world();
    let before = w.graph_calls();
    let request = json!({"recipient_type": "group", "to": GROUP, "type": "text", "text": {"body": "Doors open at 9"}});
    let (status, body) = w.a("POST", &send_path(), Some(&request));
    assert_eq!(status, 200, "{body}");
    let call = w.only_call(before, "POST", &format!("/{PHONE_A}/messages"));
    assert_eq!(
        call.json(),
        json!({"messaging_product": "whatsapp", "recipient_type": "group", "to": GROUP, "type": "text", "text": {"body": "Doors open at 9"}})
    );
    assert!(body["messageId"].as_str().is_some(), "{body}");
    assert_eq!(body["window"], "unknown");

    let before = w.graph_calls();
    for (request, named) in [
        (
            json!({"recipient_type": "group", "to": "not a group/id", "type": "text", "text": {"body": "x"}}),
            "to",
        ),
        (
            json!({"recipient_type": "group", "recipient": "CZ.1", "type": "text", "text": {"body": "x"}}),
            "to",
        ),
        (
            json!({"recipient_type": "group", "to": GROUP, "type": "interactive", "interactive": {"type": "button",
                "body": {"text": "Pick"}, "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}}),
            "type",
        ),
        (
            json!({"recipient_type": "broadcast", "to": GROUP, "type": "text", "text": {"body": "x"}}),
            "recipient_type",
        ),
    ] {
        let (status, body) = w.a("POST", &send_path(), Some(&request));
        assert_eq!(status, 400, "{request}: {body}");
        assert_eq!(field(&body), named, "{body}");
    }
    assert_eq!(w.graph_calls(), before);
}

#[test]
fn a_message_written_in_the_group_opens_the_groups_window_not_its_authors() {
    let w = world();
    let strict = format!("{}?requireOpenWindow=true", send_path());
    let text =
        json!({"recipient_type": "group", "to": GROUP, "type": "text", "text": {"body": "hi all"}});
    let (status, body) = w.a("POST", &strict, Some(&text));
    assert_eq!(status, 409, "{body}");
    // A participant writes in the group.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    w.webhook(
        PHONE_A,
        vec![json!({"profile": {"name": "Jana"}, "wa_id": "420777000001", "user_id": "CZ.1"})],
        vec![
            json!({"from": "420777000001", "group_id": GROUP, "id": "wamid.G1",
            "timestamp": now.to_string(), "type": "text", "text": {"body": "hello"}}),
        ],
    );
    let (status, body) = w.a("POST", &strict, Some(&text));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["window"], "open");
    // The author's own 1:1 window stays as it was.
    let one_to_one = json!({"to": "+420777000001", "type": "text", "text": {"body": "hi"}});
    let (status, _) = w.a("POST", &strict, Some(&one_to_one));
    assert_eq!(status, 409);
}

#[test]
fn each_participants_status_of_a_group_message_is_in_its_history() {
    let w = world();
    let request = json!({"recipient_type": "group", "to": GROUP, "type": "text", "text": {"body": "Doors open at 9"}});
    let (status, body) = w.a("POST", &send_path(), Some(&request));
    assert_eq!(status, 200, "{body}");
    let id = body["messageId"].as_str().unwrap().to_string();
    let member = |status: &str, ts: &str, phone: Option<&str>, user: &str| {
        let mut extra = json!({"recipient_id": GROUP, "recipient_type": "group",
            "recipient_participant_user_id": user});
        if let Some(p) = phone {
            extra["recipient_participant_id"] = json!(p);
        }
        payloads::status_with(&id, status, ts, extra)
    };
    let statuses = vec![
        payloads::status_with(
            &id,
            "sent",
            "4102444800",
            json!({"recipient_id": GROUP, "recipient_type": "group"}),
        ),
        member("delivered", "4102444801", Some("420777000001"), "CZ.1"),
        // Two members who hide their number: known by BSUID only.
        member("delivered", "4102444802", None, "CZ.2"),
        member("delivered", "4102444803", None, "CZ.3"),
        member("read", "4102444804", Some("420777000001"), "CZ.1"),
    ];
    let (status, _) =
        w.gw.post_webhook(&payloads::statuses(WABA_A, PHONE_A, statuses));
    assert_eq!(status, 200);
    let (status, history) = w.a("GET", &format!("/api/v1/messages/{id}"), None);
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["recipientType"], "group");
    assert_eq!(history["groupId"], GROUP);
    assert_eq!(history["recipientId"], GROUP);
    assert_eq!(history["status"], "read");
    let steps: Vec<(String, Value, Value)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap().to_string(),
                s["recipientParticipantId"].clone(),
                s["recipientParticipantUserId"].clone(),
            )
        })
        .collect();
    let none = Value::Null;
    assert_eq!(
        steps,
        [
            ("accepted".into(), none.clone(), none.clone()),
            ("sent".into(), none.clone(), none.clone()),
            ("delivered".into(), json!("420777000001"), json!("CZ.1")),
            ("delivered".into(), none.clone(), json!("CZ.2")),
            ("delivered".into(), none.clone(), json!("CZ.3")),
            ("read".into(), json!("420777000001"), json!("CZ.1")),
        ],
        "{history}"
    );
}
