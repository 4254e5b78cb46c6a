//! The per-number send limiter (`--send-rate-per-number`): a flow sending
//! faster than its number may gets `429` with `Retry-After` before Meta is
//! asked, and Meta's own throughput and pair-rate refusals become the same
//! `429` with a wait the flow can act on. A coexistence number sends at
//! Meta's 20 a second; a number Meta upgraded (`throughput.level: HIGH`) at
//! 1,000 while the admin left the rate at its default.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{World, PHONE_A, PHONE_A2, WABA_A};
use crate::support::fake_meta::meta_error;

/// A send as a flow makes it: (status, Retry-After, body).
fn send(w: &World, phone: &str) -> (u16, Option<u64>, Value) {
    let body = json!({"to": "+420777123456", "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    w.post_a_with_retry_after(&format!("/api/v1/phone-numbers/{phone}/messages"), &body)
}

fn sends_seen_by_meta(w: &World, phone: &str) -> usize {
    w.meta
        .requests_to("POST", &format!("/{phone}/messages"))
        .len()
}

/// Sends `n` messages from `phone` as fast as `threads` clients can, and
/// answers how many were accepted and how long it took; every other answer
/// must be a 429 with `Retry-After` and `rate_limited`.
fn burst(w: &World, phone: &str, n: usize, threads: usize) -> (usize, Duration) {
    let started = Instant::now();
    let accepted: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut accepted = 0;
                    for _ in (t..n).step_by(threads) {
                        match send(w, phone) {
                            (200, _, _) => accepted += 1,
                            (429, Some(wait), body) => {
                                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                                assert!(body["error"]["hint"].is_string(), "{body}");
                                assert!(wait >= 1, "Retry-After {wait}");
                            }
                            other => panic!("neither sent nor rate limited: {other:?}"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        workers.into_iter().map(|h| h.join().unwrap()).sum()
    });
    (accepted, started.elapsed())
}

/// At most one second's worth at once, plus what came back while sending.
fn at_most(rate: usize, elapsed: Duration) -> usize {
    rate + (elapsed.as_secs_f64() * rate as f64).ceil() as usize
}

#[test]
fn a_number_sending_faster_than_its_rate_gets_429_with_retry_after_before_meta() {
    let w = World::start_with(&["--send-rate-per-number", "5"]);
    let (accepted, elapsed) = burst(&w, PHONE_A, 20, 1);
    assert!(
        (5..=at_most(5, elapsed)).contains(&accepted),
        "{accepted} of 20 sent in {elapsed:?}"
    );
    assert_eq!(
        sends_seen_by_meta(&w, PHONE_A),
        accepted,
        "Meta saw exactly the accepted sends"
    );

    // The account's other number has its own bucket.
    let (status, _, body) = send(&w, PHONE_A2);
    assert_eq!(status, 200, "{body}");

    // A second later the bucket has refilled: sends pass again.
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _, body) = send(&w, PHONE_A);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn rate_zero_turns_the_limiter_off() {
    let w = World::start_with(&["--send-rate-per-number", "0"]);
    // More than the default's burst of 80 could take in this time.
    let (accepted, _) = burst(&w, PHONE_A, 300, 4);
    assert_eq!(accepted, 300);
}

#[test]
fn metas_throughput_and_pair_rate_refusals_become_429_with_a_wait() {
    let w = World::start();
    for (code, message, wait) in [
        (130429, "(#130429) Rate limit hit", 1),
        (
            131056,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            6,
        ),
    ] {
        w.meta.script(
            "POST",
            &format!("/{PHONE_A}/messages"),
            meta_error(400, code, message),
        );
        let (status, retry_after, body) = send(&w, PHONE_A);
        assert_eq!(status, 429, "{body}");
        assert_eq!(retry_after, Some(wait), "{code}");
        assert_eq!(body["error"]["code"], "meta_error");
        assert_eq!(body["error"]["meta"]["code"], code);
        assert_eq!(body["error"]["meta"]["fbtrace_id"], "FAKEtrace");
        assert!(body["error"]["hint"].as_str().unwrap().contains("Wait"));
    }
}

/// The measurement: 1,000 sends from one number as fast as 8
/// clients can, at Meta's default 80 a second. The figures are printed (run
/// with `--nocapture`); only the limiter's own counts are asserted.
#[test]
fn a_burst_of_1000_sends_at_the_default_rate() {
    let w = World::start();
    let (accepted, elapsed) = burst(&w, PHONE_A, 1000, 8);
    let limited = 1000 - accepted;
    eprintln!(
        "burst of 1000 sends at 80/s: {accepted} accepted, {limited} answered 429, in {:.2} s ({:.0} answers/s)",
        elapsed.as_secs_f64(),
        1000.0 / elapsed.as_secs_f64()
    );
    assert!(
        (80..=at_most(80, elapsed)).contains(&accepted),
        "{accepted} of 1000 sent in {elapsed:?}"
    );
    assert_eq!(sends_seen_by_meta(&w, PHONE_A), accepted);
}

/// A coexistence number (also in use in the WhatsApp Business app) has
/// Meta's fixed 20 messages a second: once wabridge has seen Meta mark it
/// `is_on_biz_app`, its bucket holds 20, and after a restart still does.
#[test]
fn a_coexistence_number_sends_at_most_20_a_second() {
    let mut w = World::start();
    w.meta.set_on_biz_app(PHONE_A);
    let (status, list) = w.a(
        "GET",
        &format!("/api/v1/business-accounts/{WABA_A}/phone-numbers"),
        None,
    );
    assert_eq!(status, 200, "{list}");
    let numbers = list["phoneNumbers"].as_array().unwrap();
    let coexistence = numbers.iter().find(|n| n["id"] == PHONE_A).unwrap();
    assert_eq!(coexistence["isOnBizApp"], true, "{list}");
    let (_, me) = w.a("GET", "/api/v1/me", None);
    assert_eq!(
        me["wabas"][0]["coexistencePhoneNumbers"],
        json!([PHONE_A]),
        "{me}"
    );

    let (accepted, elapsed) = burst(&w, PHONE_A, 60, 4);
    assert!(
        (20..=at_most(20, elapsed)).contains(&accepted),
        "{accepted} of 60 sent in {elapsed:?}"
    );
    assert_eq!(sends_seen_by_meta(&w, PHONE_A), accepted);
    // The WABA's other number keeps the default 80.
    let (other, elapsed) = burst(&w, PHONE_A2, 60, 4);
    assert_eq!(other, 60, "in {elapsed:?}");

    // Known from the store after a restart, without listing the numbers again.
    w.gw.restart();
    let listings = w
        .meta
        .requests_to("GET", &format!("/{WABA_A}/phone_numbers"))
        .len();
    let (accepted, elapsed) = burst(&w, PHONE_A, 60, 4);
    assert!(
        (20..=at_most(20, elapsed)).contains(&accepted),
        "{accepted} of 60 sent in {elapsed:?} after a restart"
    );
    assert_eq!(
        w.meta
            .requests_to("GET", &format!("/{WABA_A}/phone_numbers"))
            .len(),
        listings
    );
}

/// Lists WABA A's numbers through the flow API, as a flow would: wabridge
/// learns each number's throughput from the listing.
fn list_numbers(w: &World) -> Value {
    let (status, list) = w.a(
        "GET",
        &format!("/api/v1/business-accounts/{WABA_A}/phone-numbers"),
        None,
    );
    assert_eq!(status, 200, "{list}");
    let asked = w
        .meta
        .requests_to("GET", &format!("/{WABA_A}/phone_numbers"));
    let fields = asked.last().unwrap().query_param("fields").unwrap();
    assert!(fields.split(',').any(|f| f == "throughput"), "{fields}");
    list
}

/// A number Meta upgraded (listed with `throughput: {level: "HIGH"}`) sends
/// up to 1,000 a second once wabridge has seen the listing, also after a
/// restart; its STANDARD sibling keeps the default 80. Counts only: 400
/// sends fit in a 1,000 bucket whatever the time they take.
#[test]
fn a_number_meta_upgraded_sends_at_1000_and_its_standard_sibling_at_80() {
    let mut w = World::start();
    w.meta.set_high_throughput(PHONE_A);
    list_numbers(&w);

    let (accepted, elapsed) = burst(&w, PHONE_A, 400, 8);
    eprintln!("HIGH number: {accepted} of 400 accepted in {elapsed:?}");
    assert_eq!(accepted, 400, "beyond 80 + refill, in {elapsed:?}");
    assert_eq!(sends_seen_by_meta(&w, PHONE_A), 400);

    let (sibling, elapsed) = burst(&w, PHONE_A2, 400, 8);
    assert!(
        (80..=at_most(80, elapsed)).contains(&sibling),
        "STANDARD sibling: {sibling} of 400 sent in {elapsed:?}"
    );
    assert_eq!(sends_seen_by_meta(&w, PHONE_A2), sibling);

    // Kept in the store: after a restart the number is still upgraded.
    w.gw.restart();
    std::thread::sleep(Duration::from_millis(1100));
    let (accepted, elapsed) = burst(&w, PHONE_A, 400, 8);
    assert_eq!(accepted, 400, "after a restart, in {elapsed:?}");
}

/// `--send-rate-per-number` set by the admin caps every number, an
/// upgraded one too.
#[test]
fn a_rate_the_admin_chose_caps_an_upgraded_number() {
    let w = World::start_with(&["--send-rate-per-number", "80"]);
    w.meta.set_high_throughput(PHONE_A);
    list_numbers(&w);
    let (accepted, elapsed) = burst(&w, PHONE_A, 400, 8);
    assert!(
        (80..=at_most(80, elapsed)).contains(&accepted),
        "{accepted} of 400 sent in {elapsed:?}"
    );
}
