//! The command line and start-up (CONTRACT §1): exit codes, one clear line on
//! stderr, the data dir lock, TLS, `WABRIDGE_*` variables and the admin token.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::delivery::free_addr;
use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::{binary, client, wait_timeout, Gateway, Options};

/// The binary with these flags and `WABRIDGE_*` variables only (none inherited),
/// logging at the default level.
fn command(args: &[&str], envs: &[(&str, &str)], dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("WABRIDGE_")) {
        cmd.env_remove(k);
    }
    cmd.envs(envs.iter().copied());
    cmd
}

/// Runs `wabridge` to completion (or fails after 20 s): (exit code, stdout, stderr).
pub fn run(args: &[&str], envs: &[(&str, &str)], dir: &Path) -> (i32, String, String) {
    let mut child = command(args, envs, dir)
        .spawn()
        .expect("cannot run wabridge");
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read_all(Box::new(child.stdout.take().unwrap()));
    let err = read_all(Box::new(child.stderr.take().unwrap()));
    let status = wait_timeout(&mut child, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("wabridge {args:?} did not exit"));
    (
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    )
}

/// A `wabridge serve` started with exactly these flags and variables; killed when dropped.
pub struct Serve {
    child: Option<Child>,
    /// `http(s)://127.0.0.1:port` from the "listening on" line.
    pub base: String,
    pub stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Serve {
        let mut child = command(args, envs, &std::env::temp_dir())
            .spawn()
            .expect("cannot start wabridge");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve = Serve {
            child: Some(child),
            base: String::new(),
            stdout: Vec::new(),
            stderr,
        };
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("wabridge did not start; stderr:\n{}", serve.stderr()));
            serve.stdout.push(line.clone());
            if let Some(url) = line.strip_prefix("listening on ") {
                serve.base = url.to_string();
                return serve;
            }
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("not running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        wait_timeout(&mut child, Duration::from_secs(30)).expect("no exit after SIGTERM")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CONTRACT §1: one clear line on stderr, never a panic or a backtrace.
fn assert_one_clear_line(stderr: &str, mentions: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got:\n{stderr}"
    );
    assert!(lines[0].starts_with("wabridge: "), "{stderr}");
    assert!(
        lines[0].contains(mentions),
        "{stderr:?} should mention {mentions:?}"
    );
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wabridge-cli-")
        .tempdir()
        .unwrap()
}

#[test]
fn a_second_serve_on_the_same_data_dir_exits_1_with_one_clear_line() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let dir = gw.data_dir().display().to_string();
    let (code, _, stderr) = run(
        &[
            "serve",
            "--data-dir",
            &dir,
            "--listen",
            "127.0.0.1:0",
            "--no-tls",
        ],
        &[],
        &gw.data_dir(),
    );
    assert_eq!(code, 1, "{stderr}");
    assert_one_clear_line(&stderr, "in use by another wabridge process");
    // The first one is unharmed.
    assert_eq!(gw.request("GET", "/healthz", None, None).0, 200);
}

#[test]
fn bad_flags_exit_2_with_one_clear_line() {
    let tmp = tempdir();
    let data = tmp.path().join("data").display().to_string();
    // (flags, variables, what the error line must name)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--bogus"], &[], "--bogus"),
        (&["--listen", "nope"], &[], "--listen"),
        (&["--public-url", "ftp://x"], &[], "--public-url"),
        (&["--public-url", "https://x/?a=b"], &[], "--public-url"),
        (
            &["--webhook-allow-net", "10.0.0.0/33"],
            &[],
            "--webhook-allow-net",
        ),
        (
            &["--webhook-allow-net", "127.0.0.0/8,nonsense"],
            &[],
            "nonsense",
        ),
        (&["--tls-cert", "cert.pem"], &[], "--tls-key"),
        (&["--retry-schedule", "soon"], &[], "--retry-schedule"),
        // Durations past what a clock can add are refused, not a panic later.
        (
            &["--retry-schedule", "5s,18446744073709551615s"],
            &[],
            "--retry-schedule",
        ),
        (&["--delivery-timeout", "2d"], &[], "--delivery-timeout"),
        (&["--retention", "600000000y"], &[], "--retention"),
        (
            &["--admin-idle-timeout", "31d"],
            &[],
            "--admin-idle-timeout",
        ),
        (
            &[],
            &[("WABRIDGE_TOKEN_CHECK_INTERVAL", "100y")],
            "--token-check-interval",
        ),
        (&[], &[("WABRIDGE_LISTEN", "nope")], "--listen"),
        (
            &[],
            &[("WABRIDGE_WEBHOOK_ALLOW_NET", "10.0.0.0/33")],
            "--webhook-allow-net",
        ),
    ];
    for (flags, envs, mentions) in cases {
        let mut args = vec!["serve", "--data-dir", &data];
        args.extend_from_slice(flags);
        let (code, stdout, stderr) = run(&args, envs, tmp.path());
        assert_eq!(code, 2, "{flags:?} {envs:?}: {stderr}");
        assert_one_clear_line(&stderr, mentions);
        assert!(stdout.is_empty(), "{stdout}");
    }
    assert!(
        !tmp.path().join("data").exists(),
        "bad flags must be refused before anything is created"
    );
    // Help and version are not errors.
    let (code, stdout, _) = run(&["serve", "--help"], &[], tmp.path());
    assert_eq!(code, 0);
    assert!(stdout.contains("--webhook-allow-net"), "{stdout}");
    let (code, stdout, _) = run(&["--version"], &[], tmp.path());
    assert_eq!(code, 0);
    assert!(stdout.starts_with("wabridge "), "{stdout}");
}

