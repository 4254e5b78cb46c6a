//! `wabridge healthcheck`: GET /healthz on the configured listener; exit 0 when
//! it answers 200 `{"status":"ok"}`, 1 otherwise. For Docker's HEALTHCHECK,
//! systemd and monitors: reads the same settings (flags, env, file) as `serve`.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::ServeArgs;

use super::client;

#[derive(clap::Args, Debug, Clone)]
pub struct HealthcheckArgs {
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Check this base URL instead of the configured listen address.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Give up after this long.
    #[arg(long, default_value = "5s", value_parser = super::client::parse_timeout)]
    pub timeout: Duration,

    /// Accept any TLS certificate, also off loopback.
    #[arg(long)]
    pub insecure: bool,
}

pub fn run(args: &HealthcheckArgs) -> ExitCode {
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| client::local_base(&args.serve));
    let url = format!("{}/healthz", base.trim_end_matches('/'));
    match check(&url, args.timeout, args.insecure) {
        Ok(version) => {
            println!("healthy: {url} ({version})");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("unhealthy: {url}: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The version the server reports, or why it is not healthy.
pub fn check(url: &str, timeout: Duration, insecure: bool) -> Result<String, String> {
    let agent = client::agent(url, timeout, insecure);
    let mut resp = agent.get(url).call().map_err(|e| client::describe(&e))?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_json()
        .unwrap_or_default();
    if status != 200 || body["status"] != "ok" {
        return Err(format!("HTTP {status} {body}"));
    }
    Ok(body["version"]
        .as_str()
        .unwrap_or("unknown version")
        .to_string())
}
