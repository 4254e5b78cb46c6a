//! `wabridge simulate`: sends correctly signed, Meta-format webhook events of
//! every kind to a running wabridge, like Stripe's CLI does for its webhooks,
//! so a flow can be tried without a Meta account; with `--rate 0` and
//! `--concurrency`, it is also the driver of our benchmarks.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::domain::ids::{hex, random_bytes};
use crate::domain::paths::EVENTS as EVENTS_PATH;
use crate::domain::signature::sign_meta;
use crate::meta::field_samples::{field_sample, FIELD_SAMPLES};
use crate::meta::samples::{sample, SampleContext, SampleKind};

use super::client;

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
    #[arg(
        long,
        env = "WABRIDGE_CLIENT_SECRET",
        hide_env_values = true,
        required_unless_present = "sandbox_key"
    )]
    pub secret: Option<String>,

    /// Instead of --secret: the API key of a sandbox account (made in the
    /// backoffice or with POST /api/v1/admin/accounts {"sandbox": true}). The
    /// events then go to the gateway's /api/v1/sandbox/events with it, for the
    /// sandbox's WABA and number, and need no Meta App.
    #[arg(long, env = "WABRIDGE_SANDBOX_KEY", hide_env_values = true)]
    pub sandbox_key: Option<String>,

    /// The WhatsApp Business Account ID the events belong to (`entry[].id`)
    /// [default: 100000000000001, or the sandbox's].
    #[arg(long)]
    pub waba: Option<String>,

    /// The business phone number's ID (`metadata.phone_number_id`)
    /// [default: 100000000000002, or the sandbox's].
    #[arg(long)]
    pub phone_number_id: Option<String>,

    /// The business phone number as users see it [default: 15550001111, or
    /// the sandbox's].
    #[arg(long)]
    pub display_phone_number: Option<String>,

    /// The user's phone number (`wa_id`, `from`, `recipient_id`).
    #[arg(long, default_value = "15550009999")]
    pub from: String,

    /// The user's business-scoped user ID (BSUID); default `US.<from>`.
    #[arg(long)]
    pub user_id: Option<String>,

    /// The user's profile name.
    #[arg(long, default_value = "Simulated User")]
    pub name: String,

    /// Which events: `all` (every message and status kind), `messages`,
    /// `statuses`, `fields` (one sample of every other Meta field), or a list of
    /// kinds (text, image, video, audio, document, sticker, location, contacts,
    /// button-reply, list-reply, button, reaction, sent, delivered, read,
    /// failed) and field samples (calls, standby, account_update, …).
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
    #[arg(long, default_value = "10s", value_parser = super::client::parse_timeout)]
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

/// One thing to send: a message or status of a kind, or a Meta field's sample.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pick {
    Kind(SampleKind),
    Field(&'static str),
}

impl Pick {
    fn name(self) -> &'static str {
        match self {
            Pick::Kind(k) => k.name(),
            Pick::Field(f) => f,
        }
    }

    /// `--events`: the kinds' words, plus `fields` and each field sample's name.
    fn parse_list(raw: &str) -> Result<Vec<Pick>, String> {
        let mut out = Vec::new();
        for word in raw.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "fields" {
                out.extend(FIELD_SAMPLES.iter().map(|(n, _)| Pick::Field(n)));
            } else if let Some((n, _)) = FIELD_SAMPLES.iter().find(|(n, _)| *n == word) {
                out.push(Pick::Field(n));
            } else {
                let kinds = SampleKind::parse_list(word).map_err(|e| {
                    format!(
                        "{e}; or fields, or one of the field samples: {}",
                        field_names()
                    )
                })?;
                out.extend(kinds.into_iter().map(Pick::Kind));
            }
        }
        if out.is_empty() {
            return Err("name at least one event kind".into());
        }
        Ok(out)
    }
}

