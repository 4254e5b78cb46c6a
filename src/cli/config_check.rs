//! `wabridge config check`: the effective configuration, where each setting
//! came from, secrets masked, and every problem found; exit 1 when there is one.
//!
//! It looks at what `serve` would use: the TLS files (readable, a certificate
//! and a key that fit), the listen address (free, or held by a running
//! wabridge), the public URL (what Meta will be told), the data dir (writable),
//! the secrets key (there, and the one the database's secrets were encrypted
//! with), and the database's settings: without a clientSecret no webhook from
//! Meta can be verified. No server holding the database: the file is opened read-only.
//! A server holding it: the server is asked (with `WABRIDGE_ADMIN_TOKEN`).

use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Command};

use crate::config::{self, Layered, Origin, ServeArgs};
use crate::domain::disk::human_bytes;
use crate::domain::ids::admin_token_problem;
use crate::http::tls;
use crate::store;
use crate::store::tables_schema_version;

use super::client;

#[derive(Default)]
struct Report {
    problems: Vec<String>,
    warnings: Vec<String>,
    notes: Vec<(String, String)>,
}

impl Report {
    fn problem(&mut self, s: impl Into<String>) {
        self.problems.push(s.into());
    }
    fn warning(&mut self, s: impl Into<String>) {
        self.warnings.push(s.into());
    }
    fn note(&mut self, k: &str, v: impl Into<String>) {
        self.notes.push((k.to_string(), v.into()));
    }
}

pub fn run(args: &ServeArgs, layered: &Layered) -> ExitCode {
    let mut r = Report::default();
    println!("wabridge {}", crate::VERSION);
    println!(
        "config file: {}",
        layered
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none (--config FILE or WABRIDGE_CONFIG to use one)".into())
    );
    print_settings(layered);
    for u in &layered.unknown {
        r.problem(u.clone());
    }
    if let Some(problem) = client::admin_token().and_then(|t| admin_token_problem(&t)) {
        r.problem(problem);
    }
    let server_running = check_data_dir(args, &mut r);
    check_listen(args, server_running, &mut r);
    check_tls(args, &mut r);
    check_public_url(args, &mut r);
    check_delivery(args, &mut r);
    check_disk(args, &mut r);
    check_database(args, server_running, &mut r);

    println!();
    let width = r.notes.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &r.notes {
        println!("{k:<width$}  {v}");
    }
    println!();
    if !r.problems.is_empty() {
        println!("problems:");
        for p in &r.problems {
            println!("  ✗ {p}");
        }
    }
    if !r.warnings.is_empty() {
        println!("warnings:");
        for w in &r.warnings {
            println!("  ! {w}");
        }
    }
    println!(
        "{} problem(s), {} warning(s)",
        r.problems.len(),
        r.warnings.len()
    );
    if r.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_settings(layered: &Layered) {
    let leaf = config::leaf(&layered.matches);
    let cmd = ServeArgs::augment_args(Command::new("serve"));
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        let value = match leaf.get_raw(id) {
            Some(values) => values
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(","),
            None => "-".into(),
        };
        let origin = layered.origin(id);
        let from = match (origin, arg.get_env()) {
            (Origin::Env, Some(env)) => format!("env {}", env.to_string_lossy()),
            (Origin::File, _) => "config file".to_string(),
            (o, _) => o.as_str().to_string(),
        };
        rows.push((format!("--{long}"), value, from));
    }
    let token = match client::admin_token() {
        Some(t) => format!("set, masked ({} characters)", t.chars().count()),
        None => "-".into(),
    };
    rows.push((
        "admin token".into(),
        token,
        if client::admin_token().is_some() {
            "env WABRIDGE_ADMIN_TOKEN".into()
        } else {
            "unset (the stored one, or one generated at first start)".into()
        },
    ));
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    println!();
    println!("{:<w0$}  {:<w1$}  from", "setting", "value");
    for (k, v, from) in rows {
        println!("{k:<w0$}  {v:<w1$}  {from}");
    }
}

