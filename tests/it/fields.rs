//! Every field Meta sends (CONTRACT §5.1): each change of a batch mixing all
//! of Meta's fields and two WABAs reaches exactly the listeners whose
//! subscription and filters match, once, signed; standby never reaches a
//! `messages` listener; Meta-format listeners get Meta's own envelope, which
//! pywa accepts; call events overtake a backlog.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::{client, Gateway, Options};
use crate::support::payloads::{self, fixture_json};
use crate::support::receiver::Receiver;
use crate::support::server::Recorded;
use crate::support::standard_webhooks::assert_verified;

const WAIT: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_millis(700);

/// The WABA and number of tests/fixtures/fields, and a second WABA.
const WABA_A: &str = "102290129340398";
const PHONE_A: &str = "106540352242922";
const WABA_B: &str = "102290129340399";

/// Each fixture and the outbound types it must become, in Meta's words (docs/events.md).
pub const EXPECTED: &[(&str, &[&str])] = &[
    ("account_alerts", &["whatsapp.account.alert"]),
    ("account_review_update", &["whatsapp.account.review"]),
    (
        "account_settings_update",
        &["whatsapp.account_settings_update"],
    ),
    ("account_update", &["whatsapp.account.update"]),
    ("automatic_events", &["whatsapp.automatic_event"]),
    (
        "business_capability_update",
        &["whatsapp.business.capability"],
    ),
    (
        "business_username_updates",
        &["whatsapp.business_username_updates"],
    ),
    (
        "calls",
        &[
            "whatsapp.call",
            "whatsapp.call",
            "whatsapp.call.status",
            "whatsapp.call.status",
        ],
    ),
    ("flows", &["whatsapp.flow"]),
    ("group_lifecycle_update", &["whatsapp.group.lifecycle"]),
    (
        "group_participants_update",
        &[
            "whatsapp.group.participants",
            "whatsapp.group.participants",
            "whatsapp.group.participants",
        ],
    ),
    ("group_settings_update", &["whatsapp.group.settings"]),
    ("group_status_update", &["whatsapp.group.status"]),
    ("history", &["whatsapp.history"]),
    (
        "message_template_components_update",
        &["whatsapp.template.components"],
    ),
    (
        "message_template_quality_update",
        &["whatsapp.template.quality"],
    ),
    (
        "message_template_status_update",
        &["whatsapp.template.status"],
    ),
    ("messages_errors", &["whatsapp.message.error"]),
    (
        "messages_group",
        &[
            "whatsapp.message.received",
            "whatsapp.message.status",
            "whatsapp.message.status",
            "whatsapp.message.status",
        ],
    ),
    ("messaging_handovers", &["whatsapp.handover"]),
    (
        "payment_configuration_update",
        &["whatsapp.payment.configuration"],
    ),
    ("phone_number_name_update", &["whatsapp.phone_number.name"]),
    (
        "phone_number_quality_update",
        &["whatsapp.phone_number.quality"],
    ),
    ("security", &["whatsapp.security"]),
    (
        "smb_app_state_sync",
        &["whatsapp.contact.sync", "whatsapp.contact.sync"],
    ),
    ("smb_message_echoes", &["whatsapp.message.echo"]),
    ("standby", &["whatsapp.message.standby"]),
    ("template_category_update", &["whatsapp.template.category"]),
    ("unknown_field", &["whatsapp.some_future_field"]),
    ("user_id_update", &["whatsapp.user_id_update"]),
    ("user_preferences", &["whatsapp.user.preference"]),
];

/// One body holding every entry of every fixture above, plus two of WABA B.
fn every_field_batch() -> Vec<u8> {
    let mut entries: Vec<Value> = Vec::new();
    for (name, _) in EXPECTED {
        let body = fixture_json(&format!("fields/{name}.json"));
        entries.extend(body["entry"].as_array().unwrap().iter().cloned());
    }
    for name in ["message_template_status_update", "user_preferences"] {
        let mut body = fixture_json(&format!("fields/{name}.json"));
        body["entry"][0]["id"] = json!(WABA_B);
        entries.push(body["entry"][0].clone());
    }
    serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": entries})).unwrap()
}

pub fn counts<'a>(types: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in types {
        *out.entry(t.to_string()).or_default() += 1;
    }
    out
}

