//! Outbound delivery as a flow tool sees it: failures are retried with the same
//! `webhook-id`, `Retry-After` and 410 are respected, a delivery that ran out of
//! retries is `failed` and can be redelivered.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;

use crate::cli::Serve;
use crate::support::fake_meta::{FakeMeta, APP_SECRET};
use crate::support::gateway::{client, Gateway, Options};
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::server::{Recorded, Reply};
use crate::support::standard_webhooks::assert_verified;

pub const WABA: &str = "111";
pub const PHONE: &str = "PN1";

/// A fake Meta and a configured gateway with one account on WABA 111; returns its API key.
pub fn setup(options: Options) -> (FakeMeta, Gateway, String) {
    let meta = FakeMeta::start();
    let gw = Gateway::start_with(&meta, options);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &[WABA]);
    (meta, gw, key)
}

/// A loopback address nothing listens on (bound, then released).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Polls `f` every 20 ms until it yields a value; panics naming `what` after `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET /api/v1/listeners/{id}/deliveries`, newest first.
pub fn deliveries(gw: &Gateway, key: &str, listener: &str) -> Vec<Value> {
    let (status, body) = gw.request(
        "GET",
        &format!("/api/v1/listeners/{listener}/deliveries?limit=1000"),
        Some(key),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// The one delivery of a listener that has exactly one.
fn only_delivery(gw: &Gateway, key: &str, listener: &str) -> Value {
    let list = deliveries(gw, key, listener);
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

/// Unix ms of an RFC 3339 field of the API.
fn ms(v: &Value) -> u64 {
    let t =
        humantime::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap();
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The WhatsApp message id of a delivered message event.
pub fn message_id(r: &Recorded) -> String {
    r.json()["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn webhook_id(r: &Recorded) -> String {
    r.header("webhook-id").unwrap_or_default().to_string()
}

/// Distinct message ids among successful deliveries.
pub fn delivered_ids(receiver: &Receiver) -> HashSet<String> {
    receiver.delivered().iter().map(message_id).collect()
}

/// POSTs a signed webhook without panicking on transport errors (the gateway may be dying).
pub fn try_post_webhook(agent: &ureq::Agent, base: &str, body: &[u8]) -> Result<u16, ureq::Error> {
    let resp = agent
        .post(format!("{base}/plugins/appmixer/whatsapp/events"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            crate::support::meta_signature(body, APP_SECRET),
        )
        .send(body)?;
    Ok(resp.status().as_u16())
}

fn post_text(gw: &Gateway, id: &str) {
    let (status, body) = gw.post_webhook(&payloads::single_text(WABA, PHONE, id, "hi"));
    assert_eq!(status, 200, "{body}");
}

/// Every request the receiver saw carries one and the same webhook-id.
fn assert_one_webhook_id(requests: &[(Recorded, u16)]) -> String {
    let ids: HashSet<String> = requests.iter().map(|(r, _)| webhook_id(r)).collect();
    assert_eq!(ids.len(), 1, "retries must keep the webhook-id: {ids:?}");
    let id = ids.into_iter().next().unwrap();
    assert!(id.starts_with("msg"), "{id}");
    id
}

#[test]
fn a_receiver_that_answers_500_gets_the_event_again_once_it_recovers() {
    let (_meta, gw, key) = setup(Options::default());
    let receiver = Receiver::start();
    receiver.script([Reply::status(500)]);
    let (listener, secret) = gw.add_listener(&key, WABA, "messages", &receiver.url("/hook"));

    post_text(&gw, "wamid.r500");
    receiver.wait_for(1, Duration::from_secs(10));

    let all = receiver.all_requests();
    let statuses: Vec<u16> = all.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [500, 200]);
    let id = assert_one_webhook_id(&all);
    assert_eq!(all[0].0.body, all[1].0.body, "a retry sends the same body");
    assert_verified(
        &all.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
        &secret,
    );

    let d = wait_until(Duration::from_secs(5), "the success to be recorded", || {
        Some(only_delivery(&gw, &key, &listener)).filter(|d| d["state"] == "succeeded")
    });
    assert_eq!(d["webhookId"], id.as_str());
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(d["lastStatusCode"], 200, "{d}");
}

#[test]
fn a_receiver_that_hangs_past_the_delivery_timeout_gets_the_event_again() {
    // The gateway gives up on an attempt after --delivery-timeout 3s.
    let (_meta, gw, key) = setup(Options::default());
    let receiver = Receiver::start();
    receiver.script([Reply::status(200).delayed(Duration::from_secs(6))]);
    let (listener, _) = gw.add_listener(&key, WABA, "messages", &receiver.url("/hook"));

    post_text(&gw, "wamid.hang");
    let d = wait_until(Duration::from_secs(8), "the timed-out attempt", || {
        Some(only_delivery(&gw, &key, &listener)).filter(|d| d["attempts"] == 1)
    });
    if d["state"] == "pending" {
        let error = d["lastError"].as_str().unwrap_or_default();
        assert!(error.contains("timeout"), "{d}");
    }
    wait_until(Duration::from_secs(8), "the retry", || {
        (receiver.all_requests().len() >= 2).then_some(())
    });
    assert_one_webhook_id(&receiver.all_requests());
    let d = wait_until(Duration::from_secs(5), "the success to be recorded", || {
        Some(only_delivery(&gw, &key, &listener)).filter(|d| d["state"] == "succeeded")
    });
    assert_eq!(d["attempts"], 2, "{d}");
}

#[test]
fn a_receiver_that_keeps_attempts_waiting_does_not_hold_up_another_listener() {
    // Four attempts in flight at most, each waiting 1 s at most, and
    // retries (about two minutes of them) enough to outlast the test.
    let (_meta, gw, key) = setup(Options {
        args: vec![
            "--delivery-concurrency".into(),
            "4".into(),
            "--delivery-timeout".into(),
            "1s".into(),
            "--retry-schedule".into(),
            ["1s,1s,2s", &vec!["5s"; 24].join(",")].join(","),
        ],
        ..Options::default()
    });
    let stuck = Receiver::start();
    stuck.script(vec![
        Reply::status(503).delayed(Duration::from_secs(60));
        1_000
    ]);
    let healthy = Receiver::start();
    let (stuck_id, _) = gw.add_listener(&key, WABA, "messages", &stuck.url("/hook"));
    gw.add_listener(&key, WABA, "messages", &healthy.url("/hook"));

    const EVENTS: usize = 40;
    let ids: HashSet<String> = (0..EVENTS).map(|i| format!("wamid.stuck.{i}")).collect();
    for id in &ids {
        post_text(&gw, id);
    }
    healthy.wait_for(EVENTS, Duration::from_secs(60));
    // Without the breaker the stuck receiver's attempts take every permit
    // in turn, and the other listener's events get theirs between them:
    // about as many attempts reach it as events the other one got.
    let made = stuck.all_requests().len();
    assert!(
        made <= 12,
        "{made} attempts were made to a receiver that takes none while the other listener waited"
    );
    assert_eq!(delivered_ids(&healthy), ids);
    wait_until(Duration::from_secs(10), "a delivery not sent", || {
        deliveries(&gw, &key, &stuck_id).into_iter().find(|d| {
            d["state"] == "pending"
                && d["lastError"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("not sent"))
        })
    });
    assert!(
        gw.logs("keeps attempts waiting without taking them"),
        "{}",
        gw.log()
    );
    assert!(gw.metric("wabridge_delivery_attempts_not_sent_total") > 0);

    // It takes its deliveries again: a probe finds out and every event arrives.
    stuck.unscript();
    wait_until(
        Duration::from_secs(60),
        "every event at the recovered receiver",
        || (delivered_ids(&stuck) == ids).then_some(()),
    );
    assert!(gw.logs("takes its attempts again"), "{}", gw.log());
}

#[test]
fn a_receiver_that_refuses_connections_gets_the_event_once_it_listens() {
    let (_meta, gw, key) = setup(Options::default());
    let addr = free_addr();
    let (listener, secret) =
        gw.add_listener(&key, WABA, "messages", &format!("http://{addr}/hook"));

    post_text(&gw, "wamid.refused");
    let d = wait_until(Duration::from_secs(5), "a refused attempt", || {
        Some(only_delivery(&gw, &key, &listener)).filter(|d| d["attempts"].as_u64() >= Some(1))
    });
    assert_eq!(d["state"], "pending", "{d}");
    assert!(
        d["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{d}"
    );

    let receiver = Receiver::start_at(addr);
    let got = receiver.wait_for(1, Duration::from_secs(10));
    assert_eq!(message_id(&got[0]), "wamid.refused");
    assert_eq!(webhook_id(&got[0]), d["webhookId"].as_str().unwrap());
    assert_verified(&got, &secret);
    let d = wait_until(Duration::from_secs(5), "the success to be recorded", || {
        Some(only_delivery(&gw, &key, &listener)).filter(|d| d["state"] == "succeeded")
    });
    assert!(d["attempts"].as_u64() >= Some(2), "{d}");
}

#[test]
fn retry_after_is_honoured_within_bounds() {
    let (_meta, gw, key) = setup(Options::default());
    // Asks for 2 s where the schedule says 1 s ± 20 %.
    let polite = Receiver::start();
    polite.script([Reply::status(503).with_header("retry-after", "2")]);
    // Asks for 11.5 days: capped at 24 h.
    let greedy = Receiver::start();
    greedy.script([Reply::status(429).with_header("retry-after", "999999")]);
    let (polite_id, _) = gw.add_listener(&key, WABA, "messages", &polite.url("/hook"));
    let (greedy_id, _) = gw.add_listener(&key, WABA, "messages", &greedy.url("/hook"));

    post_text(&gw, "wamid.ra");
    let first = wait_until(Duration::from_secs(5), "the first attempt", || {
        polite.all_requests().first().map(|(r, _)| r.at)
    });
    let d = wait_until(Duration::from_secs(5), "the 503 to be recorded", || {
        Some(only_delivery(&gw, &key, &polite_id)).filter(|d| d["attempts"] == 1)
    });
    assert_eq!(d["state"], "pending", "{d}");
    assert_eq!(d["lastStatusCode"], 503, "{d}");
    let gap = ms(&d["nextAttemptAt"]) - ms(&d["lastAttemptAt"]);
    assert!(
        (1_950..=2_050).contains(&gap),
        "retry planned {gap} ms later"
    );

    let second = wait_until(Duration::from_secs(6), "the retry", || {
        polite.all_requests().get(1).map(|(r, _)| r.at)
    });
    let waited = second - first;
    assert!(
        waited >= Duration::from_millis(1_900) && waited < Duration::from_secs(5),
        "the retry came {waited:?} after the 503 with Retry-After: 2"
    );
    polite.wait_for(1, Duration::from_secs(5));

    let d = wait_until(Duration::from_secs(5), "the 429 to be recorded", || {
        Some(only_delivery(&gw, &key, &greedy_id)).filter(|d| d["attempts"] == 1)
    });
    assert_eq!(d["state"], "pending", "{d}");
    let gap = ms(&d["nextAttemptAt"]) - ms(&d["lastAttemptAt"]);
    assert_eq!(gap, 24 * 3600 * 1000, "Retry-After beyond 24 h is capped");
    assert_eq!(greedy.all_requests().len(), 1);
}

#[test]
fn a_410_stops_the_listener_and_later_events_skip_it() {
    let (_meta, gw, key) = setup(Options::default());
    let gone = Receiver::start();
    gone.script([Reply::status(410)]);
    let healthy = Receiver::start();
    let (gone_id, _) = gw.add_listener(&key, WABA, "messages", &gone.url("/hook"));
    gw.add_listener(&key, WABA, "messages", &healthy.url("/hook"));

    post_text(&gw, "wamid.before410");
    healthy.wait_for(1, Duration::from_secs(5));
    let listener = wait_until(Duration::from_secs(5), "the listener to stop", || {
        let (status, l) = gw.request(
            "GET",
            &format!("/api/v1/listeners/{gone_id}"),
            Some(&key),
            None,
        );
        assert_eq!(status, 200, "{l}");
        l["stoppedReason"].is_string().then_some(l)
    });
    assert!(
        listener["stoppedReason"].as_str().unwrap().contains("410"),
        "{listener}"
    );
    let (_, list) = gw.request("GET", "/api/v1/listeners", Some(&key), None);
    let shown = list["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == gone_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(shown["stoppedReason"], listener["stoppedReason"]);
    let d = only_delivery(&gw, &key, &gone_id);
    assert_eq!(d["state"], "failed", "{d}");
    assert_eq!(d["lastStatusCode"], 410, "{d}");
    assert_eq!(d["attempts"], 1, "{d}");

    post_text(&gw, "wamid.after410");
    healthy.wait_for(2, Duration::from_secs(5));
    // Longer than the first retry of the schedule (1 s ± 20 %).
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(gone.all_requests().len(), 1, "a stopped listener got more");
    assert_eq!(deliveries(&gw, &key, &gone_id).len(), 1);
}

#[test]
fn a_delivery_that_exhausts_its_retries_is_failed_and_can_be_redelivered() {
    // Schedule 1s,1s,2s: four attempts, then failed.
    let (_meta, gw, key) = setup(Options::default());
    let receiver = Receiver::start();
    receiver.script(std::iter::repeat_n(Reply::status(500), 8));
    let (listener, secret) = gw.add_listener(&key, WABA, "messages", &receiver.url("/hook"));

    post_text(&gw, "wamid.fail.a");
    post_text(&gw, "wamid.fail.b");
    let failed = wait_until(Duration::from_secs(15), "both deliveries to fail", || {
        let list = deliveries(&gw, &key, &listener);
        (list.len() == 2 && list.iter().all(|d| d["state"] == "failed")).then_some(list)
    });
    for d in &failed {
        assert_eq!(d["attempts"], 4, "{d}");
        assert_eq!(d["lastStatusCode"], 500, "{d}");
        assert!(d["nextAttemptAt"].is_null(), "{d}");
    }
    let (_, listed) = gw.request(
        "GET",
        &format!("/api/v1/listeners/{listener}/deliveries?state=failed"),
        Some(&key),
        None,
    );
    assert_eq!(listed["deliveries"].as_array().unwrap().len(), 2);
    let tried = receiver.all_requests();
    assert_eq!(tried.len(), 8);
    assert!(receiver.delivered().is_empty());
    let webhook_id_of = |msg: &str| {
        let ids: HashSet<String> = tried
            .iter()
            .filter(|(r, _)| message_id(r) == msg)
            .map(|(r, _)| webhook_id(r))
            .collect();
        assert_eq!(ids.len(), 1, "{msg}: {ids:?}");
        ids.into_iter().next().unwrap()
    };
    let (id_a, id_b) = (webhook_id_of("wamid.fail.a"), webhook_id_of("wamid.fail.b"));
    let delivery_a = failed
        .iter()
        .find(|d| d["webhookId"] == id_a.as_str())
        .unwrap();

    // One by id.
    let (status, body) = gw.request(
        "POST",
        &format!(
            "/api/v1/listeners/{listener}/deliveries/{}/redeliver",
            delivery_a["id"]
        ),
        Some(&key),
        None,
    );
    assert_eq!(status, 202, "{body}");
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(message_id(&got[0]), "wamid.fail.a");
    assert_eq!(webhook_id(&got[0]), id_a);

    // Every failed one of the listener: only b is left.
    let (status, body) = gw.request(
        "POST",
        &format!("/api/v1/listeners/{listener}/redeliver-failed"),
        Some(&key),
        None,
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["redelivering"], 1, "{body}");
    let got = receiver.wait_for(2, Duration::from_secs(5));
    assert_eq!(message_id(&got[1]), "wamid.fail.b");
    assert_eq!(webhook_id(&got[1]), id_b);
    assert_verified(&got, &secret);

    wait_until(Duration::from_secs(5), "both to be succeeded", || {
        let list = deliveries(&gw, &key, &listener);
        list.iter().all(|d| d["state"] == "succeeded").then_some(())
    });
    assert_eq!(receiver.delivered().len(), 2, "redelivered more than once");
}

/// CONTRACT §1: the guard is applied again at each delivery, after resolution.
/// Arranged for real by registering while 127.0.0.0/8 is allowed, then running
/// the same data dir without --webhook-allow-net.
#[test]
fn a_listener_whose_target_is_no_longer_allowed_is_refused_at_delivery() {
    let (_meta, mut gw, key) = setup(Options::default());
    let receiver = Receiver::start();
    let (listener, _) = gw.add_listener(&key, WABA, "messages", &receiver.url("/hook"));
    gw.kill9();

    let data_dir = gw.data_dir().display().to_string();
    let strict = Serve::start(
        &[
            "serve",
            "--data-dir",
            &data_dir,
            "--listen",
            "127.0.0.1:0",
            "--no-tls",
            "--retry-schedule",
            "1s,1s,1s,1s,1s,1s,1s,1s",
        ],
        &[],
    );
    let agent = client();
    let body = payloads::single_text(WABA, PHONE, "wamid.guard", "hi");
    assert_eq!(try_post_webhook(&agent, &strict.base, &body).unwrap(), 200);
    let refused = wait_until(Duration::from_secs(5), "the guard's refusal", || {
        let mut resp = agent
            .get(format!(
                "{}/api/v1/listeners/{listener}/deliveries",
                strict.base
            ))
            .header("authorization", format!("Bearer {key}"))
            .call()
            .unwrap();
        let v: Value = resp.body_mut().read_json().unwrap();
        let d = v["deliveries"][0].clone();
        (d["attempts"].as_u64() >= Some(1)).then_some(d)
    });
    assert!(
        refused["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("URL guard"),
        "{refused}"
    );
    assert_eq!(refused["state"], "pending", "{refused}");
    assert!(
        receiver.all_requests().is_empty(),
        "a refused target must not be contacted"
    );
    drop(strict);

    // With the network allowed again, the pending delivery goes out.
    gw.restart();
    let got = receiver.wait_for(1, Duration::from_secs(10));
    assert_eq!(message_id(&got[0]), "wamid.guard");
    assert_eq!(webhook_id(&got[0]), refused["webhookId"].as_str().unwrap());
}

#[test]
fn a_test_event_reaches_only_its_listener_signed_and_marked_as_a_test() {
    let (meta, gw, key) = setup(Options::default());
    let (a, b, st) = (Receiver::start(), Receiver::start(), Receiver::start());
    let (id_a, secret_a) = gw.add_listener(&key, WABA, "messages", &a.url("/a"));
    gw.add_listener(&key, WABA, "messages", &b.url("/b"));
    let (id_st, secret_st) = gw.add_listener(&key, WABA, "statuses", &st.url("/st"));

    let (status, d) = gw.request(
        "POST",
        &format!("/api/v1/listeners/{id_a}/test"),
        Some(&key),
        None,
    );
    assert_eq!(status, 202, "{d}");
    let got = a.wait_for(1, Duration::from_secs(10));
    assert_verified(&got, &secret_a);
    assert_eq!(got[0].header("webhook-id"), d["webhookId"].as_str());
    let body = got[0].json();
    assert_eq!(body["type"], "whatsapp.message.received");
    assert_eq!(body["test"], true);
    assert_eq!(body["data"]["wabaId"], WABA);
    assert_eq!(body["data"]["type"], "text");
    // Another listener of the same WABA and kind gets nothing.
    b.wait_for_exactly(0, Duration::from_millis(10), Duration::from_millis(500));
    let listed = wait_until(Duration::from_secs(5), "the delivery to succeed", || {
        Some(only_delivery(&gw, &key, &id_a)).filter(|d| d["state"] == "succeeded")
    });
    assert_eq!(listed["id"], d["id"]);

    let (status, _) = gw.request(
        "POST",
        &format!("/api/v1/listeners/{id_st}/test"),
        Some(&key),
        None,
    );
    assert_eq!(status, 202);
    let got = st.wait_for(1, Duration::from_secs(10));
    assert_verified(&got, &secret_st);
    let status_body = got[0].json();
    assert_eq!(status_body["type"], "whatsapp.message.status");
    assert_eq!(status_body["data"]["status"], "delivered");
    // A test records nothing about real messages.
    let message = status_body["data"]["id"].as_str().unwrap();
    let (status, _) = gw.request(
        "GET",
        &format!("/api/v1/messages/{message}"),
        Some(&key),
        None,
    );
    assert_eq!(status, 404);

    // Someone else's key cannot test this listener.
    let (_, other) = gw.add_account(&meta, "token-b", &["222"]);
    let (status, _) = gw.request(
        "POST",
        &format!("/api/v1/listeners/{id_a}/test"),
        Some(&other),
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(a.all_requests().len(), 1);
}
