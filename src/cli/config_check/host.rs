//! What `serve` needs from this machine and tells the world: the data dir and
//! its disk, the listen address, the TLS files, the public URL, the delivery guard.

use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use super::Report;
use crate::cli::{client, healthcheck};
use crate::config::ServeArgs;
use crate::domain::disk::human_bytes;
use crate::domain::paths;
use crate::http::tls;
use crate::store;

/// Checks the data dir; returns whether a server holds it right now.
pub(super) fn check_data_dir(args: &ServeArgs, r: &mut Report) -> bool {
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
pub(super) fn check_disk(args: &ServeArgs, r: &mut Report) {
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

pub(super) fn check_listen(args: &ServeArgs, server_running: bool, r: &mut Report) {
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
            match healthcheck::check(&format!("{base}/healthz"), Duration::from_secs(3), false) {
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

pub(super) fn check_tls(args: &ServeArgs, r: &mut Report) {
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

pub(super) fn check_public_url(args: &ServeArgs, r: &mut Report) {
    let webhook = paths::public(&args.public_url, paths::EVENTS);
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

pub(super) fn check_delivery(args: &ServeArgs, r: &mut Report) {
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
