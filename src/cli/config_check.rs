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

mod database;
mod host;

use std::process::ExitCode;

use clap::{Args, Command};

use crate::config::{self, Layered, Origin, ServeArgs};
use crate::domain::ids::admin_token_problem;

use super::client;
use database::check_database;
use host::{check_data_dir, check_delivery, check_disk, check_listen, check_public_url, check_tls};

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
