//! Running it as a service: `--version`, `healthcheck`, systemd's readiness
//! notification, and logs that never show a secret.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::cli::{run, Serve};
use crate::support::admin_browser::Browser;
use crate::support::browser;
use crate::support::fake_meta::{FakeMeta, APP_SECRET};
use crate::support::gateway::{Gateway, Options, ADMIN_TOKEN, VERIFY_TOKEN};
use crate::support::payloads;
use crate::support::receiver::Receiver;

#[test]
fn version_names_the_version_and_the_commit() {
    let (code, out, _) = run(&["--version"], &[], &std::env::temp_dir());
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("wabridge {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
}

#[test]
fn healthcheck_exits_0_for_a_healthy_tls_gateway_and_1_when_it_is_gone() {
    let meta = FakeMeta::start();
    let mut gw = Gateway::start_with(
        &meta,
        Options {
            tls: true,
            ..Options::default()
        },
    );
    let listen = gw.base.rsplit("//").next().unwrap().to_string();
    // The same settings as serve: TLS with the generated self-signed certificate, on loopback.
    let (code, out, err) = run(
        &["healthcheck", "--listen", &listen],
        &[],
        &std::env::temp_dir(),
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.starts_with("healthy: https://127.0.0.1:"), "{out}");
    // A wildcard listen address is checked on loopback.
    let port = listen.rsplit(':').next().unwrap();
    let (code, _, _) = run(
        &["healthcheck", "--listen", &format!("0.0.0.0:{port}")],
        &[],
        &std::env::temp_dir(),
    );
    assert_eq!(code, 0);

    assert!(gw.terminate().success());
    let (code, _, err) = run(
        &["healthcheck", "--listen", &listen, "--timeout", "2s"],
        &[],
        &std::env::temp_dir(),
    );
    assert_eq!(code, 1);
    assert!(err.starts_with("unhealthy: "), "{err}");
}

#[test]
fn systemd_is_told_ready_once_listening_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let data = dir.path().join("data");
    let mut serve = Serve::start(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--no-tls",
        ],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("no READY=1 from wabridge");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    // Ready means ready: /healthz answers now.
    let mut resp = crate::support::gateway::client()
        .get(format!("{}/healthz", serve.base))
        .call()
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.body_mut().read_to_string().unwrap()
    );

    let status = serve.terminate();
    let n = socket.recv(&mut buf).expect("no STOPPING=1 from wabridge");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert!(status.success(), "{}", serve.stderr());
}

#[test]
fn logs_have_a_line_per_request_and_per_delivery_attempt_and_never_a_secret() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let access_token = "EAAGsecretAccessTokenForTheLogTest0123456789";
    let (_, api_key) = gw.add_account(&meta, access_token, &["111"]);
    let receiver = Receiver::start();
    let (_, listener_secret) = gw.add_listener(&api_key, "111", "messages", &receiver.url("/hook"));

    // Meta's handshake carries the verify token in the query string.
    let path = format!(
        "/plugins/appmixer/whatsapp/events?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=4242"
    );
    assert_eq!(gw.request("GET", &path, None, None).0, 200);
    let wrong = "/plugins/appmixer/whatsapp/events?hub.mode=subscribe&hub.verify_token=guess-wrong-token-xyz&hub.challenge=1";
    assert_eq!(gw.request("GET", wrong, None, None).0, 403);
    assert_eq!(
        gw.post_webhook(&payloads::single_text("111", "PN1", "wamid.LOG1", "hi"))
            .0,
        200
    );
    receiver.wait_for(1, Duration::from_secs(10));

    // A connect link's secret travels in the query string of /connect.
    let link = gw.connect_link();
    let link_secret = link
        .split("link=")
        .nth(1)
        .expect("a link secret")
        .to_string();
    // It answers with Meta's dialog, whose `state` stands for the login.
    let dialog = browser::get(&gw.local(&link)).location();
    let state = browser::query(&dialog, "state").expect("no state in the redirect");
    // The backoffice: a login with the admin token, an admin password set and
    // used, the session cookie.
    let password = "a passphrase for the log test";
    let mut b = Browser::new(&gw);
    assert_eq!(b.login(ADMIN_TOKEN).status, 303);
    let csrf = b.csrf();
    b.post(
        "/admin/password",
        &[
            ("csrf", &csrf),
            ("current", ADMIN_TOKEN),
            ("password", password),
            ("confirm", password),
        ],
    );
    let mut fresh = Browser::new(&gw);
    let login = fresh.login(password);
    assert_eq!(login.status, 303, "{}", login.body);
    let session: Vec<String> = login
        .set_cookies()
        .iter()
        .filter_map(|c| {
            c.split(';')
                .next()?
                .split_once('=')
                .map(|(_, v)| v.to_string())
        })
        .filter(|v| v.len() >= 16)
        .collect();
    assert!(!session.is_empty(), "a session cookie");
    std::thread::sleep(Duration::from_millis(300));

    let log = gw.log();
    let requests = log
        .lines()
        .filter(|l| l.contains(" request ") || l.ends_with(" request"))
        .count();
    assert!(requests >= 6, "one line per request:\n{log}");
    assert!(
        log.contains("path=/plugins/appmixer/whatsapp/events status=200"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("delivered") && l.contains("attempt=1")),
        "a line per delivery attempt:\n{log}"
    );
    let listener_key = listener_secret.trim_start_matches("whsec_");
    for secret in [
        ADMIN_TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
        "guess-wrong-token-xyz",
        access_token,
        &api_key,
        listener_key,
        &link_secret,
        &state,
        password,
    ]
    .into_iter()
    .chain(session.iter().map(String::as_str))
    {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}

#[test]
fn under_systemd_log_lines_leave_the_timestamp_to_journald() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut serve = Serve::start(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--no-tls",
        ],
        &[
            ("JOURNAL_STREAM", "8:12345"),
            ("WABRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
    assert!(serve.terminate().success());
    let log = serve.stderr();
    let ready = log
        .lines()
        .find(|l| l.contains("ready"))
        .unwrap_or_else(|| panic!("{log}"));
    // `INFO wabridge::app: wabridge … ready`: the level first, no date.
    assert!(ready.trim_start().starts_with("INFO "), "{ready}");
    assert!(
        !log.lines()
            .any(|l| l.starts_with(|c: char| c.is_ascii_digit())),
        "a line starts with a date:\n{log}"
    );
}

#[test]
fn a_start_that_fails_on_a_busy_port_leaves_the_database_clean_for_backup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, _, err) = run(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &addr,
            "--no-tls",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    let out = dir.path().join("copy.redb");
    let (code, stdout, err) = run(
        &[
            "backup",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{err}");
}
