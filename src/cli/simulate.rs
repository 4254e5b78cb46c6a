//! `wabridge simulate`: sends correctly signed, Meta-format webhook events of
//! every kind to a running wabridge, like Stripe's CLI does for its webhooks,
//! so a flow can be tried without a Meta account; with `--rate 0` and
//! `--concurrency`, it is also the driver of our benchmarks.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::domain::ids::{hex, random_bytes};
use crate::domain::signature::sign_meta;
use crate::meta::samples::{sample, Sample, SampleContext, SampleKind};

use super::client;

/// The path of Meta's webhook on a wabridge.
const EVENTS_PATH: &str = "/plugins/appmixer/whatsapp/events";

#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// The wabridge to send to: its base URL (the webhook path is added) or the
    /// full webhook URL.
    #[arg(
        long,
        env = "WABRIDGE_SIMULATE_TO",
        default_value = "https://127.0.0.1:8443",
        value_name = "URL"
    )]
    pub to: String,

    /// The Meta App secret the gateway checks signatures with (its clientSecret).
    #[arg(long, env = "WABRIDGE_CLIENT_SECRET", hide_env_values = true)]
    pub secret: String,

    /// The WhatsApp Business Account ID the events belong to (`entry[].id`).
    #[arg(long, default_value = "100000000000001")]
    pub waba: String,

    /// The business phone number's ID (`metadata.phone_number_id`).
    #[arg(long, default_value = "100000000000002")]
    pub phone_number_id: String,

    /// The business phone number as users see it.
    #[arg(long, default_value = "15550001111")]
    pub display_phone_number: String,

    /// The user's phone number (`wa_id`, `from`, `recipient_id`).
    #[arg(long, default_value = "15550009999")]
    pub from: String,

    /// The user's business-scoped user ID (BSUID); default `US.<from>`.
    #[arg(long)]
    pub user_id: Option<String>,

    /// The user's profile name.
    #[arg(long, default_value = "Simulated User")]
    pub name: String,

    /// Which events: `all`, `messages`, `statuses`, or a list of text, image,
    /// video, audio, document, sticker, location, contacts, button-reply,
    /// list-reply, button, reaction, sent, delivered, read, failed.
    #[arg(long, default_value = "all")]
    pub events: String,

    /// How many webhooks to send, one event each, cycling through the kinds
    /// (default: one of each kind).
    #[arg(long)]
    pub count: Option<u64>,

    /// Webhooks per second, in all (0: as fast as the gateway answers).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,

    /// Webhooks in flight at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,

    /// Keeps event ids across runs (to see Meta's redeliveries deduplicated);
    /// default: new ids every run.
    #[arg(long)]
    pub run_id: Option<String>,

    /// How long one webhook may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Accept any TLS certificate, also off loopback.
    #[arg(long)]
    pub insecure: bool,

    /// Print the signed bodies instead of sending them.
    #[arg(long)]
    pub dry_run: bool,

    /// Only the summary, not one line per webhook.
    #[arg(long, short)]
    pub quiet: bool,
}

struct Sent {
    kind: SampleKind,
    message_id: String,
    status: Option<u16>,
    answer: String,
    latency: Duration,
}

pub fn run(args: &SimulateArgs) -> ExitCode {
    match simulate(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("wabridge: simulate: {e}");
            ExitCode::from(2)
        }
    }
}

