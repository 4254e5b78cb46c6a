//! At least once across crashes and restarts: every event the gateway answered
//! 200 for reaches the flow webhook eventually, whatever happened to the process.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::delivery::{
    delivered_ids, deliveries, free_addr, message_id, setup, try_post_webhook, wait_until,
    webhook_id, PHONE, WABA,
};
use crate::support::fake_meta::APP_SECRET;
use crate::support::gateway::{client, Gateway, Options};
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::server::Reply;
use crate::support::standard_webhooks::assert_verified;

/// 1s, 1s, 2s and then eight times 2 s: a delivery stays pending for ~20 s, so
/// none runs out of retries while the receiver is down, and none waits long after a restart.
fn patient() -> Options {
    Options {
        args: vec!["--retry-schedule".into(), "2s,2s,2s,2s,2s,2s,2s,2s".into()],
        ..Options::default()
    }
}

/// POSTs `ids` as one-message webhooks from `threads` threads; every one must get a 200.
fn post_all(gw: &Gateway, ids: &[String], threads: usize) {
    let base = gw.base.clone();
    std::thread::scope(|s| {
        for chunk in ids.chunks(ids.len().div_ceil(threads)) {
            let base = base.clone();
            s.spawn(move || {
                let agent = client();
                for id in chunk {
                    let body = payloads::single_text(WABA, PHONE, id, "crash test");
                    let status = try_post_webhook(&agent, &base, &body).expect("webhook POST");
                    assert_eq!(status, 200, "{id}");
                }
            });
        }
    });
}

