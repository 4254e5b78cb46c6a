use serde_json::{json, Value};

use super::*;
use crate::domain::events::{CALL, MESSAGE_ECHO, MESSAGE_RECEIVED, MESSAGE_STANDBY};
use crate::domain::model::InboundEvent;

fn body(changes: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": changes}]})).unwrap()
}

fn data(e: &InboundEvent) -> Value {
    serde_json::from_slice::<Value>(&e.body).unwrap()["data"].clone()
}

#[test]
fn a_text_message_carries_its_sender() {
    let b = body(json!([{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Jana"}, "wa_id": "420777123456", "user_id": "CZ.1"}],
        "messages": [{"from": "420777123456", "id": "wamid.A", "timestamp": "1700000000", "type": "text", "text": {"body": "hi"}}]
    }}]));
    let events = parse(&b, 0).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.event_type.as_str(),
            e.waba_id.as_str(),
            e.phone_number_id.as_str()
        ),
        (MESSAGE_RECEIVED, "WABA1", "PN1")
    );
    assert_eq!(e.dedupe_key, "m:wamid.A");
    let envelope: Value = serde_json::from_slice(&e.body).unwrap();
    assert_eq!(envelope["type"], "whatsapp.message.received");
    assert_eq!(envelope["timestamp"], "2023-11-14T22:13:20Z");
    let d = data(e);
    assert_eq!(d["text"]["body"], "hi");
    assert_eq!(d["waId"], "420777123456");
    assert_eq!(d["userId"], "CZ.1");
    assert_eq!(d["name"], "Jana");
    assert_eq!(d["wabaId"], "WABA1");
    let sender = e.sender.as_ref().unwrap();
    assert_eq!(sender.ids, ["420777123456", "CZ.1"]);
    assert_eq!(sender.at_ms, 1_700_000_000_000);
    assert_eq!(e.media_id, None);
}

#[test]
fn media_ids_are_kept_and_system_notices_open_no_window() {
    let b = body(json!([{"field": "messages", "value": {
        "metadata": {"phone_number_id": "PN1"},
        "messages": [
            {"from": "420777123456", "id": "wamid.I", "timestamp": "1700000000", "type": "image", "image": {"id": "MEDIA1", "mime_type": "image/jpeg"}},
            {"from": "420777123456", "id": "wamid.S", "timestamp": "1700000000", "type": "system", "system": {"body": "changed number"}}
        ]
    }}]));
    let events = parse(&b, 0).unwrap();
    assert_eq!(events[0].media_id.as_deref(), Some("MEDIA1"));
    assert!(events[0].sender.is_some());
    assert_eq!(events[1].sender, None);
}

#[test]
fn a_bsuid_only_sender_is_identified_by_user_id() {
    let b = body(json!([{"field": "messages", "value": {
        "metadata": {"phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Bob", "username": "@bob"}, "user_id": "US.13491208655302741918"}],
        "messages": [{"from_user_id": "US.13491208655302741918", "id": "wamid.B", "timestamp": "1700000000", "type": "text", "text": {"body": "hey"}}]
    }}]));
    let d = data(&parse(&b, 0).unwrap()[0]);
    assert_eq!(d["userId"], "US.13491208655302741918");
    assert_eq!(d["username"], "@bob");
    assert!(d.get("waId").is_none());
}

#[test]
fn statuses_are_keyed_by_id_and_status() {
    let b = body(json!([{"field": "messages", "value": {
        "metadata": {"phone_number_id": "PN1"},
        "statuses": [
            {"id": "wamid.S", "status": "sent", "timestamp": "1700000001", "recipient_id": "420777123456",
             "conversation": {"id": "c1"}, "pricing": {"billable": true}},
            {"id": "wamid.S", "status": "failed", "timestamp": "1700000002", "recipient_id": "420777123456",
             "errors": [{"code": 131047, "title": "Re-engagement message"}]}
        ]
    }}]));
    let events = parse(&b, 5).unwrap();
    assert_eq!(events[0].dedupe_key, "s:wamid.S:sent");
    assert_eq!(events[1].dedupe_key, "s:wamid.S:failed");
    let d = data(&events[1]);
    assert_eq!(d["recipientId"], "420777123456");
    assert_eq!(d["errors"][0]["code"], 131047);
    assert_eq!(events[1].status.as_ref().unwrap().status, "failed");
    assert_eq!(events[0].status.as_ref().unwrap().received_at, 5);
}

