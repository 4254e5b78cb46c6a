//! Configuration in one place: flags > `WABRIDGE_*` > the TOML file > defaults,
//! and `wabridge config check`, which shows the result and every problem.

use crate::cli::run;
use crate::support::fake_meta::{FakeMeta, APP_SECRET};
use crate::support::gateway::{Gateway, Options, ADMIN_TOKEN, VERIFY_TOKEN};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wabridge-cc-")
        .tempdir()
        .unwrap()
}

/// The row of a setting in the table `config check` prints: (value, from).
fn row(out: &str, setting: &str) -> (String, String) {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(setting))
        .unwrap_or_else(|| panic!("no row {setting} in:\n{out}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    (cols[1].to_string(), cols[2..].join(" "))
}

#[test]
fn config_check_catches_a_missing_secret_and_a_bad_certificate_path() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let args = [
        "config",
        "check",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/fullchain.pem",
        "--tls-key",
        "/nonexistent/privkey.pem",
    ];
    let (code, out, err) = run(&args, &[], dir.path());
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("cannot read the TLS certificate /nonexistent/fullchain.pem"),
        "{out}"
    );
    assert!(
        out.contains("cannot read the TLS private key /nonexistent/privkey.pem"),
        "{out}"
    );
    assert!(out.contains("no clientSecret"), "{out}");
    assert!(
        out.contains("PUT /api/v1/admin/config"),
        "says how to fix it:\n{out}"
    );
}