pub fn types_of(deliveries: &[Recorded]) -> BTreeMap<String, usize> {
    let bodies: Vec<Value> = deliveries.iter().map(Recorded::json).collect();
    counts(bodies.iter().map(|b| b["type"].as_str().unwrap()))
}

struct World {
    meta: FakeMeta,
    gw: Gateway,
    key_a: String,
    key_b: String,
}

impl World {
    fn start() -> World {
        World::start_with(Options::default())
    }

    fn start_with(options: Options) -> World {
        let meta = FakeMeta::start();
        let gw = Gateway::start_with(&meta, options);
        gw.configure();
        let (_, key_a) = gw.add_account(&meta, "token-fields-a", &[WABA_A]);
        let (_, key_b) = gw.add_account(&meta, "token-fields-b", &[WABA_B]);
        World {
            meta,
            gw,
            key_a,
            key_b,
        }
    }

    /// Registers a listener with `request` (wabaId and url are added); returns (id, secret).
    fn listen(
        &self,
        key: &str,
        waba: &str,
        request: Value,
        receiver: &Receiver,
    ) -> (String, String) {
        let mut body = request;
        body["wabaId"] = json!(waba);
        body["url"] = json!(receiver.url("/hook"));
        let (status, answer) = self
            .gw
            .request("POST", "/api/v1/listeners", Some(key), Some(&body));
        assert_eq!(status, 201, "{answer}");
        (
            answer["id"].as_str().unwrap().into(),
            answer["secret"].as_str().unwrap().into(),
        )
    }
}

#[test]
fn every_field_reaches_exactly_the_listeners_that_asked_for_it_once() {
    let w = World::start();
    let all_a = Receiver::start();
    let (_, all_secret) = w.listen(&w.key_a, WABA_A, json!({"events": ["*"]}), &all_a);
    let messages_a = Receiver::start();
    w.listen(&w.key_a, WABA_A, json!({"event": "messages"}), &messages_a);
    let standby_a = Receiver::start();
    w.listen(
        &w.key_a,
        WABA_A,
        json!({"events": ["whatsapp.message.standby"]}),
        &standby_a,
    );
    let templates_a = Receiver::start();
    w.listen(
        &w.key_a,
        WABA_A,
        json!({"events": ["whatsapp.template.*", "whatsapp.template.status"]}),
        &templates_a,
    );
    let reads_a = Receiver::start();
    w.listen(
        &w.key_a,
        WABA_A,
        json!({"events": ["whatsapp.message.status"], "filters": {"statuses": ["read"]}}),
        &reads_a,
    );
    let other_number_a = Receiver::start();
    w.listen(
        &w.key_a,
        WABA_A,
        json!({"events": ["*"], "filters": {"phoneNumberIds": ["999"]}}),
        &other_number_a,
    );
    let all_b = Receiver::start();
    w.listen(&w.key_b, WABA_B, json!({"events": ["whatsapp.*"]}), &all_b);

    let batch = every_field_batch();
    let (status, answer) = w.gw.post_webhook(&batch);
    assert_eq!(status, 200, "{answer}");

    let expected_a = counts(EXPECTED.iter().flat_map(|(_, types)| types.iter().copied()));
    let total_a: usize = expected_a.values().sum();
    let got = all_a.wait_for_exactly(total_a, WAIT, GRACE);
    assert_eq!(types_of(&got), expected_a);
    assert_verified(&got, &all_secret);
    for d in &got {
        let body = d.json();
        let data = &body["data"];
        assert_eq!(data["wabaId"], WABA_A, "{body}");
        assert!(
            data["field"].is_string(),
            "every event names its field: {body}"
        );
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let unknown = got
        .iter()
        .map(Recorded::json)
        .find(|b| b["type"] == "whatsapp.some_future_field")
        .unwrap();
    let raw = fixture_json("fields/unknown_field.json");
    for (k, v) in raw["entry"][0]["changes"][0]["value"].as_object().unwrap() {
        assert_eq!(
            &unknown["data"][k], v,
            "an unknown field's value is delivered unchanged"
        );
    }

    let received = messages_a.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(received[0].json()["type"], "whatsapp.message.received");
    assert!(received[0].json()["data"]["group_id"].is_string());
    let standby = standby_a.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(
        standby[0].json()["data"]["text"]["body"],
        "Can I change the pickup time to 5pm?"
    );
    let templates = templates_a.wait_for_exactly(4, WAIT, GRACE);
    assert_eq!(
        types_of(&templates),
        counts([
            "whatsapp.template.components",
            "whatsapp.template.quality",
            "whatsapp.template.status",
            "whatsapp.template.category"
        ])
    );
    let reads = reads_a.wait_for_exactly(1, WAIT, GRACE);
    assert_eq!(reads[0].json()["data"]["status"], "read");
    assert_eq!(reads[0].json()["data"]["recipient_type"], "group");
    let elsewhere = other_number_a.wait_for(1, WAIT);
    std::thread::sleep(GRACE);
    for d in other_number_a.delivered() {
        assert!(
            d.json()["data"].get("phoneNumberId").is_none(),
            "{}",
            d.json()
        );
    }
    assert!(elsewhere
        .iter()
        .any(|d| d.json()["type"] == "whatsapp.template.status"));
    let b = all_b.wait_for_exactly(2, WAIT, GRACE);
    assert_eq!(
        types_of(&b),
        counts(["whatsapp.template.status", "whatsapp.user.preference"])
    );
    assert!(b.iter().all(|d| d.json()["data"]["wabaId"] == WABA_B));

    // Meta redelivers the whole batch: nothing goes out twice.
    let (status, answer) = w.gw.post_webhook(&batch);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 0, "{answer}");
    std::thread::sleep(GRACE);
    assert_eq!(all_a.delivered().len(), total_a);
    assert_eq!(all_b.delivered().len(), 2);
    let _ = &w.meta;
}