#[test]
fn a_client_timeout_past_a_day_is_refused_not_a_panic() {
    let tmp = tempdir();
    for command in [
        &["healthcheck", "--url", "http://127.0.0.1:9/healthz"][..],
        &[
            "backup",
            "--url",
            "http://127.0.0.1:9",
            "--out",
            "copy.redb",
        ][..],
        &["simulate", "--to", "http://127.0.0.1:9", "--secret", "s"][..],
    ] {
        let mut args = command.to_vec();
        args.extend(["--timeout", "18446744073709551615s"]);
        let (code, stdout, stderr) = run(&args, &[], tmp.path());
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_one_clear_line(&stderr, "--timeout");
        assert!(stderr.contains("at most 1d"), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }
}

#[test]
fn an_unreadable_or_garbage_certificate_exits_1_with_one_clear_line() {
    let tmp = tempdir();
    let p = |name: &str| tmp.path().join(name).display().to_string();
    let good = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(p("cert.pem"), good.cert.pem()).unwrap();
    std::fs::write(p("key.pem"), good.signing_key.serialize_pem()).unwrap();
    std::fs::write(p("other-key.pem"), other.signing_key.serialize_pem()).unwrap();
    std::fs::write(p("garbage.pem"), "this is not PEM\n").unwrap();
    let cases = [
        (p("missing.pem"), p("key.pem"), "missing.pem"),
        (p("garbage.pem"), p("key.pem"), "garbage.pem"),
        (p("cert.pem"), p("garbage.pem"), "garbage.pem"),
        (p("cert.pem"), p("other-key.pem"), "do not fit"),
    ];
    for (i, (cert, key, mentions)) in cases.iter().enumerate() {
        let data = p(&format!("data-{i}"));
        let (code, _, stderr) = run(
            &[
                "serve",
                "--data-dir",
                &data,
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
            ],
            &[(
                "WABRIDGE_ADMIN_TOKEN",
                "t0ken-for-the-cli-tests-0123456789abcdef",
            )],
            tmp.path(),
        );
        assert_eq!(code, 1, "{cert} {key}: {stderr}");
        assert_one_clear_line(&stderr, mentions);
    }
}

#[test]
fn a_short_admin_token_is_refused_at_start_and_by_config_check() {
    let tmp = tempdir();
    let data = tmp.path().join("data").display().to_string();
    let short = [("WABRIDGE_ADMIN_TOKEN", "admin")];
    let (code, _, stderr) = run(
        &[
            "serve",
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--no-tls",
        ],
        &short,
        tmp.path(),
    );
    assert_eq!(code, 1, "{stderr}");
    assert_one_clear_line(&stderr, "at least 32");
    let (code, stdout, _) = run(
        &["config", "check", "--data-dir", &data],
        &short,
        tmp.path(),
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("WABRIDGE_ADMIN_TOKEN has 5 characters"),
        "{stdout}"
    );
}

#[test]
fn a_port_in_use_exits_1_with_one_clear_line() {
    let tmp = tempdir();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tmp.path().join("data").display().to_string();
    let (code, _, stderr) = run(
        &["serve", "--data-dir", &data, "--listen", &addr, "--no-tls"],
        &[(
            "WABRIDGE_ADMIN_TOKEN",
            "t0ken-for-the-cli-tests-0123456789abcdef",
        )],
        tmp.path(),
    );
    assert_eq!(code, 1, "{stderr}");
    assert_one_clear_line(&stderr, &addr);

    // Without WABRIDGE_ADMIN_TOKEN, a start that fails does not use up the one
    // showing of a generated token: the first start that serves prints it.
    let data = tmp.path().join("fresh").display().to_string();
    let (code, stdout, stderr) = run(
        &["serve", "--data-dir", &data, "--listen", &addr, "--no-tls"],
        &[],
        tmp.path(),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(!stdout.contains("admin token"), "{stdout}");
    drop(taken);
    let serve = Serve::start(
        &["serve", "--data-dir", &data, "--listen", &addr, "--no-tls"],
        &[],
    );
    assert!(
        serve.stdout.iter().any(|l| l.starts_with("admin token")),
        "{:?}",
        serve.stdout
    );
}

#[test]
fn tls_uses_a_self_signed_certificate_generated_once_and_reused() {
    let meta = FakeMeta::start();
    let mut gw = Gateway::start_with(
        &meta,
        Options {
            tls: true,
            ..Options::default()
        },
    );
    assert!(gw.base.starts_with("https://"), "{}", gw.base);
    let cert_path = gw.data_dir().join("tls-cert.pem");
    let key_path = gw.data_dir().join("tls-key.pem");
    let cert = std::fs::read(&cert_path).expect("the generated certificate is in the data dir");
    let key_mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(key_mode & 0o077, 0, "the private key is readable by others");

    let trusting = |pem: &[u8]| {
        let root = ureq::tls::Certificate::from_pem(pem).unwrap();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent()
    };
    let agent = trusting(&cert);
    let healthz = |agent: &ureq::Agent, base: &str| {
        agent
            .get(format!("{base}/healthz"))
            .call()
            .map(|r| r.status().as_u16())
    };
    assert_eq!(healthz(&agent, &gw.base).unwrap(), 200);
    let me = agent.get(format!("{}/api/v1/me", gw.base)).call().unwrap();
    assert_eq!(me.status(), 401);
    let header = |name: &str| {
        me.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        header("strict-transport-security").as_deref(),
        Some("max-age=31536000")
    );
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    let port = gw.base.rsplit(':').next().unwrap().to_string();
    assert_eq!(
        healthz(&agent, &format!("https://localhost:{port}")).unwrap(),
        200
    );
    // Plain HTTP and a client that trusts some other certificate get nowhere.
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    assert!(healthz(&trusting(stranger.cert.pem().as_bytes()), &gw.base).is_err());
    assert!(healthz(&client(), &gw.base.replace("https://", "http://")).is_err());

    gw.restart();
    assert_eq!(
        std::fs::read(&cert_path).unwrap(),
        cert,
        "the certificate must be reused, not regenerated"
    );
    assert_eq!(healthz(&agent, &gw.base).unwrap(), 200);
}

#[test]
fn wabridge_variables_work_like_flags() {
    let tmp = tempdir();
    let data = tmp.path().join("from-env");
    let listen = free_addr().to_string();
    let mut serve = Serve::start(
        &["serve"],
        &[
            ("WABRIDGE_DATA_DIR", data.to_str().unwrap()),
            ("WABRIDGE_LISTEN", &listen),
            ("WABRIDGE_NO_TLS", "true"),
            ("WABRIDGE_PUBLIC_URL", "https://wa.example.com"),
            (
                "WABRIDGE_ADMIN_TOKEN",
                "t0ken-from-the-environment-0123456789abcdef",
            ),
        ],
    );
    assert_eq!(serve.base, format!("http://{listen}"));
    assert!(data.join("wabridge.redb").exists());
    let mut resp = client()
        .get(format!("{}/api/v1/admin/config", serve.base))
        .header(
            "authorization",
            "Bearer t0ken-from-the-environment-0123456789abcdef",
        )
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let config: serde_json::Value = resp.body_mut().read_json().unwrap();
    assert_eq!(
        config["webhookUrl"], "https://wa.example.com/plugins/appmixer/whatsapp/events",
        "{config}"
    );
    let exit = serve.terminate();
    assert!(exit.success(), "{exit:?}: {}", serve.stderr());
    assert!(!serve.stderr().contains("panicked"));
}

#[test]
fn without_an_admin_token_the_first_start_prints_one_that_keeps_working() {
    const SHOWN: &str = "admin token (shown once, keep it safe): ";
    let meta = FakeMeta::start();
    let mut gw = Gateway::start_with(
        &meta,
        Options {
            admin_token: None,
            ..Options::default()
        },
    );
    let shown: Vec<&String> = gw.stdout.iter().filter(|l| l.starts_with(SHOWN)).collect();
    assert_eq!(shown.len(), 1, "{:?}", gw.stdout);
    let token = gw.admin_token.clone();
    assert!(token.len() >= 32, "{token}");
    let config = |gw: &Gateway, token: &str| {
        gw.request("GET", "/api/v1/admin/config", Some(token), None)
            .0
    };
    assert_eq!(config(&gw, &token), 200);
    assert_eq!(config(&gw, "wbadm_not-the-token"), 401);

    gw.restart();
    let shown = gw.stdout.iter().filter(|l| l.starts_with(SHOWN)).count();
    assert_eq!(shown, 1, "shown again on restart: {:?}", gw.stdout);
    assert_eq!(
        config(&gw, &token),
        200,
        "the token stops working after a restart"
    );

    // Only a hash is kept: the token appears in no file of the data dir.
    let dir = gw.data_dir();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "data dir mode {:o}", mode & 0o777);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{} contains the admin token",
            path.display()
        );
    }
    assert!(files >= 1 && dir.join("wabridge.redb").exists());
}