/// Waits until every id in `want` was delivered; panics listing the missing ones.
fn wait_all_delivered(receiver: &Receiver, want: &HashSet<String>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = delivered_ids(receiver);
        let missing: Vec<&String> = want.iter().filter(|id| !got.contains(*id)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events never arrived, e.g. {:?}",
            missing.len(),
            want.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill_9_between_acknowledging_and_delivering_loses_nothing() {
    const N: usize = 200;
    let (_meta, mut gw, key) = setup(patient());
    let addr = free_addr();
    let (listener, secret) =
        gw.add_listener(&key, WABA, "messages", &format!("http://{addr}/hook"));

    let ids: Vec<String> = (0..N).map(|i| format!("wamid.k9.{i}")).collect();
    post_all(&gw, &ids, 4);
    // All acknowledged, none delivered: the receiver refuses connections.
    let pending = deliveries(&gw, &key, &listener);
    assert_eq!(pending.len(), N);
    assert!(pending.iter().all(|d| d["state"] == "pending"));
    gw.kill9();

    let receiver = Receiver::start_at(addr);
    gw.restart();
    let want: HashSet<String> = ids.into_iter().collect();
    wait_all_delivered(&receiver, &want, Duration::from_secs(20));

    let got = receiver.delivered();
    assert_verified(&got, &secret);
    // Duplicates are allowed; a duplicate carries the same webhook-id.
    let pairs: HashSet<(String, String)> =
        got.iter().map(|r| (message_id(r), webhook_id(r))).collect();
    assert_eq!(pairs.len(), N, "one webhook-id per event");
}

#[test]
fn kill_9_during_concurrent_webhook_posts_loses_no_acknowledged_event() {
    let (_meta, mut gw, key) = setup(Options::default());
    let mut slow = Receiver::start();
    // Answers slower than events come in (but within the 3 s delivery timeout)
    // keep deliveries in flight, and many more queued, when the process dies.
    slow.script(std::iter::repeat_n(
        Reply::status(200).delayed(Duration::from_millis(2_500)),
        10_000,
    ));
    gw.add_listener(&key, WABA, "messages", &slow.url("/hook"));

    let acked = Mutex::new(Vec::<String>::new());
    let stop = AtomicBool::new(false);
    let base = gw.base.clone();
    std::thread::scope(|s| {
        for t in 0..6 {
            let (acked, stop, base) = (&acked, &stop, base.clone());
            s.spawn(move || {
                let agent = client();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("wamid.load.{t}.{i}");
                    let body = payloads::single_text(WABA, PHONE, &id, "load");
                    match try_post_webhook(&agent, &base, &body) {
                        Ok(200) => acked.lock().unwrap().push(id),
                        Ok(other) => panic!("{id}: {other}"),
                        // The process is gone: what was in flight is not acknowledged.
                        Err(_) => break,
                    }
                }
            });
        }
        wait_until(Duration::from_secs(20), "300 acknowledged events", || {
            (acked.lock().unwrap().len() >= 300).then_some(())
        });
        gw.kill9();
        stop.store(true, Ordering::Relaxed);
    });
    let acked: HashSet<String> = acked.into_inner().unwrap().into_iter().collect();
    let before = delivered_ids(&slow);
    let undelivered = acked.iter().filter(|id| !before.contains(*id)).count();
    assert!(
        undelivered >= 100,
        "the kill came too late to prove much: {undelivered} of {} acknowledged events were still to deliver",
        acked.len()
    );

    // The flow tool comes back quick on the same address.
    slow.stop();
    let fast = Receiver::start_at(slow.addr());
    gw.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = delivered_ids(&fast);
        let missing = acked
            .iter()
            .filter(|id| !got.contains(*id) && !before.contains(*id))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged events never arrived",
            acked.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_drains_requests_and_deliveries_and_exits_0_with_nothing_lost() {
    const N: usize = 50;
    let (_meta, mut gw, key) = setup(patient());
    // Down while the events come in.
    let addr = free_addr();
    gw.add_listener(&key, WABA, "messages", &format!("http://{addr}/hook"));
    // Up, but slow to answer when SIGTERM arrives.
    let slow = Receiver::start();
    let (slow_listener, _) = gw.add_listener(&key, WABA, "messages", &slow.url("/hook"));

    let mut ids: Vec<String> = (0..N).map(|i| format!("wamid.term.{i}")).collect();
    post_all(&gw, &ids, 2);
    slow.wait_for(N, Duration::from_secs(10));

    // A delivery in flight at SIGTERM: it may finish (2 s < the 3 s delivery timeout).
    slow.script([Reply::status(200).delayed(Duration::from_secs(2))]);
    let (status, _) = gw.post_webhook(&payloads::single_text(
        WABA,
        PHONE,
        "wamid.term.slow-receiver",
        "x",
    ));
    assert_eq!(status, 200);
    ids.push("wamid.term.slow-receiver".into());
    wait_until(Duration::from_secs(5), "the slow delivery to start", || {
        (slow.all_requests().len() > N).then_some(())
    });

    // A request in flight at SIGTERM: headers sent, half the body still to come.
    let host = gw.base.strip_prefix("http://").unwrap().to_string();
    let slow_id = "wamid.term.slow-request";
    ids.push(slow_id.into());
    let body = payloads::single_text(WABA, PHONE, slow_id, "x");
    let mut conn = TcpStream::connect(&host).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "POST /plugins/appmixer/whatsapp/events HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\nx-hub-signature-256: {}\r\ncontent-length: {}\r\n\r\n",
        crate::support::meta_signature(&body, APP_SECRET),
        body.len()
    )
    .unwrap();
    let half = body.len() / 2;
    conn.write_all(&body[..half]).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let exit = std::thread::scope(|s| {
        let term = s.spawn(|| gw.terminate());
        // Once the listening socket is closed, shutdown has begun.
        wait_until(Duration::from_secs(10), "the listener to close", || {
            TcpStream::connect(&host).is_err().then_some(())
        });
        conn.write_all(&body[half..]).unwrap();
        let mut answer = String::new();
        BufReader::new(&conn).read_line(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "the request in flight at SIGTERM was not finished: {answer:?}"
        );
        term.join().unwrap()
    });
    assert!(
        exit.success(),
        "SIGTERM must exit 0, got {exit:?}\n{}",
        gw.log()
    );
    assert!(!gw.log().contains("panicked"), "{}", gw.log());

    let receiver = Receiver::start_at(addr);
    gw.restart();
    let want: HashSet<String> = ids.into_iter().collect();
    wait_all_delivered(&receiver, &want, Duration::from_secs(20));
    wait_all_delivered(&slow, &want, Duration::from_secs(20));
    // The delivery in flight was allowed to finish, and its outcome was recorded before exit.
    let tries: Vec<String> = slow
        .all_requests()
        .iter()
        .filter(|(r, _)| message_id(r) == "wamid.term.slow-receiver")
        .map(|(r, _)| webhook_id(r))
        .collect();
    assert_eq!(tries.len(), 1, "drained, so not sent again: {tries:?}");
    let d = deliveries(&gw, &key, &slow_listener)
        .into_iter()
        .find(|d| d["webhookId"] == tries[0].as_str())
        .unwrap();
    assert_eq!(d["state"], "succeeded", "{d}");
    assert_eq!(d["attempts"], 1, "{d}");
}
