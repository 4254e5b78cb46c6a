use super::*;

const OFFER: &str = "v=0\r\no=- 6314352886888624490 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n";

fn refused(request: Value) -> String {
    match prepare(request) {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn a_connect_calls_a_phone_number_with_the_sdp_offer_untouched() {
    let call = prepare(json!({
        "action": "connect",
        "to": "+420 777 123 456",
        "session": {"sdp_type": "offer", "sdp": OFFER},
        "biz_opaque_callback_data": "ticket-42"
    }))
    .unwrap();
    assert_eq!(call.action, CallAction::Connect);
    assert_eq!(call.call_id, None);
    assert_eq!(
        call.recipient,
        Some(Recipient::Phone("420777123456".into()))
    );
    assert_eq!(
        call.body,
        json!({
            "messaging_product": "whatsapp",
            "action": "connect",
            "to": "420777123456",
            "session": {"sdp_type": "offer", "sdp": OFFER},
            "biz_opaque_callback_data": "ticket-42"
        })
    );
    assert_eq!(call.body["session"]["sdp"].as_str().unwrap(), OFFER);
}

#[test]
fn a_connect_may_call_a_business_scoped_user_id() {
    let call = prepare(json!({
        "action": "connect",
        "recipient": "US.13491208655302741918",
        "session": {"sdp_type": "offer", "sdp": OFFER}
    }))
    .unwrap();
    assert_eq!(call.body["recipient"], "US.13491208655302741918");
    assert!(call.body.get("to").is_none());
}

#[test]
fn answering_carries_the_sdp_answer_and_ending_carries_none() {
    for action in ["pre_accept", "accept", "PRE_ACCEPT"] {
        let call = prepare(json!({
            "messaging_product": "whatsapp",
            "action": action,
            "call_id": "wacid.HBgLMTIxNTU1MDgyMDUVAgASGCA",
            "session": {"sdp_type": "ANSWER", "sdp": OFFER}
        }))
        .unwrap();
        assert_eq!(call.body["action"], action.to_ascii_lowercase());
        assert_eq!(call.body["call_id"], "wacid.HBgLMTIxNTU1MDgyMDUVAgASGCA");
        assert_eq!(
            call.body["session"],
            json!({"sdp_type": "answer", "sdp": OFFER})
        );
    }
    for action in ["reject", "terminate"] {
        let call = prepare(json!({"action": action, "call_id": "wacid.X"})).unwrap();
        assert_eq!(
            call.body,
            json!({"messaging_product": "whatsapp", "action": action, "call_id": "wacid.X"})
        );
    }
}

#[test]
fn each_wrong_call_request_is_refused_with_its_field() {
    let session = |t: &str, sdp: Value| json!({"sdp_type": t, "sdp": sdp});
    for (request, field) in [
        (json!("connect"), "body"),
        (json!({"call_id": "wacid.X"}), "action"),
        (json!({"action": "hangup", "call_id": "wacid.X"}), "action"),
        (json!({"action": 1, "call_id": "wacid.X"}), "action"),
        (json!({"action": "reject", "callId": "wacid.X"}), "callId"),
        (
            json!({"action": "reject", "messaging_product": "sms", "call_id": "wacid.X"}),
            "messaging_product",
        ),
        (json!({"action": "reject"}), "call_id"),
        (json!({"action": "terminate", "call_id": ""}), "call_id"),
        (
            json!({"action": "terminate", "call_id": "wacid X"}),
            "call_id",
        ),
        (json!({"action": "terminate", "call_id": 7}), "call_id"),
        (
            json!({"action": "terminate", "call_id": "wacid.X", "to": "+420777123456"}),
            "to",
        ),
        (
            json!({"action": "reject", "call_id": "wacid.X", "session": session("answer", json!(OFFER))}),
            "session",
        ),
        (
            json!({"action": "connect", "session": session("offer", json!(OFFER))}),
            "to",
        ),
        (
            json!({"action": "connect", "to": "777-abc", "session": session("offer", json!(OFFER))}),
            "to",
        ),
        (
            json!({"action": "connect", "recipient": "13491208655302741918", "session": session("offer", json!(OFFER))}),
            "recipient",
        ),
        (
            json!({"action": "connect", "to": "+420777123456", "recipient": "US.1", "session": session("offer", json!(OFFER))}),
            "to",
        ),
        (
            json!({"action": "connect", "to": "+420777123456", "call_id": "wacid.X", "session": session("offer", json!(OFFER))}),
            "call_id",
        ),
        (
            json!({"action": "connect", "to": "+420777123456"}),
            "session",
        ),
        (
            json!({"action": "connect", "to": "+420777123456", "session": OFFER}),
            "session",
        ),
        (
            json!({"action": "connect", "to": "+420777123456", "session": session("answer", json!(OFFER))}),
            "session.sdp_type",
        ),
        (
            json!({"action": "accept", "call_id": "wacid.X", "session": session("offer", json!(OFFER))}),
            "session.sdp_type",
        ),
        (
            json!({"action": "accept", "call_id": "wacid.X", "session": {"sdp_type": "answer"}}),
            "session.sdp",
        ),
        (
            json!({"action": "accept", "call_id": "wacid.X", "session": session("answer", json!(["v=0"]))}),
            "session.sdp",
        ),
        (
            json!({"action": "accept", "call_id": "wacid.X", "session": session("answer", json!(""))}),
            "session.sdp",
        ),
        (
            json!({"action": "accept", "call_id": "wacid.X", "session": session("answer", json!("hello"))}),
            "session.sdp",
        ),
        (
            json!({"action": "accept", "call_id": "wacid.X", "session": session("answer", json!(format!("v=0\r\n{}", "a".repeat(SDP_MAX_BYTES))))}),
            "session.sdp",
        ),
        (
            json!({"action": "accept", "call_id": "wacid.X", "session": {"sdp_type": "answer", "sdp": OFFER, "type": "answer"}}),
            "session.type",
        ),
        (
            json!({"action": "accept", "call_id": "wacid.X", "session": session("answer", json!(OFFER)), "biz_opaque_callback_data": "x".repeat(513)}),
            "biz_opaque_callback_data",
        ),
    ] {
        assert_eq!(refused(request.clone()), field, "{request}");
    }
}

#[test]
fn the_answer_names_the_call_meta_started_or_acted_on() {
    let connect = prepare(json!({"action": "connect", "to": "+420777123456", "session": {"sdp_type": "offer", "sdp": OFFER}})).unwrap();
    let answer = connect.answer(
        "3000",
        &json!({"messaging_product": "whatsapp", "calls": [{"id": "wacid.NEW"}]}),
    );
    assert_eq!(
        answer,
        json!({"phoneNumberId": "3000", "action": "connect", "callId": "wacid.NEW", "success": true})
    );
    let reject = prepare(json!({"action": "reject", "call_id": "wacid.X"})).unwrap();
    let answer = reject.answer(
        "3000",
        &json!({"messaging_product": "whatsapp", "success": true}),
    );
    assert_eq!(answer["callId"], "wacid.X");
    assert_eq!(answer["success"], true);
}

#[test]
fn a_permission_is_asked_by_phone_number_or_bsuid_and_read_for_a_flow() {
    let (who, query) = permission_query("+420 777 123 456").unwrap();
    assert_eq!(query, ("user_wa_id", "420777123456".to_string()));
    assert_eq!(who.key(), "420777123456");
    let (_, query) = permission_query("US.13491208655302741918").unwrap();
    assert_eq!(query, ("recipient", "US.13491208655302741918".to_string()));
    assert!(permission_query("jana").is_err());

    let meta = json!({
        "messaging_product": "whatsapp",
        "permission": {"status": "temporary", "expiration_time": 1745343479},
        "actions": [
            {"action_name": "send_call_permission_request", "can_perform_action": false,
             "limits": [{"time_period": "PT24H", "max_allowed": 1, "current_usage": 1}]},
            {"action_name": "start_call", "can_perform_action": true,
             "limits": [{"time_period": "PT24H", "max_allowed": 5, "current_usage": 2}]}
        ]
    });
    let view = permission_view("3000", &who, &meta);
    assert_eq!(view["permission"]["status"], "temporary");
    assert_eq!(view["actions"], meta["actions"]);
    assert_eq!(view["canStartCall"], true);
    assert_eq!(view["canRequestPermission"], false);
    assert_eq!(view["user"], "420777123456");
    let unknown = permission_view("3000", &who, &json!({}));
    assert_eq!(unknown["canStartCall"], false);
}
