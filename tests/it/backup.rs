//! `wabridge backup`: a consistent copy while the server takes writes, and the
//! documented restore (stop, replace the file, start).

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cli::run;
use crate::support::fake_meta::{FakeMeta, APP_SECRET};
use crate::support::gateway::{Gateway, ADMIN_TOKEN};
use crate::support::{meta_signature, payloads};

/// The listen address of a gateway, from its base URL.
fn listen_of(gw: &Gateway) -> String {
    gw.base.rsplit("//").next().unwrap().to_string()
}

fn post(agent: &ureq::Agent, gw_base: &str, id: &str) -> Option<serde_json::Value> {
    let body = payloads::single_text("111", "PN1", id, "load");
    let mut resp = agent
        .post(format!("{gw_base}/plugins/appmixer/whatsapp/events"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &meta_signature(&body, APP_SECRET))
        .send(&body[..])
        .ok()?;
    if resp.status() != 200 {
        return None;
    }
    resp.body_mut().read_json().ok()
}

#[test]
fn a_backup_taken_under_write_load_restores_to_a_database_with_every_acknowledged_event() {
    let meta = FakeMeta::start();
    let mut gw = Gateway::start(&meta);
    gw.configure();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wabridge-backup.redb");

    // Four writers post new events until told to stop, noting when each was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, acked, next, base) =
                (stop.clone(), acked.clone(), next.clone(), gw.base.clone());
            std::thread::spawn(move || {
                let agent = crate::support::gateway::client();
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("wamid.LOAD{}", next.fetch_add(1, Ordering::Relaxed));
                    if let Some(answer) = post(&agent, &base, &id) {
                        assert_eq!(answer["accepted"], 1, "{answer}");
                        acked.lock().unwrap().push((id, Instant::now()));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // The server holds the data dir, so the CLI asks it (found from the same settings).
    let backup_started = Instant::now();
    let data_dir = gw.data_dir().display().to_string();
    let listen = listen_of(&gw);
    let args = [
        "backup",
        "--data-dir",
        &data_dir,
        "--listen",
        &listen,
        "--no-tls",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = run(&args, &[("WABRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)], dir.path());
    let backup_done = Instant::now();
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("taken from the running server"), "{stdout}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let before: Vec<&String> = acked
        .iter()
        .filter(|(_, t)| *t < backup_started)
        .map(|(id, _)| id)
        .collect();
    let after: Vec<&String> = acked
        .iter()
        .filter(|(_, t)| *t > backup_done)
        .map(|(id, _)| id)
        .collect();
    assert!(
        before.len() >= 20 && !after.is_empty(),
        "{} before, {} after",
        before.len(),
        after.len()
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a backup holds secrets");

    // Without the token the running server cannot be asked: a clear refusal.
    let other = dir.path().join("other.redb");
    let args = [
        "backup",
        "--data-dir",
        &data_dir,
        "--listen",
        &listen,
        "--no-tls",
        "--out",
        other.to_str().unwrap(),
    ];
    let (code, _, stderr) = run(&args, &[], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("WABRIDGE_ADMIN_TOKEN"), "{stderr}");
    assert!(!other.exists());

    // With the server stopped, the file is copied directly.
    assert!(gw.terminate().success());
    let offline = dir.path().join("offline.redb");
    let args = [
        "backup",
        "--data-dir",
        &data_dir,
        "--out",
        offline.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = run(&args, &[], dir.path());
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("taken from the stopped database"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{} events", acked.len())),
        "{stdout}"
    );

    // Restore (docs/install.md): stop, put the backup in place of the database, start.
    std::fs::copy(&out, gw.data_dir().join("wabridge.redb")).unwrap();
    gw.restart();
    let (status, health) = gw.request("GET", "/healthz", None, None);
    assert_eq!(status, 200, "{health}");
    let (status, config) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(
        (status, config["clientSecretSet"].as_bool()),
        (200, Some(true))
    );
    // Every event acknowledged before the backup began is in it: Meta's
    // redelivery of it is recognised as a duplicate.
    let agent = crate::support::gateway::client();
    for id in &before {
        let answer = post(&agent, &gw.base, id).unwrap();
        assert_eq!(
            answer["duplicates"], 1,
            "{id} was acknowledged before the backup but is not in it"
        );
    }
    // And the restored file really is the backup: events acknowledged after it are new to it.
    let answer = post(&agent, &gw.base, after.last().unwrap()).unwrap();
    assert_eq!(answer["accepted"], 1, "{answer}");
}