fn simulate(args: &SimulateArgs) -> Result<bool, String> {
    let kinds = SampleKind::parse_list(&args.events)?;
    let url = events_url(&args.to)?;
    if args.secret.trim().is_empty() {
        return Err("--secret (or WABRIDGE_CLIENT_SECRET) must be the Meta App secret the gateway has as clientSecret".into());
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        return Err("--rate must be 0 or more webhooks per second".into());
    }
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| hex(&random_bytes(4)).to_uppercase());
    let ctx = SampleContext {
        waba_id: args.waba.clone(),
        phone_number_id: args.phone_number_id.clone(),
        display_phone_number: args.display_phone_number.clone(),
        from: args.from.clone(),
        user_id: args
            .user_id
            .clone()
            .unwrap_or_else(|| format!("US.{}", args.from)),
        name: args.name.clone(),
        timestamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let count = args.count.unwrap_or(kinds.len() as u64);
    let nth = |i: u64| -> Sample {
        let kind = kinds[(i % kinds.len() as u64) as usize];
        // Statuses of one cycle through the kinds are about the same message.
        let n = if kind.is_status() {
            i / kinds.len() as u64
        } else {
            i
        };
        sample(&ctx, kind, &run_id, n)
    };
    if args.dry_run {
        for i in 0..count {
            let s = nth(i);
            println!(
                "POST {url}\nx-hub-signature-256: {}\n{}\n",
                sign_meta(&s.body, &args.secret),
                String::from_utf8_lossy(&s.body)
            );
        }
        return Ok(true);
    }
    if !args.quiet {
        println!(
            "sending {count} webhook(s) to {url} (WABA {}, phone number ID {}, run {run_id})",
            ctx.waba_id, ctx.phone_number_id
        );
    }
    let agent = client::agent(&url, args.timeout, args.insecure);
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<Sent>> = Mutex::new(Vec::with_capacity(count.min(1 << 20) as usize));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.concurrency {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                if args.rate > 0.0 {
                    let due = started + Duration::from_secs_f64(i as f64 / args.rate);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                let sent = send(&agent, &url, &args.secret, nth(i));
                if !args.quiet {
                    println!(
                        "{} {:<12} {} {}",
                        sent.status.map_or("---".to_string(), |s| s.to_string()),
                        sent.kind.name(),
                        sent.message_id,
                        sent.answer
                    );
                }
                if let Ok(mut r) = results.lock() {
                    r.push(sent);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let results = results.into_inner().unwrap_or_default();
    Ok(summarize(&results, elapsed))
}

fn send(agent: &ureq::Agent, url: &str, secret: &str, s: Sample) -> Sent {
    let signature = sign_meta(&s.body, secret);
    let t = Instant::now();
    let result = agent
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &signature)
        .send(&s.body[..]);
    let (status, answer) = match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            (Some(status), text.chars().take(200).collect())
        }
        Err(e) => (None, client::describe(&e)),
    };
    Sent {
        kind: s.kind,
        message_id: s.message_id,
        status,
        answer,
        latency: t.elapsed(),
    }
}

/// Prints the summary; true when every webhook got a 200.
fn summarize(results: &[Sent], elapsed: Duration) -> bool {
    let mut by_status: std::collections::BTreeMap<String, u64> = Default::default();
    for r in results {
        *by_status
            .entry(r.status.map_or("no answer".into(), |s| format!("HTTP {s}")))
            .or_default() += 1;
    }
    let mut latencies: Vec<Duration> = results.iter().map(|r| r.latency).collect();
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "sent {} webhook(s) in {:.2} s ({:.1}/s): {}; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        results.len(),
        secs,
        results.len() as f64 / secs,
        by_status
            .iter()
            .map(|(k, v)| format!("{v}× {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
    let ok = results.iter().all(|r| r.status == Some(200));
    if let Some(bad) = results.iter().find(|r| r.status != Some(200)) {
        let hint = match bad.status {
            Some(401) => "the gateway refused the signature: --secret must be the Meta App secret it has as clientSecret",
            Some(503) => "the gateway has no clientSecret yet: set it with PUT /api/v1/admin/config",
            Some(404) => "no webhook endpoint there: --to must be the gateway's base URL",
            None => "the gateway did not answer: is it running, and is --to right (https or http)?",
            _ => "see the gateway's answer above",
        };
        eprintln!("not all webhooks were accepted: {hint}");
    }
    ok
}

/// The base URL gets Meta's webhook path; a full webhook URL is kept.
fn events_url(to: &str) -> Result<String, String> {
    let url = url::Url::parse(to).map_err(|e| format!("--to {to:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("--to must be an http:// or https:// URL".into());
    }
    let trimmed = to.trim_end_matches('/');
    if url.path() == "/" || url.path().is_empty() {
        Ok(format!("{trimmed}{EVENTS_PATH}"))
    } else {
        Ok(trimmed.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_webhook_path() {
        assert_eq!(
            events_url("https://127.0.0.1:8443/").unwrap(),
            "https://127.0.0.1:8443/plugins/appmixer/whatsapp/events"
        );
        assert_eq!(
            events_url("http://gw/plugins/appmixer/whatsapp/events").unwrap(),
            "http://gw/plugins/appmixer/whatsapp/events"
        );
        assert!(events_url("ftp://x").is_err());
    }
}