#[test]
fn a_partner_added_at_business_level_reaches_the_waba_it_names() {
    let w = World::start();
    let account = Receiver::start();
    w.listen(
        &w.key_a,
        WABA_A,
        json!({"events": ["whatsapp.account.*"]}),
        &account,
    );
    let (status, _) =
        w.gw.post_webhook(&payloads::fixture("fields/account_update_business.json"));
    assert_eq!(status, 200);
    let got = account.wait_for_exactly(1, WAIT, GRACE);
    let data = &got[0].json()["data"];
    assert_eq!(data["event"], "PARTNER_ADDED");
    assert_eq!(data["wabaId"], WABA_A);
    assert_eq!(data["businessId"], "506914307656634");
    // Now the WABA's own business is known: its business-level events arrive too.
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "730183462950175", "time": 1796213400,
        "changes": [{"field": "account_update", "value": {"event": "MM_LITE_TERMS_SIGNED"}}]}]});
    let (status, _) = w.gw.post_webhook(&serde_json::to_vec(&body).unwrap());
    assert_eq!(status, 200);
    let got = account.wait_for_exactly(2, WAIT, GRACE);
    assert_eq!(got[1].json()["data"]["event"], "MM_LITE_TERMS_SIGNED");
    assert_eq!(got[1].json()["data"]["wabaId"], WABA_A);
}

