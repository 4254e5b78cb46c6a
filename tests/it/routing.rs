//! Routing by WABA and kind (guide §1.6 "How the routing works"): every event goes
//! to every listener of its WABA and kind and to no other, signed per listener,
//! once, however often Meta redelivers it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::Gateway;
use crate::support::payloads::{self, fixture};
use crate::support::receiver::Receiver;
use crate::support::server::{Recorded, Reply};
use crate::support::standard_webhooks::assert_verified;

const WAIT: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_millis(500);

/// The WABAs and phone numbers of tests/fixtures/batch_two_wabas.json.
const WABA_A: &str = "111111111111111";
const WABA_B: &str = "222222222222222";
const WABA_C: &str = "333333333333333";
const PHONE_A: &str = "100000000000001";
const PHONE_B: &str = "200000000000001";

/// A flow webhook registered as a listener.
struct Flow {
    receiver: Receiver,
    secret: String,
}

fn flow(gw: &Gateway, key: &str, waba: &str, event: &str) -> Flow {
    let receiver = Receiver::start();
    let (_, secret) = gw.add_listener(key, waba, event, &receiver.url("/hook"));
    Flow { receiver, secret }
}

/// `(data.id, data.status or type)` of each delivery, sorted: what a flow saw.
fn seen(deliveries: &[Recorded]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = deliveries
        .iter()
        .map(|d| {
            let body = d.json();
            let id = body["data"]["id"].as_str().unwrap_or_default().to_string();
            let what = body["data"]["status"]
                .as_str()
                .or(body["data"]["text"]["body"].as_str())
                .unwrap_or_default()
                .to_string();
            (id, what)
        })
        .collect();
    out.sort();
    out
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn one_batch_for_two_wabas_reaches_exactly_the_listeners_of_each_event() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key_a) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let (_, key_b) = gw.add_account(&meta, "token-b", &[WABA_B, WABA_C]);
    // Two flows of customer A listen to its messages, one to its statuses.
    let a_messages_1 = flow(&gw, &key_a, WABA_A, "messages");
    let a_messages_2 = flow(&gw, &key_a, WABA_A, "messages");
    let a_statuses = flow(&gw, &key_a, WABA_A, "statuses");
    let b_messages = flow(&gw, &key_b, WABA_B, "messages");
    let b_statuses = flow(&gw, &key_b, WABA_B, "statuses");
    // Customer B's other WABA gets nothing from this batch.
    let c_messages = flow(&gw, &key_b, WABA_C, "messages");
    let c_statuses = flow(&gw, &key_b, WABA_C, "statuses");

    let (status, answer) = gw.post_webhook(&fixture("batch_two_wabas.json"));
    assert_eq!(status, 200, "{answer}");

    let a_msgs = [
        ("wamid.A-MSG-1", "first, for WABA A"),
        ("wamid.A-MSG-2", "second, for WABA A"),
    ];
    for f in [&a_messages_1, &a_messages_2] {
        let got = f.receiver.wait_for_exactly(2, WAIT, GRACE);
        assert_eq!(seen(&got), pairs(&a_msgs));
        assert_verified(&got, &f.secret);
        for d in &got {
            let data = d.json()["data"].clone();
            assert_eq!(
                (data["wabaId"].as_str(), data["phoneNumberId"].as_str()),
                (Some(WABA_A), Some(PHONE_A))
            );
        }
    }
    let got = a_statuses
        .receiver
        .wait_for_exactly(2, WAIT, Duration::ZERO);
    assert_eq!(
        seen(&got),
        pairs(&[("wamid.A-OUT-1", "delivered"), ("wamid.A-OUT-2", "read")])
    );
    assert_verified(&got, &a_statuses.secret);
    for d in &got {
        assert_eq!(d.json()["data"]["phoneNumberId"], "100000000000002");
    }

    let got = b_messages
        .receiver
        .wait_for_exactly(1, WAIT, Duration::ZERO);
    assert_eq!(seen(&got), pairs(&[("wamid.B-MSG-1", "only for WABA B")]));
    assert_eq!(got[0].json()["data"]["wabaId"], WABA_B);
    assert_eq!(got[0].json()["data"]["phoneNumberId"], PHONE_B);
    assert_verified(&got, &b_messages.secret);
    let got = b_statuses
        .receiver
        .wait_for_exactly(1, WAIT, Duration::ZERO);
    assert_eq!(seen(&got), pairs(&[("wamid.B-OUT-1", "sent")]));
    assert_verified(&got, &b_statuses.secret);

    c_messages
        .receiver
        .wait_for_exactly(0, WAIT, Duration::ZERO);
    c_statuses
        .receiver
        .wait_for_exactly(0, WAIT, Duration::ZERO);
}