#[test]
fn a_big_batch_finds_each_users_contact_like_a_small_one() {
    let n = 50;
    let contacts: Vec<Value> = (0..n)
        .map(|i| json!({"profile": {"name": format!("User {i}")}, "wa_id": format!("4207{i:05}"), "user_id": format!("CZ.{i}")}))
        .collect();
    let messages: Vec<Value> = (0..n)
        .rev()
        .map(|i| {
            // Half name the user by phone, half by BSUID only.
            let mut m = json!({"id": format!("wamid.{i}"), "timestamp": "1764000000", "type": "text", "text": {"body": "hi"}});
            if i % 2 == 0 {
                m["from"] = json!(format!("4207{i:05}"));
            } else {
                m["from_user_id"] = json!(format!("CZ.{i}"));
            }
            m
        })
        .collect();
    let events = parse(
        &body(json!([{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": "PN1"},
            "contacts": contacts, "messages": messages}}])),
        0,
    )
    .unwrap();
    assert_eq!(events.len(), n);
    for e in &events {
        let d = data(e);
        let i: usize = d["id"].as_str().unwrap()[6..].parse().unwrap();
        assert_eq!(d["name"], format!("User {i}"), "{d}");
        assert_eq!(d["userId"], format!("CZ.{i}"), "{d}");
    }
}

#[test]
fn an_unlisted_user_does_not_borrow_the_only_contact() {
    let b = body(json!([{"field": "messages", "value": {
        "metadata": {"phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Jana"}, "wa_id": "420777123456", "user_id": "CZ.1"}],
        "statuses": [
            {"id": "wamid.F", "status": "failed", "timestamp": "1700000002", "recipient_id": "420601234567"}
        ]
    }}]));
    let d = data(&parse(&b, 0).unwrap()[0]);
    assert_eq!(d["recipientId"], "420601234567");
    assert!(d.get("recipientUserId").is_none(), "{d}");
}

#[test]
fn garbage_is_unusable_not_a_panic() {
    assert!(parse(b"not json", 0).is_err());
    assert!(parse(br#"{"object":"page","entry":[]}"#, 0).is_err());
    assert!(parse(br#"{"object":"whatsapp_business_account"}"#, 0).is_err());
    assert!(parse(
        br#"{"object":"whatsapp_business_account","entry":[{"changes":[]}]}"#,
        0
    )
    .is_err());
    let no_phone = body(json!([{"value": {"messages": [{"id": "x"}]}}]));
    assert!(parse(&no_phone, 0).is_err());
}

#[test]
fn every_field_becomes_events_and_an_unknown_one_keeps_its_name() {
    let b = body(json!([
        {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 7}},
        {"field": "calls", "value": {"metadata": {"phone_number_id": "PN1"},
            "contacts": [{"wa_id": "420777123456", "profile": {"name": "Jana"}}],
            "calls": [{"id": "wacid.1", "from": "420777123456", "event": "connect", "timestamp": "1700000000"}]}},
        {"field": "standby", "value": {"metadata": {"phone_number_id": "PN1"}, "standby": {
            "messages": [{"from": "420777123456", "id": "wamid.SB", "timestamp": "1700000000", "type": "text", "text": {"body": "ai"}}]}}},
        {"field": "smb_message_echoes", "value": {"metadata": {"phone_number_id": "PN1"},
            "message_echoes": [{"from": "15550001111", "to": "420777123456", "id": "wamid.E", "timestamp": "1700000000", "type": "text", "text": {"body": "from the app"}}]}},
        {"field": "brand_new_field", "value": {"anything": [1, 2]}}
    ]));
    let events = parse(&b, 0).unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "whatsapp.template.status",
            CALL,
            MESSAGE_STANDBY,
            MESSAGE_ECHO,
            "whatsapp.brand_new_field"
        ]
    );
    let template = data(&events[0]);
    assert_eq!(
        (template["event"].as_str(), template["field"].as_str()),
        (Some("APPROVED"), Some("message_template_status_update"))
    );
    assert!(template.get("phoneNumberId").is_none());
    assert_eq!(events[0].phone_number_id, "");
    let call = data(&events[1]);
    assert_eq!(
        (call["waId"].as_str(), call["name"].as_str()),
        (Some("420777123456"), Some("Jana"))
    );
    assert_eq!(events[1].dedupe_key, "c:wacid.1:connect");
    assert_eq!(events[2].dedupe_key, "sb:wamid.SB");
    assert!(
        events[2].sender.is_some(),
        "a user who writes opens the window, AI or not"
    );
    let echo = data(&events[3]);
    assert_eq!(
        (echo["direction"].as_str(), echo["waId"].as_str()),
        (Some("outbound"), Some("420777123456"))
    );
    assert_eq!(events[3].sender, None, "an echo opens no window");
    assert_eq!(data(&events[4])["anything"], json!([1, 2]));
    // Meta's redelivery of the same body gives the same keys.
    let again = parse(&b, 99).unwrap();
    let keys = |v: &[InboundEvent]| v.iter().map(|e| e.dedupe_key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&events), keys(&again));
}