#[test]
fn config_check_reads_the_secret_from_the_database_or_asks_the_running_server() {
    let meta = FakeMeta::start();
    let mut gw = Gateway::start_with(&meta, Options::default());
    let data = gw.data_dir().display().to_string();
    let listen = gw.base.rsplit("//").next().unwrap().to_string();
    let args = [
        "config",
        "check",
        "--data-dir",
        &data,
        "--listen",
        &listen,
        "--no-tls",
    ];
    let with_token = [("WABRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)];

    // Running, not configured yet: asked with the admin token, the server says no secret.
    let (code, out, _) = run(&args, &with_token, std::path::Path::new("/"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("held by the running server"), "{out}");
    assert!(out.contains("no clientSecret is stored"), "{out}");
    // Without the token it cannot know, and says so.
    let (_, out, _) = run(&args, &[], std::path::Path::new("/"));
    assert!(out.contains("set WABRIDGE_ADMIN_TOKEN"), "{out}");

    gw.configure();
    let (status, _) = gw.admin(
        "PUT",
        "/api/v1/admin/config",
        Some(&serde_json::json!({"requireOpenWindow": true})),
    );
    assert_eq!(status, 200);
    let (code, out, _) = run(&args, &with_token, std::path::Path::new("/"));
    assert!(!out.contains("no clientSecret"), "{out}");
    assert_eq!(row(&out, "requireOpenWindow").0, "on:", "{out}");
    assert!(
        out.contains("clientSecret") && out.contains("set (masked)"),
        "{out}"
    );
    assert_eq!(code, 0, "{out}");
    for secret in [ADMIN_TOKEN, APP_SECRET, VERIFY_TOKEN] {
        assert!(!out.contains(secret), "{secret} shown:\n{out}");
    }

    // Stopped: the database is opened read-only.
    assert!(gw.terminate().success());
    let (code, out, _) = run(&args, &[], std::path::Path::new("/"));
    // The version this build writes.
    let schema = format!("schema {}", wabridge::store::tables_schema_version());
    assert!(out.contains(&schema), "{out}");
    assert_eq!(
        row(&out, "requireOpenWindow").0,
        "on:",
        "read from the file too:\n{out}"
    );
    assert!(!out.contains("no clientSecret"), "{out}");
    assert_eq!(code, 0, "{out}");
    for secret in [APP_SECRET, VERIFY_TOKEN] {
        assert!(!out.contains(secret), "{secret} shown:\n{out}");
    }
}

#[test]
fn flags_win_over_variables_which_win_over_the_file_which_wins_over_defaults() {
    let dir = tempdir();
    let file = dir.path().join("wabridge.toml");
    std::fs::write(
        &file,
        r#"
listen = "127.0.0.1:1"
public_url = "https://from-file.example"
delivery-timeout = "7s"
webhook_allow_net = ["10.0.0.0/8", "127.0.0.0/8"]
no_tls = true
lisen = "typo"
"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = [
        "config",
        "check",
        "--config",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let envs = [
        ("WABRIDGE_PUBLIC_URL", "https://from-env.example"),
        ("WABRIDGE_LISTN", "x"),
    ];
    let (code, out, err) = run(&args, &envs, dir.path());
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(row(&out, "--listen"), ("127.0.0.1:0".into(), "flag".into()));
    assert_eq!(
        row(&out, "--public-url"),
        (
            "https://from-env.example".into(),
            "env WABRIDGE_PUBLIC_URL".into()
        )
    );
    assert_eq!(
        row(&out, "--delivery-timeout"),
        ("7s".into(), "config file".into())
    );
    assert_eq!(
        row(&out, "--webhook-allow-net"),
        ("10.0.0.0/8,127.0.0.0/8".into(), "config file".into())
    );
    assert_eq!(row(&out, "--no-tls"), ("true".into(), "config file".into()));
    assert_eq!(
        row(&out, "--graph-version"),
        ("v25.0".into(), "default".into())
    );
    assert!(out.contains("unknown key `lisen`"), "{out}");
    assert!(
        out.contains("unknown environment variable WABRIDGE_LISTN"),
        "{out}"
    );

    // A bad value in the file: one line naming the file, exit 2, like a bad flag.
    std::fs::write(&file, "listen = \"not an address\"\n").unwrap();
    let (code, _, err) = run(
        &["serve", "--config", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(file.to_str().unwrap()) && err.contains("--listen"),
        "{err}"
    );
}

#[test]
fn serve_takes_settings_from_the_file_and_warns_about_unknown_keys() {
    let dir = tempdir();
    let file = dir.path().join("wabridge.toml");
    std::fs::write(
        &file,
        "max_body_bytes = 300\npublic_url = \"https://ignored.example\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let meta = FakeMeta::start();
    let gw = Gateway::start_with(
        &meta,
        Options {
            args: vec!["--config".into(), file.display().to_string()],
            ..Options::default()
        },
    );
    gw.configure();
    // From the file: bodies over 300 bytes are refused.
    let big = crate::support::payloads::single_text("111", "PN1", "wamid.big", &"x".repeat(400));
    assert_eq!(gw.post_webhook(&big).0, 413);
    // The flag (--public-url https://gateway.test) wins over the file.
    let (_, config) = gw.admin("GET", "/api/v1/admin/config", None);
    assert!(
        config["webhookUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://gateway.test/"),
        "{config}"
    );
    assert!(gw.logs("unknown key `colour`"), "{}", gw.log());
}

/// The settings the OAuth connector (token keeper, connect states), the
/// backoffice (idle sessions) and retention brought layer like every other
/// one, and the variables read outside the flags are not taken for typos.
#[test]
fn every_setting_of_every_part_layers_and_shows_in_config_check() {
    let dir = tempdir();
    let file = dir.path().join("wabridge.toml");
    std::fs::write(
        &file,
        r#"
retention = "14d"
token-check-interval = "2h"
connect_state_ttl = "45m"
admin_idle_timeout = "20m"
"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = [
        "config",
        "check",
        "--config",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--admin-idle-timeout",
        "5m",
    ];
    let envs = [
        ("WABRIDGE_CONNECT_STATE_TTL", "1h"),
        ("WABRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
        ("WABRIDGE_CLIENT_SECRET", APP_SECRET),
        ("WABRIDGE_PURGE_DATA", "no"),
    ];
    let (_, out, err) = run(&args, &envs, dir.path());
    assert_eq!(
        row(&out, "--retention"),
        ("14d".into(), "config file".into())
    );
    assert_eq!(
        row(&out, "--token-check-interval"),
        ("2h".into(), "config file".into())
    );
    assert_eq!(
        row(&out, "--connect-state-ttl"),
        ("1h".into(), "env WABRIDGE_CONNECT_STATE_TTL".into())
    );
    assert_eq!(
        row(&out, "--admin-idle-timeout"),
        ("5m".into(), "flag".into())
    );
    assert!(!out.contains("unknown"), "stdout:\n{out}\nstderr:\n{err}");
    assert!(!out.contains(ADMIN_TOKEN), "{out}");
    assert!(!out.contains(APP_SECRET), "{out}");

    // The file's values are checked like flags.
    std::fs::write(&file, "retention = \"3d\"\n").unwrap();
    let (code, _, err) = run(
        &["serve", "--config", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--retention") && err.contains("7d"), "{err}");
    std::fs::write(&file, "token_check_interval = \"0s\"\n").unwrap();
    let (code, _, err) = run(
        &["serve", "--config", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--token-check-interval"), "{err}");
}