/// Checks the data dir; returns whether a server holds it right now.
fn check_data_dir(args: &ServeArgs, r: &mut Report) -> bool {
    let dir = &args.data_dir;
    let lock = dir.join("wabridge.lock");
    let running = match File::open(&lock) {
        Ok(f) => match f.try_lock() {
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(_)) => false,
        },
        Err(_) => false,
    };
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => r.problem(format!("data dir {} is not a directory", dir.display())),
        Ok(m) => {
            let probe = dir.join(format!(".wabridge-config-check-{}", std::process::id()));
            match File::create(&probe) {
                Ok(_) => {
                    let _ = fs::remove_file(&probe);
                }
                Err(e) => r.problem(format!(
                    "data dir {} is not writable by this user: {e} (run config check as the service's user)",
                    dir.display()
                )),
            }
            let mode = std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777;
            if mode & 0o077 != 0 {
                r.warning(format!(
                    "data dir {} has mode {mode:o}: others can reach the database and the keys; serve makes it 0700 (or refuses to start when it may not)",
                    dir.display()
                ));
            }
            r.note(
                "data dir",
                format!(
                    "{} ({})",
                    dir.display(),
                    if running {
                        "in use by a running wabridge"
                    } else {
                        "no server running on it"
                    }
                ),
            );
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = nearest_existing(dir);
            let probe = parent.join(format!(".wabridge-config-check-{}", std::process::id()));
            match File::create(&probe) {
                Ok(_) => {
                    let _ = fs::remove_file(&probe);
                    r.note(
                        "data dir",
                        format!("{} (created at first start)", dir.display()),
                    );
                }
                Err(e) => r.problem(format!(
                    "data dir {} does not exist and cannot be created in {}: {e}",
                    dir.display(),
                    parent.display()
                )),
            }
        }
        Err(e) => r.problem(format!("data dir {}: {e}", dir.display())),
    }
    running
}

/// The data dir's free space against `--min-free-space`, as `serve` will see it.
fn check_disk(args: &ServeArgs, r: &mut Report) {
    let dir = nearest_existing(&args.data_dir);
    let reserve = args.min_free_space;
    match store::disk_space(dir) {
        Ok(space) => {
            r.note(
                "disk",
                format!(
                    "{} free of {}; {} kept in reserve (--min-free-space {reserve})",
                    human_bytes(space.free),
                    human_bytes(space.total),
                    human_bytes(reserve.bytes(space.total)),
                ),
            );
            if reserve.is_short(space) {
                r.problem(format!(
                    "the data dir's disk has {} free, less than --min-free-space {reserve}: Meta's webhooks would be refused with 503; free space or lower the reserve",
                    human_bytes(space.free)
                ));
            } else if reserve.bytes(space.total) == 0 {
                r.warning(
                    "--min-free-space is 0: a full disk is met by failing writes (503 until space is freed) instead of being refused ahead of time",
                );
            }
        }
        Err(e) => r.warning(format!(
            "cannot read the free space of {}: {e}; --min-free-space is not enforced there",
            dir.display()
        )),
    }
}

fn nearest_existing(dir: &Path) -> &Path {
    let mut p = dir;
    while !p.exists() {
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => return Path::new("."),
        }
    }
    p
}

fn check_listen(args: &ServeArgs, server_running: bool, r: &mut Report) {
    if server_running {
        r.note(
            "listen",
            format!("{} (held by the running wabridge)", args.listen),
        );
        return;
    }
    match TcpListener::bind(args.listen) {
        Ok(_) => r.note("listen", format!("{} (free)", args.listen)),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let base = client::local_base(args);
            match super::healthcheck::check(&format!("{base}/healthz"), Duration::from_secs(3), false) {
                Ok(v) => r.note(
                    "listen",
                    format!("{} (a wabridge answers there: {v})", args.listen),
                ),
                Err(_) => r.problem(format!(
                    "cannot listen on {}: the port is in use by another program",
                    args.listen
                )),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => r.problem(format!(
            "cannot listen on {}: {e} (ports below 1024 need root or CAP_NET_BIND_SERVICE; the systemd unit grants it)",
            args.listen
        )),
        Err(e) => r.problem(format!("cannot listen on {}: {e}", args.listen)),
    }
}

fn check_tls(args: &ServeArgs, r: &mut Report) {
    if args.no_tls {
        r.note(
            "tls",
            "off (--no-tls): plain HTTP, for use behind a reverse proxy",
        );
        return;
    }
    let (files, generated) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (
            tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            },
            false,
        ),
        _ => (
            tls::TlsFiles {
                cert: args.data_dir.join("tls-cert.pem"),
                key: args.data_dir.join("tls-key.pem"),
            },
            true,
        ),
    };
    if generated {
        r.warning(
            "TLS uses a self-signed certificate: Meta refuses it for the webhook; give --tls-cert/--tls-key or serve --no-tls behind a reverse proxy with a real certificate",
        );
        if !files.cert.exists() || !files.key.exists() {
            r.note(
                "tls",
                "self-signed, generated into the data dir at first start",
            );
            return;
        }
    }
    let mut readable = true;
    for (what, path) in [("certificate", &files.cert), ("private key", &files.key)] {
        if let Err(e) = File::open(path) {
            readable = false;
            r.problem(format!(
                "cannot read the TLS {what} {}: {e}",
                path.display()
            ));
        }
    }
    if readable {
        match tls::acceptor(&files) {
            Ok(_) => r.note(
                "tls",
                format!(
                    "{} + {} (load and fit together){}",
                    files.cert.display(),
                    files.key.display(),
                    if generated { ", self-signed" } else { "" }
                ),
            ),
            Err(e) => r.problem(format!("TLS: {e}")),
        }
    }
}