#[test]
fn a_business_level_change_goes_to_the_wabas_of_that_business() {
    let b = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
        {"id": "BIZ1", "time": 1700000000, "changes": [{"field": "account_update", "value": {"event": "PARTNER_ADDED"}}]}
    ]})).unwrap();
    let wabas = |id: &str| {
        if id == "BIZ1" {
            vec!["W1".to_string(), "W2".to_string()]
        } else {
            vec![]
        }
    };
    let events = parse_with(&b, 0, &wabas).unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.waba_id.as_str())
            .collect::<Vec<_>>(),
        ["W1", "W2"]
    );
    assert_ne!(events[0].dedupe_key, events[1].dedupe_key);
    let d = data(&events[1]);
    assert_eq!(
        (d["wabaId"].as_str(), d["businessId"].as_str()),
        (Some("W2"), Some("BIZ1"))
    );
    let envelope: Value = serde_json::from_slice(&events[0].body).unwrap();
    assert_eq!(envelope["timestamp"], "2023-11-14T22:13:20Z");
    // Unknown business: kept under the id Meta sent.
    assert_eq!(parse(&b, 0).unwrap()[0].waba_id, "BIZ1");
}

#[test]
fn a_partner_added_links_its_waba_to_the_owning_business() {
    let b = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
        {"id": "PARTNER", "changes": [{"field": "account_update", "value": {"event": "PARTNER_ADDED",
            "waba_info": {"waba_id": "W7", "owner_business_id": 42}}}]}
    ]})).unwrap();
    let events = parse(&b, 0).unwrap();
    assert_eq!(events[0].waba_id, "W7");
    assert_eq!(business_link(&events[0]), Some(("42".into(), "W7".into())));
    let other = body(
        json!([{"field": "account_alerts", "value": {"waba_info": {"waba_id": "W7", "owner_business_id": "42"}}}]),
    );
    assert_eq!(business_link(&parse(&other, 0).unwrap()[0]), None);
}

#[test]
fn mm_lite_terms_signed_names_its_waba() {
    let b = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
        {"id": "BIZ", "changes": [{"field": "account_update", "value": {"event": "MM_LITE_TERMS_SIGNED",
            "waba_info": {"waba_id": "W7", "owner_business_id": "42"}}}]}
    ]})).unwrap();
    let events = parse(&b, 0).unwrap();
    assert_eq!(
        marketing_terms_signed(&events[0]),
        Some(("W7".into(), "MM_LITE_TERMS_SIGNED".into()))
    );
    let other = body(
        json!([{"field": "account_update", "value": {"event": "PARTNER_ADDED",
        "waba_info": {"waba_id": "W7", "owner_business_id": "42"}}}]),
    );
    assert_eq!(marketing_terms_signed(&parse(&other, 0).unwrap()[0]), None);
    let alert =
        body(json!([{"field": "account_alerts", "value": {"event": "MM_LITE_TERMS_SIGNED"}}]));
    assert_eq!(marketing_terms_signed(&parse(&alert, 0).unwrap()[0]), None);
}