#[test]
fn subscriptions_are_checked_and_shown_back() {
    let w = World::start();
    let r = Receiver::start();
    let (id, _) = w.listen(
        &w.key_a,
        WABA_A,
        json!({"events": ["whatsapp.call", "whatsapp.template.*"], "filters": {"phoneNumberIds": [PHONE_A], "statuses": ["FAILED"]}, "format": "meta"}),
        &r,
    );
    let (status, list) =
        w.gw.request("GET", "/api/v1/listeners", Some(&w.key_a), None);
    assert_eq!(status, 200);
    let l = list["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(l["events"], json!(["whatsapp.call", "whatsapp.template.*"]));
    assert_eq!(
        l["filters"],
        json!({"phoneNumberIds": [PHONE_A], "statuses": ["failed"]})
    );
    assert_eq!(l["format"], "meta");
    let (_, legacy) = w.gw.request(
        "POST",
        "/api/v1/listeners",
        Some(&w.key_a),
        Some(&json!({"wabaId": WABA_A, "event": "statuses", "url": r.url("/s")})),
    );
    assert_eq!(
        (legacy["event"].as_str(), legacy["events"].clone()),
        (Some("statuses"), json!(["whatsapp.message.status"]))
    );
    assert_eq!(legacy["format"], "standard");
    for (bad, field) in [
        (json!({"events": ["whatsapp.nope"]}), "events"),
        (json!({"events": []}), "events"),
        (json!({"event": "messages", "events": ["*"]}), "events"),
        (
            json!({"events": ["*"], "filters": {"colour": ["red"]}}),
            "filters.colour",
        ),
        (
            json!({"events": ["*"], "filters": {"statuses": ["lost"]}}),
            "filters.statuses",
        ),
        (json!({"events": ["*"], "format": "xml"}), "format"),
    ] {
        let mut body = bad.clone();
        body["wabaId"] = json!(WABA_A);
        body["url"] = json!(r.url("/x"));
        let (status, answer) =
            w.gw.request("POST", "/api/v1/listeners", Some(&w.key_a), Some(&body));
        assert_eq!(status, 400, "{bad} → {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{bad} → {answer}"
        );
    }
}

/// `python3 tests/support/pywa_receiver.py`: pywa's own webhook handling.
struct Pywa {
    child: Child,
    base: String,
}

impl Pywa {
    fn start(app_secret: &str) -> Pywa {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/pywa_receiver.py"
        );
        let child = Command::new("python3")
            .args([script, port_file.to_str().unwrap(), app_secret])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with pywa (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                if let Ok(p) = p.trim().parse::<u16>() {
                    break p;
                }
            }
            assert!(Instant::now() < deadline, "pywa_receiver.py did not start");
            std::thread::sleep(Duration::from_millis(100));
        };
        Pywa {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn received(&self) -> Vec<Value> {
        let mut resp = client()
            .get(format!("{}/received", self.base))
            .call()
            .unwrap();
        let text = resp.body_mut().read_to_string().unwrap();
        serde_json::from_str::<Vec<Value>>(&text).unwrap()
    }

    fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pywa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_meta_format_listener_is_understood_by_pywa_as_metas_own_webhook() {
    let w = World::start();
    // The secret is only known once the listener exists: register it at a
    // placeholder first, then point pywa's receiver at the same secret.
    let placeholder = Receiver::start();
    let (_, secret) = w.listen(
        &w.key_a,
        WABA_A,
        json!({"events": ["whatsapp.message.received", "whatsapp.message.status", "whatsapp.template.status", "whatsapp.call", "whatsapp.user.preference"], "format": "meta"}),
        &placeholder,
    );
    let text = payloads::single_text(WABA_A, PHONE_A, "wamid.PYWA-TEXT-1", "hello pywa");
    let template = payloads::fixture("fields/message_template_status_update.json");
    let calls = payloads::fixture("fields/calls.json");
    let prefs = payloads::fixture("fields/user_preferences.json");
    // Meta's statuses name their recipient in `contacts` too.
    let mut status_value = payloads::statuses_value(
        PHONE_A,
        vec![payloads::status(
            "wamid.PYWA-OUT-1",
            "delivered",
            "16315551181",
        )],
    );
    status_value["contacts"] =
        json!([{"wa_id": "16315551181", "user_id": "US.20260401000000000001"}]);
    let status = payloads::notification(&[(WABA_A, vec![status_value])]);
    for body in [&text, &template, &calls, &prefs, &status] {
        assert_eq!(w.gw.post_webhook(body).0, 200);
    }
    let got = placeholder.wait_for_exactly(6, WAIT, GRACE);
    for d in &got {
        assert!(
            d.header("webhook-signature").is_none(),
            "Meta-format deliveries are signed as Meta signs"
        );
        assert!(d
            .header("x-hub-signature-256")
            .unwrap()
            .starts_with("sha256="));
        let body = d.json();
        assert_eq!(body["object"], "whatsapp_business_account");
        assert_eq!(body["entry"][0]["id"], WABA_A);
        assert_eq!(body["entry"][0]["changes"].as_array().unwrap().len(), 1);
    }

    let pywa = Pywa::start(&secret);
    let agent = client();
    for d in &got {
        let sig = d.header("x-hub-signature-256").unwrap();
        let resp = agent
            .post(format!("{}/hook", pywa.base))
            .header("x-hub-signature-256", sig)
            .header("content-type", "application/json")
            .send(&d.body[..])
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    // A body signed with another secret is refused by pywa.
    let forged = agent
        .post(format!("{}/hook", pywa.base))
        .header(
            "x-hub-signature-256",
            &crate::support::meta_signature(&got[0].body, "whsec_other"),
        )
        .config()
        .http_status_as_error(false)
        .build()
        .send(&got[0].body[..])
        .unwrap();
    assert!(forged.status().as_u16() >= 400);
    let parsed = pywa.wait_for(got.len());
    let classes = counts(parsed.iter().map(|p| p["class"].as_str().unwrap()));
    assert_eq!(classes.get("Message"), Some(&1), "{parsed:?}");
    assert_eq!(classes.get("MessageStatus"), Some(&1), "{parsed:?}");
    assert_eq!(classes.get("TemplateStatusUpdate"), Some(&1), "{parsed:?}");
    assert_eq!(
        classes.get("UserMarketingPreferences"),
        Some(&1),
        "{parsed:?}"
    );
    assert!(
        classes.contains_key("CallConnect") && classes.contains_key("CallTerminate"),
        "{parsed:?}"
    );
    assert!(
        !classes.contains_key("RawUpdate"),
        "pywa could not type some deliveries: {parsed:?}"
    );
}

/// A receiver that accepts connections and never answers.
fn hanging_receiver() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(2_000).flatten() {
            let mut s = stream;
            let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
            let _ = s.read(&mut [0u8; 1]);
            held.push(s);
        }
    });
    (url, handle)
}