fn check_public_url(args: &ServeArgs, r: &mut Report) {
    let webhook = format!("{}/plugins/appmixer/whatsapp/events", args.public_url);
    r.note("webhook URL for Meta", webhook);
    let Ok(url) = url::Url::parse(&args.public_url) else {
        return;
    };
    if url.scheme() != "https" {
        r.warning(format!(
            "--public-url {} is not https: Meta only calls https webhook URLs",
            args.public_url
        ));
    }
    let local = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || !d.contains('.'),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => true,
    };
    if local {
        r.warning(format!(
            "--public-url {} is not a public name: Meta cannot reach it (set it to the https URL people and Meta use)",
            args.public_url
        ));
    }
}

fn check_delivery(args: &ServeArgs, r: &mut Report) {
    if let Some(problem) = args.edge_problem() {
        r.problem(problem);
    }
    if args.delivery_timeout.is_zero() {
        r.problem("--delivery-timeout is 0: every delivery would time out");
    }
    if args.retry_schedule.is_empty() {
        r.problem("--retry-schedule is empty");
    }
    for net in &args.webhook_allow_net {
        if net.prefix_len() == 0 {
            r.warning(format!(
                "--webhook-allow-net {net} lets listener URLs reach any address, this host's private services included"
            ));
        }
    }
}

const SET_SECRET: &str =
    "set it with PUT /api/v1/admin/config {\"clientSecret\": \"<Meta App secret>\"}";

fn check_database(args: &ServeArgs, server_running: bool, r: &mut Report) {
    let path = args.data_dir.join("wabridge.redb");
    if !server_running && !path.exists() {
        check_secrets_key(args, Some(None), r);
        r.note(
            "database",
            format!("{} (created at first start)", path.display()),
        );
        r.problem(format!(
            "no clientSecret: the database does not exist yet, so Meta's webhooks cannot be verified (503) until you start wabridge and {SET_SECRET}"
        ));
        return;
    }
    let summary = if server_running {
        None
    } else {
        match store::inspect(&path) {
            Ok(s) => s,
            Err(e) => {
                r.problem(format!("database {}: {e}", path.display()));
                return;
            }
        }
    };
    let Some(s) = summary else {
        check_secrets_key(args, None, r);
        ask_server(args, r);
        return;
    };
    check_secrets_key(args, Some(s.key_check.as_deref()), r);
    let known = tables_schema_version();
    match s.schema_version {
        Some(v) if v > known => r.problem(format!(
            "the database has schema version {v}, written by a newer wabridge (this one knows {known})"
        )),
        None => r.problem(format!("{} has no schema version: not a wabridge database", path.display())),
        _ => {}
    }
    r.note(
        "database",
        format!(
            "{}: schema {}, {} accounts, {} listeners, {} events, {} deliveries queued",
            path.display(),
            s.schema_version.unwrap_or(0),
            s.rows_of("accounts"),
            s.rows_of("listeners"),
            s.rows_of("events"),
            s.rows_of("outbox"),
        ),
    );
    settings_report(
        &Stored {
            secret_set: !s.settings.client_secret.is_empty(),
            client_id: s.settings.client_id.clone(),
            verify_token_len: s.settings.verify_token.chars().count(),
            es_config_id: s.settings.es_config_id.clone(),
            require_open_window: s.settings.require_open_window,
        },
        r,
    );
    if !s.admin_token_set && client::admin_token().is_none() {
        r.note(
            "admin token",
            "none yet: the first start generates one and prints it once",
        );
    }
}