#[test]
fn a_meta_body_holds_only_its_own_item_and_user() {
    let b = body(json!([{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
        "contacts": [{"wa_id": "1", "user_id": "US.1"}, {"wa_id": "2", "user_id": "US.2"}],
        "messages": [
            {"from": "1", "id": "wamid.1", "timestamp": "1700000000", "type": "text", "text": {"body": "a"}},
            {"from": "2", "id": "wamid.2", "timestamp": "1700000000", "type": "text", "text": {"body": "b"}}
        ]
    }}]));
    let events = parse(&b, 0).unwrap();
    let meta: Value = serde_json::from_slice(&meta_body(&events[1]).unwrap()).unwrap();
    assert_eq!(meta["object"], "whatsapp_business_account");
    assert_eq!(meta["entry"][0]["id"], "WABA1");
    let change = &meta["entry"][0]["changes"][0];
    assert_eq!(change["field"], "messages");
    assert_eq!(
        change["value"]["messages"],
        json!([{"from": "2", "id": "wamid.2", "timestamp": "1700000000", "type": "text", "text": {"body": "b"}}])
    );
    assert_eq!(
        change["value"]["contacts"],
        json!([{"wa_id": "2", "user_id": "US.2"}])
    );
    assert_eq!(change["value"]["metadata"]["phone_number_id"], "PN1");
}

#[test]
fn group_statuses_keep_their_group_and_participant() {
    let b = body(json!([{"field": "messages", "value": {
        "metadata": {"phone_number_id": "PN1"},
        "statuses": [{"id": "wamid.G", "status": "read", "timestamp": "1700000001", "recipient_id": "G1",
            "recipient_type": "group", "recipient_participant_id": "420777123456", "group_id": "G1",
            "biz_opaque_callback_data": "order-7", "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"}}]
    }}]));
    let e = &parse(&b, 0).unwrap()[0];
    let d = data(e);
    assert_eq!(d["recipient_type"], "group");
    assert_eq!(d["recipient_participant_id"], "420777123456");
    assert_eq!(d["groupId"], "G1");
    assert_eq!(d["bizOpaqueCallbackData"], "order-7");
    assert_eq!(d["pricing"]["pricing_model"], "PMP");
    let r = e.status.as_ref().unwrap();
    assert_eq!(
        (r.group_id.as_deref(), r.biz_opaque_callback_data.as_deref()),
        (Some("G1"), Some("order-7"))
    );
    assert_eq!(e.facet.as_deref(), Some("read"));
}

#[test]
fn each_group_member_keeps_a_receipt_even_when_known_by_bsuid_only() {
    let member = |user: &str, phone: Option<&str>| {
        let mut s = json!({"id": "wamid.G", "status": "delivered", "timestamp": "1700000001",
            "recipient_id": "G1", "recipient_type": "group", "recipient_participant_user_id": user});
        if let Some(p) = phone {
            s["recipient_participant_id"] = json!(p);
        }
        s
    };
    let b = body(json!([{"field": "messages", "value": {
        "metadata": {"phone_number_id": "PN1"},
        "contacts": [{"wa_id": "420777123456", "user_id": "CZ.1", "parent_user_id": "CZ.P1"}],
        "statuses": [member("CZ.1", Some("420777123456")), member("CZ.2", None), member("CZ.3", None)]
    }}]));
    let events = parse(&b, 0).unwrap();
    let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "s:wamid.G:delivered:420777123456",
            "s:wamid.G:delivered:CZ.2",
            "s:wamid.G:delivered:CZ.3"
        ]
    );
    let first = events[0].status.as_ref().unwrap();
    // The group is the recipient; the contact is the participant's, not the recipient's.
    assert_eq!(first.recipient_id.as_deref(), Some("G1"));
    assert_eq!(first.recipient_user_id, None);
    assert_eq!(first.recipient_participant_user_id.as_deref(), Some("CZ.1"));
    assert_eq!(data(&events[0])["recipient_participant_user_id"], "CZ.1");
    assert!(data(&events[0]).get("recipientParentUserId").is_none());
}