#[test]
fn each_message_of_a_change_carries_its_own_senders_contact() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let f = flow(&gw, &key, WABA_A, "messages");
    let (status, _) = gw.post_webhook(&fixture("batch_two_wabas.json"));
    assert_eq!(status, 200);
    let got = f.receiver.wait_for_exactly(2, WAIT, GRACE);
    let senders: BTreeMap<String, (Value, Value, Value)> = got
        .iter()
        .map(|d| {
            let data = d.json()["data"].clone();
            (
                data["id"].as_str().unwrap().to_string(),
                (
                    data["waId"].clone(),
                    data["userId"].clone(),
                    data["name"].clone(),
                ),
            )
        })
        .collect();
    assert_eq!(
        senders["wamid.A-MSG-1"],
        (
            json!("420777123456"),
            json!("CZ.10592837461028374651"),
            json!("Jana")
        )
    );
    assert_eq!(
        senders["wamid.A-MSG-2"],
        (
            json!("420603999888"),
            json!("CZ.20481736250917364512"),
            json!("Tomáš")
        )
    );
}

#[test]
fn a_status_or_message_for_waba_b_never_reaches_a_listener_of_waba_a() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key_a) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let (_, key_b) = gw.add_account(&meta, "token-b", &[WABA_B]);
    let a_messages = flow(&gw, &key_a, WABA_A, "messages");
    let a_statuses = flow(&gw, &key_a, WABA_A, "statuses");
    let b_messages = flow(&gw, &key_b, WABA_B, "messages");
    let b_statuses = flow(&gw, &key_b, WABA_B, "statuses");

    // B's events, one POST each; even the phone number id looks like A's.
    let (status, _) = gw.post_webhook(&payloads::single_text(
        WABA_B,
        PHONE_A,
        "wamid.B-ONLY-1",
        "for B",
    ));
    assert_eq!(status, 200);
    let (status, _) = gw.post_webhook(&payloads::statuses(
        WABA_B,
        PHONE_A,
        vec![payloads::status(
            "wamid.B-OUT-9",
            "delivered",
            "420777123456",
        )],
    ));
    assert_eq!(status, 200);

    // B's flows got them (the pipeline works), and only then: A's got nothing.
    b_messages
        .receiver
        .wait_for_exactly(1, WAIT, Duration::ZERO);
    b_statuses.receiver.wait_for_exactly(1, WAIT, GRACE);
    a_messages
        .receiver
        .wait_for_exactly(0, WAIT, Duration::ZERO);
    a_statuses
        .receiver
        .wait_for_exactly(0, WAIT, Duration::ZERO);
}

#[test]
fn a_message_never_reaches_a_statuses_listener_nor_a_status_a_messages_listener() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let messages = flow(&gw, &key, WABA_A, "messages");
    let statuses = flow(&gw, &key, WABA_A, "statuses");
    let (status, _) = gw.post_webhook(&payloads::single_text(
        WABA_A,
        PHONE_A,
        "wamid.KIND-1",
        "hello",
    ));
    assert_eq!(status, 200);
    let (status, _) = gw.post_webhook(&payloads::statuses(
        WABA_A,
        PHONE_A,
        vec![payloads::status("wamid.KIND-OUT", "sent", "420777123456")],
    ));
    assert_eq!(status, 200);
    let got = messages.receiver.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(got[0].json()["type"], "whatsapp.message.received");
    let got = statuses.receiver.wait_for_exactly(1, WAIT, Duration::ZERO);
    assert_eq!(got[0].json()["type"], "whatsapp.message.status");
}

// ---------------------------------------------------------------------------
// Standard Webhooks signatures and webhook-id
// ---------------------------------------------------------------------------