/// Where the secrets key is and whether it opens the database's secrets.
/// `key_check`: what the database stored for the key to open (`Some(None)`:
/// nothing sealed yet; `None`: not known, a server holds the database).
fn check_secrets_key(args: &ServeArgs, key_check: Option<Option<&str>>, r: &mut Report) {
    let key = store::locate_key(&args.data_dir, args.secrets_key.as_deref());
    let at = format!("{} ({})", key.path.display(), key.origin.describe());
    let found = match store::read_key(&key.path) {
        Ok(found) => found,
        Err(e) => {
            r.problem(format!("{e} (run config check as the service's user)"));
            return;
        }
    };
    let Some(found) = found else {
        match key_check {
            Some(None) => r.note("secrets key", format!("{at}: generated at first start")),
            Some(Some(_)) => r.problem(format!(
                "the secrets key {} is missing, but the database holds secrets encrypted with it: serve refuses to start; put the key file back or point --secrets-key (WABRIDGE_SECRETS_KEY) at it",
                key.path.display()
            )),
            None => r.problem(format!(
                "the secrets key {} is missing: the running server has it in memory, but the next start fails; put the key file back (docs/security.md)",
                key.path.display()
            )),
        }
        return;
    };
    if key.origin != store::KeyOrigin::Credential {
        if let Ok(m) = fs::metadata(&key.path) {
            let mode = std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777;
            if mode & 0o077 != 0 {
                r.warning(format!(
                    "the secrets key {} has mode {mode:o}: others can read it; serve makes it 0600",
                    key.path.display()
                ));
            }
        }
    }
    match key_check {
        Some(Some(check)) if !store::key_opens(&found, check) => r.problem(format!(
            "the secrets key {} is not the key the database's secrets were encrypted with: serve refuses to start; put the right key file there",
            key.path.display()
        )),
        Some(Some(_)) => r.note("secrets key", format!("{at}: opens the database's secrets")),
        _ => r.note("secrets key", at),
    }
}

/// The admin's settings as config check reports them: secrets only as set or not.
struct Stored {
    secret_set: bool,
    client_id: String,
    verify_token_len: usize,
    es_config_id: String,
    require_open_window: bool,
}

fn settings_report(s: &Stored, r: &mut Report) {
    let Stored {
        secret_set,
        ref client_id,
        verify_token_len,
        ref es_config_id,
        require_open_window,
    } = *s;
    r.note(
        "clientId",
        if client_id.is_empty() {
            "-"
        } else {
            client_id.as_str()
        },
    );
    r.note(
        "clientSecret",
        if secret_set {
            "set (masked)"
        } else {
            "NOT SET"
        },
    );
    r.note(
        "verifyToken",
        if verify_token_len > 0 {
            format!("set, masked ({verify_token_len} characters)")
        } else {
            "-".into()
        },
    );
    r.note(
        "esConfigId",
        if es_config_id.is_empty() {
            "-"
        } else {
            es_config_id.as_str()
        },
    );
    r.note(
        "requireOpenWindow",
        if require_open_window {
            "on: free-form sends outside the 24-hour window are refused (409)"
        } else {
            "off: such sends go out with window \"closed\" and a warning"
        },
    );
    if !secret_set {
        r.problem(format!(
            "no clientSecret is stored: Meta's webhooks cannot be verified and get 503; {SET_SECRET}"
        ));
    }
    if client_id.is_empty() {
        r.warning("no clientId (the Meta App ID): accounts cannot be added or connected yet");
    }
    if verify_token_len == 0 {
        r.warning(
            "no verifyToken: Meta's webhook verification (GET …/events) fails until it is set",
        );
    }
}

/// The server holds the database: ask it what the admin has configured.
fn ask_server(args: &ServeArgs, r: &mut Report) {
    r.note("database", "held by the running server; asking it");
    let Some(token) = client::admin_token() else {
        r.warning("a running server holds the database, so whether clientSecret is set cannot be read here: set WABRIDGE_ADMIN_TOKEN to let config check ask the server");
        return;
    };
    let url = format!("{}/api/v1/admin/config", client::local_base(args));
    let agent = client::agent(&url, Duration::from_secs(5), false);
    let resp = agent
        .get(&url)
        .header("authorization", &format!("Bearer {token}"))
        .call();
    let mut resp = match resp {
        Ok(resp) => resp,
        Err(e) => {
            r.warning(format!(
                "cannot ask the running server at {url}: {}",
                client::describe(&e)
            ));
            return;
        }
    };
    match resp.status().as_u16() {
        200 => {
            let v: serde_json::Value = resp.body_mut().read_json().unwrap_or_default();
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            settings_report(
                &Stored {
                    secret_set: v["clientSecretSet"].as_bool().unwrap_or(false),
                    client_id: text("clientId"),
                    verify_token_len: text("verifyToken").chars().count(),
                    es_config_id: text("esConfigId"),
                    require_open_window: v["requireOpenWindow"].as_bool().unwrap_or(false),
                },
                r,
            );
        }
        401 => r.problem("WABRIDGE_ADMIN_TOKEN is not the running server's admin token"),
        s => r.warning(format!("the running server answered HTTP {s} at {url}")),
    }
}
