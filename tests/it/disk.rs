//! A full disk: webhooks are refused with 503 and Retry-After (Meta retries),
//! /healthz says why, and once space comes back the same process takes events
//! again by itself; every event acknowledged with 200 is delivered exactly once.
//!
//! The data dir is a tmpfs of a few MiB that the test mounts (this needs root);
//! where mounting is not allowed the test says so in one line and passes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::delivery::{delivered_ids, setup, wait_until, PHONE, WABA};
use crate::support::admin_browser::Browser;
use crate::support::fake_meta::APP_SECRET;
use crate::support::gateway::{client, run_cli, Gateway, Options, ADMIN_TOKEN};
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::server::Reply;

/// A tmpfs mounted on a temporary folder for the life of the test.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None`, with the one line saying why, where the test cannot mount it.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::Builder::new()
            .prefix("wabridge-disk-")
            .tempdir()
            .unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            Ok(o) => {
                skipped(size, String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                skipped(size, &e.to_string());
                None
            }
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Gives the filesystem more room, as an admin freeing space would.
    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot remount the tmpfs with size={size}"
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn skipped(size: &str, why: &str) {
    println!("skipped: cannot mount a {size} tmpfs for the data dir (needs root): {why}");
}

/// Long texts fill the disk in a few hundred webhooks.
fn filler_text() -> String {
    "x".repeat(3000)
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

fn post(agent: &ureq::Agent, base: &str, body: &[u8]) -> Answer {
    let mut resp = agent
        .post(format!("{base}/plugins/appmixer/whatsapp/events"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            crate::support::meta_signature(body, APP_SECRET),
        )
        .send(body)
        .expect("webhook POST");
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// POSTs one-message webhooks until one is refused; returns the ids answered
/// 200, the refused id and its answer.
fn fill_until_refused(gw: &Gateway, prefix: &str) -> (Vec<String>, String, Answer) {
    const LIMIT: usize = 20_000;
    let agent = client();
    let text = filler_text();
    let mut acked = Vec::new();
    for i in 0..LIMIT {
        let id = format!("wamid.{prefix}.{i}");
        let answer = post(
            &agent,
            &gw.base,
            &payloads::single_text(WABA, PHONE, &id, &text),
        );
        match answer.status {
            200 => acked.push(id),
            503 => return (acked, id, answer),
            other => panic!("webhook {id}: {other} {}\n{}", answer.body, gw.log()),
        }
    }
    panic!("the disk never filled after {LIMIT} webhooks");
}

/// Re-sends the refused webhook (as Meta does) and `more` new ones; all must be 200.
fn accepted_again(gw: &Gateway, refused: &str, prefix: &str, more: usize) -> Vec<String> {
    let agent = client();
    let text = filler_text();
    let ids: Vec<String> = std::iter::once(refused.to_string())
        .chain((0..more).map(|i| format!("wamid.{prefix}.{i}")))
        .collect();
    for id in &ids {
        let answer = post(
            &agent,
            &gw.base,
            &payloads::single_text(WABA, PHONE, id, &text),
        );
        assert_eq!(answer.status, 200, "{id}: {}", answer.body);
    }
    ids
}

fn healthz(gw: &Gateway) -> (u16, Value) {
    gw.request("GET", "/healthz", None, None)
}

fn assert_refused_for_storage(answer: &Answer) {
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.retry_after.as_deref(), Some("60"));
    assert_eq!(answer.body["error"]["code"], "storage_unavailable");
    assert!(
        answer.body["error"]["hint"].as_str().is_some(),
        "{}",
        answer.body
    );
}

/// Waits until the outbox is empty, then checks that each acknowledged event
/// arrived once: with nothing queued, nothing more can be sent.
fn assert_each_delivered_once(gw: &Gateway, receiver: &Receiver, acked: &[String]) {
    let want: HashSet<String> = acked.iter().cloned().collect();
    assert_eq!(want.len(), acked.len(), "an id was acknowledged twice");
    wait_until(
        Duration::from_secs(60),
        "every acknowledged event delivered",
        || {
            (delivered_ids(receiver) == want && gw.metric("wabridge_deliveries_queued") == 0)
                .then_some(())
        },
    );
    assert_eq!(
        receiver.delivered().len(),
        acked.len(),
        "an event was delivered twice"
    );
}

fn patient(data_dir: &Path, reserve: &str) -> Options {
    // Every attempt waits long enough that none runs out while the test fills the disk.
    let schedule = vec!["3s"; 40].join(",");
    Options {
        data_dir: Some(data_dir.to_path_buf()),
        args: vec![
            "--min-free-space".into(),
            reserve.into(),
            "--retry-schedule".into(),
            schedule,
        ],
        ..Options::default()
    }
}

#[test]
fn a_full_disk_is_503_until_space_is_freed_then_the_same_process_resumes() {
    let Some(disk) = SmallDisk::mount("6m") else {
        return;
    };
    // No reserve: the disk really fills, redb's write fails and must be reopened.
    let (_meta, gw, key) = setup(patient(&disk.path(), "0"));
    let pid = gw.pid();
    // The receiver refuses every delivery while the disk is full: one it took
    // then could not be recorded and would be made again, which is not what
    // this test is about. Started first and kept, so its port is never free
    // for another test to take (a port found free and bound later was).
    let receiver = Receiver::start();
    receiver.script(vec![Reply::status(503); 100_000]);
    gw.add_listener(&key, WABA, "messages", &receiver.url("/hook"));

    let (mut acked, refused, answer) = fill_until_refused(&gw, "full");
    println!(
        "{} webhooks acknowledged before the 6 MiB disk was full",
        acked.len()
    );
    assert!(acked.len() > 50, "refused too early: {}", answer.body);
    assert_refused_for_storage(&answer);

    let (status, body) = healthz(&gw);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
    assert_eq!(gw.metric("wabridge_store_writable"), 0);
    assert!(gw.metric("wabridge_data_dir_free_bytes") < 1024 * 1024);
    // Still full: still refused, not failing some other way.
    assert_refused_for_storage(&post(
        &client(),
        &gw.base,
        &payloads::single_text(WABA, PHONE, "wamid.full.again", "x"),
    ));

    disk.grow("64m");
    wait_until(Duration::from_secs(30), "healthz to be 200 again", || {
        (healthz(&gw).0 == 200).then_some(())
    });
    assert_eq!(gw.metric("wabridge_store_writable"), 1);
    acked.extend(accepted_again(&gw, &refused, "after", 20));
    assert_eq!(gw.pid(), pid, "the gateway was restarted");
    assert!(gw.logs("database reopened"), "{}", gw.log());

    receiver.unscript();
    assert_each_delivered_once(&gw, &receiver, &acked);
}

#[test]
fn below_the_reserve_webhooks_are_refused_before_the_disk_is_full() {
    let Some(disk) = SmallDisk::mount("12m") else {
        return;
    };
    let (_meta, gw, key) = setup(patient(&disk.path(), "6MiB"));
    let receiver = Receiver::start();
    gw.add_listener(&key, WABA, "messages", &receiver.url("/hook"));
    let mut admin = Browser::new(&gw);
    assert_eq!(admin.login(ADMIN_TOKEN).status, 303);
    assert!(!admin.get("/admin/setup").body.contains("storage-warning"));

    let (mut acked, refused, answer) = fill_until_refused(&gw, "reserve");
    println!(
        "{} webhooks acknowledged before the 6 MiB reserve",
        acked.len()
    );
    assert!(acked.len() > 50, "refused too early: {}", answer.body);
    assert_refused_for_storage(&answer);
    // The public answer says what to do, not the disk's numbers (those are
    // for the log, /metrics and the backoffice).
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("storage unavailable"), "{message}");
    assert!(!message.contains("reserve"), "{message}");
    assert!(gw.logs("short of its reserve"), "{}", gw.log());

    let (status, body) = healthz(&gw);
    assert_eq!(status, 503, "{body}");
    let (code, _, err) = run_cli(&["healthcheck", "--url", &gw.base], &std::env::temp_dir());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("storage unavailable"), "{err}");
    let free = gw.metric("wabridge_data_dir_free_bytes");
    let reserve = gw.metric("wabridge_data_dir_min_free_bytes");
    assert_eq!(reserve, 6 * 1024 * 1024);
    // Refused ahead of time: the disk still has room, and nothing had to be reopened.
    assert!(free > 0 && free < reserve, "free {free}, reserve {reserve}");
    assert!(!gw.log().contains("database reopened"));
    let page = admin.get("/admin/setup");
    assert!(page.body.contains("storage-warning"), "{}", page.body);
    assert!(page.body.contains("kept in reserve"), "{}", page.body);

    disk.grow("64m");
    wait_until(Duration::from_secs(30), "healthz to be 200 again", || {
        (healthz(&gw).0 == 200).then_some(())
    });
    acked.extend(accepted_again(&gw, &refused, "after", 20));
    assert!(!admin.get("/admin/setup").body.contains("storage-warning"));

    assert_each_delivered_once(&gw, &receiver, &acked);
}