fn field_names() -> String {
    FIELD_SAMPLES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A body ready to sign, with what to print for it.
struct Sample {
    pick: Pick,
    /// The message id a kind's event is about; empty for a field sample.
    message_id: String,
    body: Vec<u8>,
}

/// The `n`th webhook of a run. Statuses of one cycle through the picks are
/// about the same message; a field sample of a later cycle gets ids of its own
/// and an entry dated a second earlier per cycle, because the events Meta gives
/// no id are deduplicated by their content and entry time.
fn nth(ctx: &SampleContext, picks: &[Pick], run: &str, i: u64) -> Sample {
    let cycle = i / picks.len() as u64;
    match picks[(i % picks.len() as u64) as usize] {
        Pick::Kind(kind) => {
            let n = if kind.is_status() { cycle } else { i };
            let s = sample(ctx, kind, run, n);
            Sample {
                pick: Pick::Kind(kind),
                message_id: s.message_id,
                body: s.body,
            }
        }
        Pick::Field(name) => {
            let run = if cycle == 0 {
                run.to_string()
            } else {
                format!("{run}C{cycle}")
            };
            let secs = ctx.timestamp.saturating_sub(cycle);
            let body = field_sample(name, &ctx.waba_id, &run, secs).unwrap_or_default();
            Sample {
                pick: Pick::Field(name),
                message_id: String::new(),
                body: on_number(&body, ctx),
            }
        }
    }
}

/// A field sample's changes moved to `--phone-number-id`, so listeners that
/// filter on it see them as that number's. Indexing would add the keys a
/// change lacks, hence `get_mut`.
fn on_number(body: &[u8], ctx: &SampleContext) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let changes = v["entry"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter_map(|e| e["changes"].as_array_mut())
        .flatten();
    // Handovers name the number as `recipient`, every other field as `metadata`.
    let numbers = changes
        .filter_map(|c| c.get_mut("value"))
        .flat_map(|v| {
            let v = v.as_object_mut()?;
            Some(
                v.iter_mut()
                    .filter(|(k, _)| *k == "metadata" || *k == "recipient")
                    .filter_map(|(_, m)| m.as_object_mut())
                    .collect::<Vec<_>>(),
            )
        })
        .flatten();
    for m in numbers {
        m.insert("phone_number_id".into(), ctx.phone_number_id.clone().into());
        m.insert(
            "display_phone_number".into(),
            ctx.display_phone_number.clone().into(),
        );
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

struct Sent {
    pick: Pick,
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

/// Where the events go and how the gateway knows they may come in.
enum Via {
    /// Meta's webhook URL, signed with the app secret as Meta signs.
    Signed { url: String, secret: String },
    /// The sandbox's endpoint, with its account's API key.
    Sandbox { url: String, key: String },
}

impl Via {
    fn url(&self) -> &str {
        match self {
            Via::Signed { url, .. } | Via::Sandbox { url, .. } => url,
        }
    }

    /// The header that lets the body in, as sent (a key shown only by its start).
    fn credential(&self, body: &[u8], shown: bool) -> (&'static str, String) {
        match self {
            Via::Signed { secret, .. } => ("x-hub-signature-256", sign_meta(body, secret)),
            Via::Sandbox { key, .. } if shown => {
                let start: String = key.chars().take(8).collect();
                ("authorization", format!("Bearer {start}…"))
            }
            Via::Sandbox { key, .. } => ("authorization", format!("Bearer {key}")),
        }
    }

    fn hint(&self, status: Option<u16>) -> &'static str {
        match (self, status) {
            (Via::Signed { .. }, Some(401)) => "the gateway refused the signature: --secret must be the Meta App secret it has as clientSecret",
            (Via::Signed { .. }, Some(503)) => "the gateway has no clientSecret yet: set it with PUT /api/v1/admin/config",
            (Via::Sandbox { .. }, Some(401)) => "the gateway refused the key: --sandbox-key must be the sandbox account's API key",
            (Via::Sandbox { .. }, Some(409)) => "the key is not a sandbox account's: make one in the backoffice (Accounts) first",
            (_, Some(404)) => "no webhook endpoint there: --to must be the gateway's base URL",
            (_, None) => "the gateway did not answer: is it running, and is --to right (https or http)?",
            _ => "see the gateway's answer above",
        }
    }
}

/// The sandbox's WABA, number id and display number, as the gateway tells
/// the key's owner.
fn sandbox_number(agent: &ureq::Agent, base: &str, key: &str) -> Result<[String; 3], String> {
    let mut resp = agent
        .get(format!("{base}/api/v1/me"))
        .header("authorization", &format!("Bearer {key}"))
        .call()
        .map_err(|e| {
            format!(
                "cannot ask {base} about the sandbox key: {}",
                client::describe(&e)
            )
        })?;
    if resp.status() != 200 {
        return Err(format!(
            "{base} refused the sandbox key (HTTP {}): is it the sandbox account's API key?",
            resp.status()
        ));
    }
    let me: serde_json::Value = resp
        .body_mut()
        .read_json()
        .map_err(|e| format!("{base}/api/v1/me did not answer JSON: {e}"))?;
    let field = |name: &str| me["sandbox"][name].as_str().map(str::to_string);
    match (
        field("wabaId"),
        field("phoneNumberId"),
        field("displayPhoneNumber"),
    ) {
        (Some(waba), Some(phone), Some(display)) => Ok([waba, phone, display]),
        _ => Err("the key's account is not a sandbox account: use --secret for a real one".into()),
    }
}

fn simulate(args: &SimulateArgs) -> Result<bool, String> {
    let picks = Pick::parse_list(&args.events)?;
    let webhook_url = events_url(&args.to)?;
    // So slow a run's later sends would fall due past the clock's end and it
    // would stop short of --count: refused with the range instead.
    if !(args.rate == 0.0 || (1.0 / 86_400.0..=1e9).contains(&args.rate)) {
        return Err(
            "--rate must be 0 (as fast as the gateway answers) or from 0.0000116 (one a day) to 1e9 webhooks per second".into(),
        );
    }
    let agent = client::agent(&webhook_url, args.timeout, args.insecure);
    let (via, defaults) = match (&args.sandbox_key, &args.secret) {
        (Some(key), _) => {
            let base = base_of(&webhook_url);
            let number = sandbox_number(&agent, &base, key)?;
            let url = format!("{base}/api/v1/sandbox/events");
            (Via::Sandbox { url, key: key.clone() }, number)
        }
        (None, Some(secret)) if !secret.trim().is_empty() => (
            Via::Signed {
                url: webhook_url,
                secret: secret.clone(),
            },
            ["100000000000001", "100000000000002", "15550001111"].map(String::from),
        ),
        (None, _) => return Err("--secret (or WABRIDGE_CLIENT_SECRET) must be the Meta App secret the gateway has as clientSecret; without a Meta App, use --sandbox-key".into()),
    };
    let [waba, phone, display] = defaults;
    let url = via.url().to_string();
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| hex(&random_bytes(4)).to_uppercase());
    let ctx = SampleContext {
        waba_id: args.waba.clone().unwrap_or(waba),
        phone_number_id: args.phone_number_id.clone().unwrap_or(phone),
        display_phone_number: args.display_phone_number.clone().unwrap_or(display),
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
    let count = args.count.unwrap_or(picks.len() as u64);
    let nth = |i: u64| nth(&ctx, &picks, &run_id, i);
    if args.dry_run {
        for i in 0..count {
            let s = nth(i);
            let (name, value) = via.credential(&s.body, true);
            println!(
                "POST {url}\n{name}: {value}\n{}\n",
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
                    // A count so large its last sends fall due past the clock's end: never due.
                    let Some(due) = Duration::try_from_secs_f64(i as f64 / args.rate)
                        .ok()
                        .and_then(|after| started.checked_add(after))
                    else {
                        break;
                    };
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                let sent = send(&agent, &via, nth(i));
                if !args.quiet {
                    println!(
                        "{} {:<12} {} {}",
                        sent.status.map_or("---".to_string(), |s| s.to_string()),
                        sent.pick.name(),
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
    Ok(summarize(&results, elapsed, &via))
}

fn send(agent: &ureq::Agent, via: &Via, s: Sample) -> Sent {
    let (name, value) = via.credential(&s.body, false);
    let t = Instant::now();
    let result = agent
        .post(via.url())
        .header("content-type", "application/json")
        .header(name, &value)
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
        pick: s.pick,
        message_id: s.message_id,
        status,
        answer,
        latency: t.elapsed(),
    }
}

/// Prints the summary; true when every webhook got a 200.
fn summarize(results: &[Sent], elapsed: Duration, via: &Via) -> bool {
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
        eprintln!("not all webhooks were accepted: {}", via.hint(bad.status));
    }
    ok
}

/// The gateway's base URL (a reverse proxy's sub-path kept) from its webhook URL.
fn base_of(webhook_url: &str) -> String {
    webhook_url
        .strip_suffix(EVENTS_PATH)
        .unwrap_or(webhook_url)
        .trim_end_matches('/')
        .to_string()
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
    fn the_sandbox_endpoint_is_beside_the_webhook_under_any_sub_path() {
        for to in [
            "https://gw.example",
            "https://gw.example/wa/",
            "https://gw.example/plugins/appmixer/whatsapp/events",
        ] {
            let base = base_of(&events_url(to).unwrap());
            assert!(
                !base.ends_with('/') && !base.ends_with("events"),
                "{to}: {base}"
            );
        }
        assert_eq!(
            base_of(&events_url("https://gw.example/wa").unwrap()),
            "https://gw.example/wa"
        );
    }

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

    fn ctx() -> SampleContext {
        SampleContext {
            waba_id: "W1".into(),
            phone_number_id: "PN9".into(),
            display_phone_number: "15550001111".into(),
            from: "15550009999".into(),
            user_id: "US.15550009999".into(),
            name: "Sim".into(),
            timestamp: 1_800_000_000,
        }
    }

    #[test]
    fn fields_and_field_names_mix_with_the_kinds() {
        let picks = Pick::parse_list("text, calls,statuses").unwrap();
        assert_eq!(picks[0], Pick::Kind(SampleKind::Text));
        assert_eq!(picks[1], Pick::Field("calls"));
        assert_eq!(picks.len(), 2 + 4);
        assert_eq!(
            Pick::parse_list("fields").unwrap().len(),
            FIELD_SAMPLES.len()
        );
        let err = Pick::parse_list("telepathy").unwrap_err();
        assert!(err.contains("user_preferences"), "{err}");
        assert!(Pick::parse_list(" , ").is_err());
    }

    #[test]
    fn a_field_sample_is_moved_to_the_number_and_each_cycle_differs() {
        let picks = [
            Pick::Field("template_category_update"),
            Pick::Field("calls"),
        ];
        let first = nth(&ctx(), &picks, "R1", 1);
        let again = nth(&ctx(), &picks, "R1", 3);
        let calls: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
        let value = &calls["entry"][0]["changes"][0]["value"];
        assert_eq!(calls["entry"][0]["id"], "W1");
        assert_eq!(value["metadata"]["phone_number_id"], "PN9");
        assert!(value["calls"][0]["id"].as_str().unwrap().contains("SIMR1"));
        assert_ne!(first.body, again.body);
        let template_0 = nth(&ctx(), &picks, "R1", 0).body;
        let template_1 = nth(&ctx(), &picks, "R1", 2).body;
        assert_ne!(
            template_0, template_1,
            "id-less events differ by entry time"
        );
    }
}