#[test]
fn a_message_written_in_a_group_opens_the_groups_window_not_its_authors() {
    let b = body(json!([{"field": "messages", "value": {
        "metadata": {"phone_number_id": "PN1"},
        "contacts": [{"wa_id": "420777123456", "user_id": "CZ.1"}],
        "messages": [{"from": "420777123456", "group_id": "G1", "id": "wamid.IN", "timestamp": "1700000000",
            "type": "text", "text": {"body": "hi all"}}]
    }}]));
    let e = &parse(&b, 0).unwrap()[0];
    assert_eq!(e.sender.as_ref().unwrap().ids, ["G1"]);
    assert_eq!(data(e)["groupId"], "G1");
}

fn statuses_beside(pad: usize, count: usize) -> Vec<u8> {
    let statuses: Vec<Value> = (0..count)
        .map(|i| json!({"id": format!("wamid.{i}"), "status": "sent", "timestamp": "1700000000", "recipient_id": "420777123456"}))
        .collect();
    body(json!([{"field": "messages", "value": {
        "metadata": {"phone_number_id": "PN1"},
        "pad": "x".repeat(pad),
        "statuses": statuses
    }}]))
}

#[test]
fn items_that_would_each_copy_a_large_shared_field_are_unusable() {
    // 300 statuses beside 64 KiB: each Meta body would copy it, 18.8 MiB in all.
    let Unusable(why) = parse(&statuses_beside(64 << 10, 300), 0).unwrap_err();
    assert!(
        why.starts_with("its 300 events would copy over 18 MiB of the fields they share"),
        "{why}"
    );
    // 200 of them copy 12.5 MiB, under the bound: taken.
    assert_eq!(
        parse(&statuses_beside(64 << 10, 200), 0).unwrap().len(),
        200
    );
}

#[test]
fn a_large_batch_of_ordinary_items_is_taken() {
    // A thousand messages, each with its own contact: each copies only its own.
    let (messages, contacts): (Vec<Value>, Vec<Value>) = (0..1000)
        .map(|i| {
            let wa_id = format!("420777{i:06}");
            (
                json!({"from": wa_id, "id": format!("wamid.{i}"), "timestamp": "1700000000", "type": "text", "text": {"body": "hi"}}),
                json!({"profile": {"name": "Jana"}, "wa_id": wa_id}),
            )
        })
        .unzip();
    let b = body(json!([{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PN1"},
        "contacts": contacts,
        "messages": messages
    }}]));
    assert_eq!(parse(&b, 0).unwrap().len(), 1000);
}

#[test]
fn standby_messages_at_the_top_of_the_value_are_not_wrapped_with_a_copy_of_it() {
    let messages: Vec<Value> = (0..3)
        .map(|i| json!({"from": "420777123456", "id": format!("wamid.SB{i}"), "timestamp": "1700000000", "type": "text", "text": {"body": "ai"}}))
        .collect();
    let b = body(json!([{"field": "standby", "value": {
        "metadata": {"phone_number_id": "PN1"}, "messages": messages}}]));
    let events = parse(&b, 0).unwrap();
    assert_eq!(events.len(), 3);
    let meta: Value = serde_json::from_slice(&meta_body(&events[1]).unwrap()).unwrap();
    let value = &meta["entry"][0]["changes"][0]["value"];
    assert_eq!(value["messages"], json!([messages[1]]), "{value}");
    assert!(value.get("standby").is_none(), "{value}");
}