#[test]
fn a_call_event_overtakes_thousands_of_deliveries_stuck_on_a_slow_receiver() {
    let w = World::start_with(Options {
        args: vec!["--delivery-concurrency".into(), "8".into()],
        ..Options::default()
    });
    let (slow_url, _slow) = hanging_receiver();
    let (status, body) = w.gw.request(
        "POST",
        "/api/v1/listeners",
        Some(&w.key_a),
        Some(&json!({"wabaId": WABA_A, "event": "messages", "url": slow_url})),
    );
    assert_eq!(status, 201, "{body}");
    let calls = Receiver::start();
    w.listen(
        &w.key_a,
        WABA_A,
        json!({"events": ["whatsapp.call", "whatsapp.call.*"]}),
        &calls,
    );
    for batch in 0..50 {
        let messages: Vec<Value> = (0..100)
            .map(|i| {
                payloads::text(
                    &format!("wamid.BACKLOG-{batch}-{i}"),
                    "16315551181",
                    "queued",
                )
            })
            .collect();
        let value = payloads::messages_value(
            PHONE_A,
            vec![payloads::contact("16315551181", "Ines")],
            messages,
        );
        let (status, _) =
            w.gw.post_webhook(&payloads::notification(&[(WABA_A, vec![value])]));
        assert_eq!(status, 200);
    }
    let (status, _) = w.gw.post_webhook(&payloads::fixture("fields/calls.json"));
    assert_eq!(status, 200);
    // The slow receiver holds every ordinary permit for the 15 s delivery
    // timeout; the calls arrive well before any of those attempts ends.
    let got = calls.wait_for(4, WAIT);
    assert_eq!(
        types_of(&got),
        counts([
            "whatsapp.call",
            "whatsapp.call",
            "whatsapp.call.status",
            "whatsapp.call.status"
        ])
    );
    let (_, deliveries) =
        w.gw.request("GET", "/api/v1/listeners", Some(&w.key_a), None);
    let slow_id = deliveries["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["event"] == "messages")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, slow) = w.gw.request(
        "GET",
        &format!("/api/v1/listeners/{slow_id}/deliveries?state=succeeded"),
        Some(&w.key_a),
        None,
    );
    assert_eq!(
        slow["deliveries"].as_array().unwrap().len(),
        0,
        "no backlog delivery finished before the calls"
    );
    let (_, pending) = w.gw.request(
        "GET",
        &format!("/api/v1/listeners/{slow_id}/deliveries?state=pending&limit=500"),
        Some(&w.key_a),
        None,
    );
    assert_eq!(
        pending["deliveries"].as_array().unwrap().len(),
        500,
        "the backlog is still there"
    );
}