#[test]
fn every_delivery_verifies_with_its_own_listeners_secret_only() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let one = flow(&gw, &key, WABA_A, "messages");
    let two = flow(&gw, &key, WABA_A, "messages");
    assert_ne!(one.secret, two.secret);
    assert!(one.secret.starts_with("whsec_"), "{}", one.secret);

    let (status, _) = gw.post_webhook(&payloads::single_text(
        WABA_A,
        PHONE_A,
        "wamid.SIG-1",
        "sign me",
    ));
    assert_eq!(status, 200);
    let got_one = one.receiver.wait_for_exactly(1, WAIT, GRACE);
    let got_two = two.receiver.wait_for_exactly(1, WAIT, Duration::ZERO);
    assert_verified(&got_one, &one.secret);
    assert_verified(&got_two, &two.secret);

    // The library really checks: another listener's secret does not verify.
    let crossed = std::panic::catch_unwind(|| assert_verified(&got_one, &two.secret));
    assert!(
        crossed.is_err(),
        "a delivery verified with another listener's secret"
    );

    // The same event, two deliveries: two webhook-ids, same body.
    let id_one = got_one[0].header("webhook-id").unwrap();
    let id_two = got_two[0].header("webhook-id").unwrap();
    assert!(!id_one.is_empty());
    assert_ne!(id_one, id_two, "two listeners share a webhook-id");
    assert_eq!(got_one[0].body, got_two[0].body);
}

#[test]
fn a_retried_delivery_keeps_its_webhook_id_and_each_event_has_its_own() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let f = flow(&gw, &key, WABA_A, "messages");
    // The flow tool is briefly down for the first attempt.
    f.receiver.script([Reply::status(503)]);

    let (status, _) = gw.post_webhook(&payloads::single_text(
        WABA_A,
        PHONE_A,
        "wamid.RETRY-1",
        "again",
    ));
    assert_eq!(status, 200);
    f.receiver.wait_for(1, WAIT);
    let attempts: Vec<Recorded> = f
        .receiver
        .all_requests()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(attempts.len(), 2, "one failed attempt, one retry");
    assert_eq!(
        attempts[0].header("webhook-id"),
        attempts[1].header("webhook-id")
    );
    assert_eq!(attempts[0].body, attempts[1].body);
    assert_verified(&attempts, &f.secret);

    let (status, _) = gw.post_webhook(&payloads::single_text(
        WABA_A,
        PHONE_A,
        "wamid.RETRY-2",
        "next",
    ));
    assert_eq!(status, 200);
    let got = f.receiver.wait_for(2, WAIT);
    assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"));
}

// ---------------------------------------------------------------------------
// Meta redelivers; flows see each event once
// ---------------------------------------------------------------------------

#[test]
fn the_same_body_posted_twice_by_meta_is_delivered_once() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let messages = flow(&gw, &key, WABA_A, "messages");
    let statuses = flow(&gw, &key, WABA_A, "statuses");
    let body = payloads::notification(&[(
        WABA_A,
        vec![
            payloads::messages_value(
                PHONE_A,
                vec![payloads::contact("420777123456", "Jana")],
                vec![payloads::text(
                    "wamid.TWICE-1",
                    "420777123456",
                    "once please",
                )],
            ),
            payloads::statuses_value(
                PHONE_A,
                vec![payloads::status(
                    "wamid.TWICE-OUT",
                    "delivered",
                    "420777123456",
                )],
            ),
        ],
    )]);
    for _ in 0..2 {
        let (status, answer) = gw.post_webhook(&body);
        assert_eq!(status, 200, "{answer}");
    }
    let got = messages.receiver.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(seen(&got), pairs(&[("wamid.TWICE-1", "once please")]));
    let got = statuses.receiver.wait_for_exactly(1, WAIT, Duration::ZERO);
    assert_eq!(seen(&got), pairs(&[("wamid.TWICE-OUT", "delivered")]));
}

#[test]
fn a_message_seen_before_is_not_delivered_again_inside_a_different_batch() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let f = flow(&gw, &key, WABA_A, "messages");
    let (status, _) = gw.post_webhook(&payloads::single_text(
        WABA_A,
        PHONE_A,
        "wamid.SEEN-1",
        "first",
    ));
    assert_eq!(status, 200);
    f.receiver.wait_for(1, WAIT);

    // Meta batches the old message with a new one (and a different sender profile).
    let batch = payloads::notification(&[(
        WABA_A,
        vec![payloads::messages_value(
            PHONE_A,
            vec![payloads::contact("420777123456", "Jana N.")],
            vec![
                payloads::text("wamid.SEEN-1", "420777123456", "first"),
                payloads::text("wamid.SEEN-2", "420777123456", "second"),
            ],
        )],
    )]);
    let (status, _) = gw.post_webhook(&batch);
    assert_eq!(status, 200);
    let got = f.receiver.wait_for_exactly(2, WAIT, GRACE);
    assert_eq!(
        seen(&got),
        pairs(&[("wamid.SEEN-1", "first"), ("wamid.SEEN-2", "second")])
    );
}

