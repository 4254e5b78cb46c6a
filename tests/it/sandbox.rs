//! The sandbox account: a flow wired end to end on a gateway that has no Meta
//! App configured at all, with nothing reaching Meta.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::run;
use crate::delivery::wait_until;
use crate::support::admin_browser::Browser;
use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::{Gateway, Options, ADMIN_TOKEN};
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::standard_webhooks::assert_verified;

/// `wabridge simulate --sandbox-key`, `events` as fast as the gateway takes them.
pub fn simulate(gw: &Gateway, key: &str, events: &str) -> (i32, String, String) {
    let args = [
        "simulate",
        "--to",
        &gw.base,
        "--sandbox-key",
        key,
        "--events",
        events,
        "--rate",
        "0",
    ];
    run(&args, &[], &std::env::temp_dir())
}

fn create_sandbox(gw: &Gateway) -> (String, String, String) {
    let (status, body) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"sandbox": true, "name": "Try-out"})),
    );
    assert_eq!(status, 201, "{body}");
    let waba = body["sandbox"]["wabaId"].as_str().unwrap().to_string();
    let phone = body["sandbox"]["phoneNumberId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(body["wabaIds"], json!([waba]));
    (body["apiKey"].as_str().unwrap().to_string(), waba, phone)
}

#[test]
fn a_sandbox_takes_simulated_events_and_answers_its_own_sends_with_statuses() {
    let meta = FakeMeta::start();
    // No clientId, no clientSecret: Meta is not set up.
    let gw = Gateway::start(&meta);
    let (key, waba, phone) = create_sandbox(&gw);
    assert!(
        waba.starts_with("000") && phone.starts_with("000"),
        "{waba} {phone}"
    );
    let (status, me) = gw.request("GET", "/api/v1/me", Some(&key), None);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sandbox"]["phoneNumberId"], phone.as_str());
    let (status, wabas) = gw.request("GET", "/api/v1/business-accounts", Some(&key), None);
    assert_eq!(status, 200, "{wabas}");
    assert!(wabas.to_string().contains(&waba), "{wabas}");
    let numbers = format!("/api/v1/business-accounts/{waba}/phone-numbers");
    let (status, listed) = gw.request("GET", &numbers, Some(&key), None);
    assert_eq!(status, 200, "{listed}");
    assert!(listed.to_string().contains(&phone), "{listed}");

    let receiver = Receiver::start();
    let (_, messages_secret) = gw.add_listener(&key, &waba, "messages", &receiver.url("/m"));
    let (_, statuses_secret) = gw.add_listener(&key, &waba, "statuses", &receiver.url("/s"));
    // Marked as the sandbox's in the API's answers.
    let (status, listeners) = gw.request("GET", "/api/v1/listeners", Some(&key), None);
    assert_eq!(status, 200, "{listeners}");
    let listeners = listeners["listeners"].as_array().unwrap().clone();
    assert_eq!(listeners.len(), 2, "{listeners:?}");
    assert!(
        listeners.iter().all(|l| l["sandbox"] == true),
        "{listeners:?}"
    );

    // `wabridge simulate` with the sandbox's key: no Meta App secret.
    let (code, out, err) = simulate(&gw, &key, "text");
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("1× HTTP 200"), "{out}");
    let got = receiver.wait_for(1, Duration::from_secs(10));
    assert_verified(&got, &messages_secret);
    let event = got[0].json();
    assert_eq!(event["type"], "whatsapp.message.received", "{event}");
    assert_eq!(event["sandbox"], true, "{event}");
    assert_eq!(event["data"]["wabaId"], waba.as_str());
    assert_eq!(event["data"]["phoneNumberId"], phone.as_str());

    // A send is answered by wabridge, then reported sent, delivered and read.
    let (status, sent) = gw.request(
        "POST",
        &format!("/api/v1/phone-numbers/{phone}/messages"),
        Some(&key),
        Some(&json!({"to": "+420 777 000 111", "type": "text", "text": {"body": "Hello"}})),
    );
    assert_eq!(status, 200, "{sent}");
    let message_id = sent["messageId"].as_str().unwrap().to_string();
    assert!(message_id.starts_with("wamid.SANDBOX"), "{sent}");
    assert_eq!(sent["waId"], "420777000111", "{sent}");
    assert_eq!(sent["sandbox"], true, "{sent}");
    let statuses: Vec<Value> = wait_until(Duration::from_secs(10), "three statuses", || {
        let s: Vec<Value> = receiver
            .delivered()
            .into_iter()
            .filter(|r| r.path == "/s")
            .map(|r| r.json())
            .collect();
        (s.len() >= 3).then_some(s)
    });
    let seen: Vec<(&str, &str)> = statuses
        .iter()
        .map(|e| {
            assert_eq!(e["sandbox"], true, "{e}");
            (
                e["data"]["id"].as_str().unwrap(),
                e["data"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (message_id.as_str(), "sent"),
            (message_id.as_str(), "delivered"),
            (message_id.as_str(), "read")
        ]
    );
    let delivered: Vec<_> = receiver
        .delivered()
        .into_iter()
        .filter(|r| r.path == "/s")
        .collect();
    assert_verified(&delivered, &statuses_secret);
    let (status, history) = gw.request(
        "GET",
        &format!("/api/v1/messages/{message_id}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["status"], "read", "{history}");
    assert_eq!(history["sandbox"], true, "{history}");

    // And in the backoffice: its events, listeners and messages carry the pill.
    let mut admin = Browser::new(&gw);
    assert_eq!(admin.login(ADMIN_TOKEN).status, 303);
    let pill = r#"<span class="pill warn sandbox""#;
    let timeline = format!("/admin/messages/{}", message_id.replace('.', "%2E"));
    for page in [
        "/admin/events",
        "/admin/listeners",
        "/admin/messages?q=420777000111",
        timeline.as_str(),
    ] {
        let got = admin.get(page);
        assert_eq!(got.status, 200, "{page}: {}", got.body);
        assert!(
            got.body.contains(pill),
            "{page} has no sandbox pill: {}",
            got.body
        );
    }

    // Its templates are Meta's hello_world; Meta's other surfaces say why not.
    let templates = format!("/api/v1/business-accounts/{waba}/templates");
    let (status, listed) = gw.request("GET", &templates, Some(&key), None);
    assert_eq!(status, 200, "{listed}");
    assert!(listed.to_string().contains("hello_world"), "{listed}");
    let profile = format!("/api/v1/phone-numbers/{phone}/business-profile");
    let (status, refused) = gw.request("GET", &profile, Some(&key), None);
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "sandbox", "{refused}");
    // Its calling is off, and no call is made up.
    let settings = format!("/api/v1/phone-numbers/{phone}/call-settings");
    let (status, calling) = gw.request("GET", &settings, Some(&key), None);
    assert_eq!(status, 200, "{calling}");
    assert_eq!(calling["calling"]["status"], "DISABLED", "{calling}");
    let connect = json!({"action": "connect", "to": "+15550100001",
        "session": {"sdp_type": "offer", "sdp": "v=0\r\ns=-\r\n"}});
    let calls = format!("/api/v1/phone-numbers/{phone}/calls");
    let (status, refused) = gw.request("POST", &calls, Some(&key), Some(&connect));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "sandbox", "{refused}");

    // Events for a WABA that is not the sandbox's are refused.
    let other = payloads::single_text("100000000000001", "100000000000002", "wamid.X", "hi");
    let (status, refused) = gw.request(
        "POST",
        "/api/v1/sandbox/events",
        Some(&key),
        Some(&serde_json::from_slice(&other).unwrap()),
    );
    assert_eq!(status, 403, "{refused}");
    // Nor may its events name another number, or another WABA inside a change.
    let foreign_number = payloads::single_text(&waba, "100000000000301", "wamid.Y", "hi");
    let foreign_waba = json!({"object": "whatsapp_business_account", "entry": [{"id": waba,
        "changes": [{"field": "message_template_status_update", "value": {
            "event": "APPROVED", "message_template_id": 1, "message_template_name": "x",
            "message_template_language": "en_US", "waba_info": {"waba_id": "100000000000001"}}}]}]});
    for body in [
        serde_json::from_slice(&foreign_number).unwrap(),
        foreign_waba,
    ] {
        let (status, refused) =
            gw.request("POST", "/api/v1/sandbox/events", Some(&key), Some(&body));
        assert_eq!(status, 403, "{body}: {refused}");
    }
    // Nor a body whose items would each copy one large field into their
    // Meta-format bodies: refused before anything is stored.
    let statuses: Vec<_> = (0..40)
        .map(|i| payloads::status(&format!("wamid.C{i}"), "sent", "420777123456"))
        .collect();
    let mut value = payloads::statuses_value(&phone, statuses);
    value["pad"] = "x".repeat(1 << 20).into();
    let copies = json!({"object": "whatsapp_business_account",
        "entry": [{"id": waba, "changes": [{"field": "messages", "value": value}]}]});
    let (status, refused) = gw.request("POST", "/api/v1/sandbox/events", Some(&key), Some(&copies));
    assert_eq!(status, 400, "{refused}");
    let why = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(why.contains("Meta-format bodies"), "{refused}");

    assert!(
        meta.requests().is_empty(),
        "Meta was asked: {:?}",
        meta.requests()
    );
    let (status, account) = gw.admin("GET", "/api/v1/admin/accounts", None);
    assert_eq!(status, 200);
    assert_eq!(account["accounts"][0]["status"], "ok", "{account}");
}

#[test]
fn only_a_sandbox_key_posts_events_and_the_token_keeper_leaves_a_sandbox_alone() {
    let meta = FakeMeta::start();
    let gw = Gateway::start_with(
        &meta,
        Options {
            args: vec!["--token-check-interval".into(), "300ms".into()],
            ..Options::default()
        },
    );
    gw.configure();
    let (_, real_key) = gw.add_account(&meta, "token-real", &["111"]);
    let (sandbox_key, _, _) = create_sandbox(&gw);
    // Rounds of the token keeper after the sandbox was made: the real
    // token is checked with Meta, the sandbox's never.
    let checked = |token: &str| {
        meta.requests_to("GET", "/debug_token")
            .iter()
            .filter(|r| r.query_param("input_token").as_deref() == Some(token))
            .count()
    };
    let before = checked("token-real");
    wait_until(Duration::from_secs(10), "two token keeper rounds", || {
        (checked("token-real") >= before + 2).then_some(())
    });
    assert_eq!(checked("sandbox"), 0);
    let (_, me) = gw.request("GET", "/api/v1/me", Some(&sandbox_key), None);
    assert_eq!(me["status"], "ok", "{me}");
    let body = payloads::single_text("111", "PN1", "wamid.REAL", "hi");
    let (status, refused) = gw.request(
        "POST",
        "/api/v1/sandbox/events",
        Some(&real_key),
        Some(&serde_json::from_slice(&body).unwrap()),
    );
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"sandbox": true, "accessToken": "EAAG"})),
    );
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = gw.admin("POST", "/api/v1/admin/accounts", Some(&json!({})));
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sandbox"),
        "{refused}"
    );
}

#[test]
fn the_backoffice_makes_a_sandbox_and_marks_it() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let mut admin = Browser::new(&gw);
    assert_eq!(admin.login(ADMIN_TOKEN).status, 303);
    let csrf = admin.csrf();
    let made = admin.post("/admin/accounts/sandbox", &[("csrf", &csrf)]);
    assert_eq!(made.status, 303, "{}", made.body);
    let page = admin.get("/admin/accounts");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("wbk_"), "the key is shown once");
    assert!(page.body.contains(">Sandbox</span>"), "{}", page.body);
    assert!(
        page.body.contains("No Meta token: +1 555-01"),
        "{}",
        page.body
    );
    let again = admin.get("/admin/accounts");
    assert!(!again.body.contains("wbk_"), "the key is shown only once");
}
