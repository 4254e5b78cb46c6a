//! `wabridge simulate`: Meta-format events of every kind, signed so that the
//! gateway's own check accepts them, reach the flow's listeners.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::run;
use crate::fields::{types_of, EXPECTED};
use crate::support::fake_meta::{FakeMeta, APP_SECRET};
use crate::support::gateway::Gateway;
use crate::support::receiver::Receiver;
use crate::support::standard_webhooks::assert_verified;

fn simulate(gw: &Gateway, secret: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "simulate",
        "--to",
        &gw.base,
        "--secret",
        secret,
        "--waba",
        "111",
        "--phone-number-id",
        "PN1",
        "--from",
        "420777123456",
    ];
    args.extend_from_slice(extra);
    run(&args, &[], &std::env::temp_dir())
}

#[test]
fn simulated_events_of_every_kind_pass_the_signature_check_and_reach_the_listeners() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-sim", &["111"]);
    let receiver = Receiver::start();
    let (_, messages_secret) = gw.add_listener(&key, "111", "messages", &receiver.url("/m"));
    let (_, statuses_secret) = gw.add_listener(&key, "111", "statuses", &receiver.url("/s"));

    let (code, out, err) = simulate(&gw, APP_SECRET, &["--rate", "0"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("16× HTTP 200"), "{out}");

    let got = receiver.wait_for(16, Duration::from_secs(15));
    let (messages, statuses): (Vec<_>, Vec<_>) = got.into_iter().partition(|r| r.path == "/m");
    assert_eq!((messages.len(), statuses.len()), (12, 4));
    assert_verified(&messages, &messages_secret);
    assert_verified(&statuses, &statuses_secret);

    let types: BTreeSet<String> = messages
        .iter()
        .map(|r| {
            let data = &r.json()["data"];
            assert_eq!(data["wabaId"], "111");
            assert_eq!(data["phoneNumberId"], "PN1");
            assert_eq!(data["waId"], "420777123456");
            let t = data["type"].as_str().unwrap().to_string();
            match t.as_str() {
                "interactive" => format!(
                    "interactive/{}",
                    data["interactive"]["type"].as_str().unwrap()
                ),
                _ => t,
            }
        })
        .collect();
    let expected: BTreeSet<String> = [
        "text",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive/button_reply",
        "interactive/list_reply",
        "button",
        "reaction",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(types, expected);

    let states: BTreeSet<String> = statuses
        .iter()
        .map(|r| r.json()["data"]["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states,
        ["delivered", "failed", "read", "sent"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    for r in &statuses {
        assert_eq!(r.json()["type"], "whatsapp.message.status");
    }
}

#[test]
fn a_wrong_secret_is_refused_by_the_gateway_and_simulate_says_what_to_fix() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (code, out, err) = simulate(&gw, "not-the-app-secret", &["--count", "2", "--quiet"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("2× HTTP 401"), "{out}");
    assert!(err.contains("--secret"), "{err}");
}

#[test]
fn count_and_rate_pace_the_webhooks_and_a_fixed_run_id_is_deduplicated() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let started = Instant::now();
    let args = [
        "--events",
        "text,read",
        "--count",
        "20",
        "--rate",
        "50",
        "--concurrency",
        "4",
        "--run-id",
        "FIXED",
        "--quiet",
    ];
    let (code, out, err) = simulate(&gw, APP_SECRET, &args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("sent 20 webhook(s)"), "{out}");
    // 20 webhooks at 50/s: the last is due after 0.38 s.
    assert!(started.elapsed() >= Duration::from_millis(380));

    // The same run again is what a redelivery by Meta looks like: all duplicates.
    let (code, out, _) = simulate(
        &gw,
        APP_SECRET,
        &[
            "--events",
            "text,read",
            "--count",
            "20",
            "--rate",
            "0",
            "--run-id",
            "FIXED",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(
        out.matches(r#""accepted":0,"duplicates":1"#).count(),
        20,
        "{out}"
    );
}

#[test]
fn simulate_sends_every_meta_field_and_each_cycle_is_new_to_the_gateway() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-sim", &["111"]);
    let receiver = Receiver::start();
    let (status, body) = gw.request(
        "POST",
        "/api/v1/listeners",
        Some(&key),
        Some(&json!({"wabaId": "111", "events": ["*"], "url": receiver.url("/all")})),
    );
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"].as_str().unwrap().to_string();

    // Two cycles through every field sample: the second must not be taken
    // for Meta redelivering the first.
    // EXPECTED has every sample but the two business-level ones.
    let count = (2 * (EXPECTED.len() + 2)).to_string();
    let (code, out, err) = simulate(
        &gw,
        APP_SECRET,
        &["--events", "fields", "--count", &count, "--rate", "0"],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains(&format!("{count}× HTTP 200")), "{out}");
    assert!(!out.contains("\"duplicates\":1"), "{out}");

    // Every fixture's types, twice; the business-level samples name other
    // WABAs or a business portfolio, so they reach no listener of 111.
    let mut expected = BTreeMap::new();
    for (_, types) in EXPECTED {
        for t in *types {
            *expected.entry(t.to_string()).or_insert(0) += 2;
        }
    }
    let total: usize = expected.values().sum();
    let got = receiver.wait_for_exactly(total, Duration::from_secs(20), Duration::from_millis(700));
    assert_verified(&got, &secret);
    assert_eq!(types_of(&got), expected);
    for r in &got {
        let data = &r.json()["data"];
        assert_eq!(data["wabaId"], "111", "{data}");
        if !data["phoneNumberId"].is_null() {
            assert_eq!(data["phoneNumberId"], "PN1", "{data}");
        }
    }
}

#[test]
fn an_unknown_event_kind_is_refused_with_the_words_simulate_knows() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let (code, _, err) = simulate(&gw, APP_SECRET, &["--events", "text,telepathy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"telepathy\""), "{err}");
    assert!(
        err.contains("fields") && err.contains("account_update"),
        "{err}"
    );
}

#[test]
fn a_rate_too_small_to_pace_is_refused_with_one_clear_line() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    for rate in ["1e-300", "-1", "NaN", "inf"] {
        let flag = format!("--rate={rate}");
        let (code, out, err) = simulate(&gw, APP_SECRET, &["--count", "2", &flag]);
        assert_eq!(code, 2, "--rate {rate}: stdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains("--rate must be 0"), "--rate {rate}: {err}");
        assert!(!err.contains("panicked"), "--rate {rate}: {err}");
    }
}