#[test]
fn a_new_status_of_a_known_message_is_delivered_but_a_repeated_one_is_not() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let f = flow(&gw, &key, WABA_A, "statuses");
    let id = "wamid.LIFE-1";
    let post = |statuses: Vec<Value>| {
        let (status, answer) = gw.post_webhook(&payloads::statuses(WABA_A, PHONE_A, statuses));
        assert_eq!(status, 200, "{answer}");
    };
    post(vec![payloads::status(id, "sent", "420777123456")]);
    post(vec![payloads::status(id, "delivered", "420777123456")]);
    // Redeliveries of both, batched with the news.
    post(vec![
        payloads::status(id, "sent", "420777123456"),
        payloads::status(id, "delivered", "420777123456"),
        payloads::status(id, "read", "420777123456"),
    ]);
    let got = f.receiver.wait_for_exactly(3, WAIT, GRACE);
    assert_eq!(
        seen(&got),
        pairs(&[(id, "delivered"), (id, "read"), (id, "sent")])
    );
}

#[test]
fn parallel_redeliveries_and_a_repeat_inside_one_body_are_delivered_once() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let f = flow(&gw, &key, WABA_A, "messages");
    // Meta lists the same message twice in one body, then redelivers the body
    // on several connections at once.
    let body = payloads::notification(&[(
        WABA_A,
        vec![payloads::messages_value(
            PHONE_A,
            vec![payloads::contact("420777123456", "Jana")],
            vec![
                payloads::text("wamid.PAR-1", "420777123456", "in parallel"),
                payloads::text("wamid.PAR-1", "420777123456", "in parallel"),
            ],
        )],
    )]);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let (status, answer) = gw.post_webhook(&body);
                assert_eq!(status, 200, "{answer}");
            });
        }
    });
    let got = f.receiver.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(seen(&got), pairs(&[("wamid.PAR-1", "in parallel")]));
}

#[test]
fn an_event_batched_with_another_users_contact_does_not_borrow_that_users_identity() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA_A]);
    let messages = flow(&gw, &key, WABA_A, "messages");
    let statuses = flow(&gw, &key, WABA_A, "statuses");
    // contacts[] describes Jana only. Meta omits contacts for a failed status and
    // for a number-change system message; here each shares its change with Jana's.
    let jana = json!({"profile": {"name": "Jana"}, "wa_id": "420777123456", "user_id": "CZ.10592837461028374651"});
    let body = payloads::notification(&[(
        WABA_A,
        vec![
            json!({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_A},
                "contacts": [jana.clone()],
                "statuses": [
                    {"id": "wamid.TO-JANA", "status": "delivered", "timestamp": "1764000010", "recipient_id": "420777123456"},
                    {"id": "wamid.TO-PETR", "status": "failed", "timestamp": "1764000011", "recipient_id": "420601234567",
                     "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable"}]}
                ]
            }),
            json!({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_A},
                "contacts": [jana],
                "messages": [
                    {"from": "420777123456", "id": "wamid.FROM-JANA", "timestamp": "1764000012", "type": "text", "text": {"body": "hi"}},
                    {"from": "420603999888", "id": "wamid.FROM-TOMAS", "timestamp": "1764000013", "type": "system",
                     "system": {"body": "User Tomáš changed from 420603999888 to 420603111000", "wa_id": "420603111000", "type": "user_changed_number"}}
                ]
            }),
        ],
    )]);
    let (status, answer) = gw.post_webhook(&body);
    assert_eq!(status, 200, "{answer}");

    let by_id = |got: Vec<Recorded>| -> BTreeMap<String, Value> {
        got.iter()
            .map(|d| {
                let data = d.json()["data"].clone();
                (data["id"].as_str().unwrap().to_string(), data)
            })
            .collect()
    };
    let got = by_id(statuses.receiver.wait_for_exactly(2, WAIT, GRACE));
    assert_eq!(
        got["wamid.TO-JANA"]["recipientUserId"],
        "CZ.10592837461028374651"
    );
    let petr = &got["wamid.TO-PETR"];
    assert_eq!(petr["recipientId"], "420601234567");
    assert!(
        petr.get("recipientUserId").is_none(),
        "Jana's BSUID given to Petr: {petr}"
    );

    let got = by_id(messages.receiver.wait_for_exactly(2, WAIT, Duration::ZERO));
    assert_eq!(got["wamid.FROM-JANA"]["name"], "Jana");
    let tomas = &got["wamid.FROM-TOMAS"];
    assert_eq!(tomas["waId"], "420603999888");
    for borrowed in ["userId", "name"] {
        assert!(
            tomas.get(borrowed).is_none(),
            "Jana's {borrowed} given to Tomáš: {tomas}"
        );
    }
}
