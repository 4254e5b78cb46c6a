//! Ingest benchmark: the real release binary on loopback, many concurrent
//! keep-alive connections POSTing correctly signed webhooks: single messages,
//! or a mix of every field Meta sends, or single messages with call events
//! alongside.
//!
//! Reports durable ingests/s (every 200 is a committed, fsynced transaction),
//! ingest latency (POST → 200), end-to-end latency (POST start → the flow
//! webhook receives the delivery), deliveries/s, the gateway's peak RSS and
//! who used the CPU (gateway, load generator, everything else on the machine);
//! in the calls scenario, the end-to-end latency of call events.
//!
//! ```text
//! cargo build --release && cargo bench --bench ingest
//! ```
//!
//! Knobs (environment):
//! - `WABRIDGE_BENCH_CONNECTIONS` concurrent keep-alive connections (default 128)
//! - `WABRIDGE_BENCH_SECS` seconds of load per scenario (default 15; a default run takes about 35 s)
//! - `WABRIDGE_BENCH_REQUESTS` stop a scenario after this many POSTs (default: no cap)
//! - `WABRIDGE_BENCH_RATE` offered POSTs/s over all connections (default 0: as fast as answered)
//! - `WABRIDGE_BENCH_DRAIN_SECS` longest wait for outstanding deliveries (default 30)
//! - `WABRIDGE_BENCH_SCENARIOS` comma list of `deliver`, `ingest`, `mixed`, `calls` (default all)
//! - `WABRIDGE_BENCH_CALL_RATE` call events/s in the calls scenario (default 20); its
//!   ordinary load is paced at `WABRIDGE_BENCH_RATE`, or 5,000/s when that is 0
//! - `WABRIDGE_BENCH_RUNS` repetitions of each scenario (default 1)
//! - `WABRIDGE_BENCH_DELIVERY_CONCURRENCY` the gateway's `--delivery-concurrency` (default: its own)
//! - `WABRIDGE_BENCH_RUST_LOG` the gateway's `RUST_LOG` (default `info`, as in production)
//! - `WABRIDGE_BIN` the gateway executable (default: the one Cargo built, target/release/wabridge)

#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use support::fake_meta::{FakeMeta, APP_SECRET};
use support::gateway::{Gateway, Options};
use support::server::{Handler, Recorded, Reply, TestServer};
use support::{meta_signature, payloads};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use wabridge::meta::field_samples::{field_sample, FIELD_SAMPLES};

const WABA: &str = "111";
const PHONE: &str = "PN1";
/// Marks the send time in a message text: `bench:<seq>:<µs since EPOCH>;`.
const MARK: &str = "bench:";
/// The gateway's database writer thread, whose CPU time is shown on its own.
const WRITER_THREAD: &str = "wabridge-writer";

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the benchmark started (one clock for sender and receiver).
fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

struct Config {
    connections: usize,
    secs: u64,
    max_requests: u64,
    rate: f64,
    drain_secs: u64,
    scenarios: Vec<Scenario>,
    runs: usize,
    call_rate: f64,
    delivery_concurrency: Option<String>,
    rust_log: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// A `messages` listener on a counting receiver: ingest and delivery together.
    Deliver,
    /// No listener: pure ingest.
    Ingest,
    /// No listener; the bodies cycle through a sample of every field Meta
    /// sends (tests/fixtures/fields), many with several events.
    Mixed,
    /// Deliver, paced (5,000/s by default), with call events POSTed alongside
    /// to a second receiver: how soon a call reaches its flow under that load.
    Calls,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Deliver => "ingest+deliver",
            Scenario::Ingest => "ingest only",
            Scenario::Mixed => "mixed fields",
            Scenario::Calls => "calls+deliver",
        }
    }

    /// Whether a `messages` listener receives the ordinary load.
    fn delivers(self) -> bool {
        matches!(self, Scenario::Deliver | Scenario::Calls)
    }

    /// Offered POSTs/s of the ordinary load (0: as fast as answered).
    fn rate(self, cfg: &Config) -> f64 {
        match self {
            Scenario::Calls if cfg.rate == 0.0 => 5_000.0,
            _ => cfg.rate,
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}

impl Config {
    fn from_env() -> Config {
        let scenarios = env_or(
            "WABRIDGE_BENCH_SCENARIOS",
            "deliver,ingest,mixed,calls".to_string(),
        )
        .split(',')
        .map(|s| match s.trim() {
            "deliver" => Scenario::Deliver,
            "ingest" => Scenario::Ingest,
            "mixed" => Scenario::Mixed,
            "calls" => Scenario::Calls,
            other => panic!("unknown scenario {other:?}; use deliver, ingest, mixed, calls"),
        })
        .collect();
        Config {
            connections: env_or("WABRIDGE_BENCH_CONNECTIONS", 128usize).clamp(1, 1024),
            secs: env_or("WABRIDGE_BENCH_SECS", 15u64).clamp(1, 600),
            max_requests: env_or("WABRIDGE_BENCH_REQUESTS", 0u64),
            rate: env_or("WABRIDGE_BENCH_RATE", 0f64).max(0.0),
            drain_secs: env_or("WABRIDGE_BENCH_DRAIN_SECS", 30u64),
            scenarios,
            runs: env_or("WABRIDGE_BENCH_RUNS", 1usize).max(1),
            call_rate: env_or("WABRIDGE_BENCH_CALL_RATE", 20f64).max(0.1),
            delivery_concurrency: std::env::var("WABRIDGE_BENCH_DELIVERY_CONCURRENCY").ok(),
            rust_log: env_or("WABRIDGE_BENCH_RUST_LOG", "info".to_string()),
        }
    }
}

/// A flow webhook that only counts: arrival time minus the send time in the text.
struct CountingReceiver {
    server: TestServer,
    state: Arc<Mutex<Arrivals>>,
}

#[derive(Default)]
struct Arrivals {
    /// End-to-end latency of each first delivery, µs.
    e2e_us: Vec<u32>,
    /// Which sequence numbers arrived (a redelivery is counted once).
    seen: Vec<bool>,
    duplicates: u64,
    unreadable: u64,
    last_at_us: u64,
}

impl CountingReceiver {
    fn start() -> CountingReceiver {
        let state = Arc::new(Mutex::new(Arrivals::default()));
        let s = state.clone();
        let handler: Handler = Arc::new(move |req: &Recorded| {
            let at = now_us();
            let mark = parse_mark(&req.body);
            let mut st = s.lock().unwrap();
            st.last_at_us = at;
            match mark {
                Some((seq, sent)) => {
                    let seq = seq as usize;
                    if st.seen.len() <= seq {
                        st.seen.resize(seq + 1, false);
                    }
                    if st.seen[seq] {
                        st.duplicates += 1;
                    } else {
                        st.seen[seq] = true;
                        st.e2e_us
                            .push(at.saturating_sub(sent).min(u32::MAX as u64) as u32);
                    }
                }
                None => st.unreadable += 1,
            }
            Reply::status(200)
        });
        let server = TestServer::start("127.0.0.1:0".parse().unwrap(), handler).unwrap();
        CountingReceiver { server, state }
    }

    fn url(&self) -> String {
        format!("{}/hook", self.server.base_url())
    }

    fn delivered(&self) -> u64 {
        self.state.lock().unwrap().e2e_us.len() as u64
    }
}

/// `(seq, sent µs)` from `…bench:<seq>:<sent>;…` in a delivery body.
fn parse_mark(body: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let (seq, rest) = rest.split_once(':')?;
    let (sent, _) = rest.split_once(';')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}

/// Stands for the run in a field sample's ids until a POST gets its own.
const RUN_SLOT: &str = "RUNSLOT";
/// Stands for the entry time in a field sample (no sample has this number).
const TIME_SLOT: u64 = 4_102_444_800;

/// What the load threads POST.
#[derive(Clone)]
enum Bodies {
    /// One text message whose text carries the benchmark mark.
    Single(Arc<String>),
    /// The field samples in turn. Ids and entry times are new for every POST,
    /// since Meta's id-less events are deduplicated by content and entry time.
    Mixed(Arc<Vec<String>>),
}

impl Bodies {
    fn for_scenario(scenario: Scenario) -> Bodies {
        if scenario == Scenario::Mixed {
            let samples = FIELD_SAMPLES
                .iter()
                .map(|(name, _)| {
                    let body = field_sample(name, WABA, RUN_SLOT, TIME_SLOT).expect("sample");
                    String::from_utf8(body).expect("sample is UTF-8")
                })
                .collect();
            return Bodies::Mixed(Arc::new(samples));
        }
        let template = payloads::single_text(WABA, PHONE, "ID_SLOT", "TEXT_SLOT");
        Bodies::Single(Arc::new(
            String::from_utf8(template).expect("payload is UTF-8"),
        ))
    }

    fn body(&self, seq: u64, sent: u64) -> String {
        match self {
            Bodies::Single(template) => template
                .replace("ID_SLOT", &format!("wamid.bench.{seq}"))
                .replace("TEXT_SLOT", &format!("{MARK}{seq}:{sent};")),
            Bodies::Mixed(samples) => samples[(seq % samples.len() as u64) as usize]
                .replace(RUN_SLOT, &format!("B{seq}"))
                .replace(&TIME_SLOT.to_string(), &(1_700_000_000 + seq).to_string()),
        }
    }
}

/// A user's call to the business, as Meta announces it; the call id carries the mark.
fn call_body(seq: u64, sent: u64) -> String {
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "changes": [{"field": "calls", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE},
            "contacts": [{"profile": {"name": "Caller"}, "wa_id": "15550009999"}],
            "calls": [{
                "id": format!("wacid.{MARK}{seq}:{sent};"),
                "from": "15550009999",
                "to": "15550001111",
                "event": "connect",
                "direction": "USER_INITIATED",
                "timestamp": "1796212860",
                "session": {"sdp_type": "offer", "sdp": "v=0\r\n"}
            }]
        }}]}]
    });
    body.to_string()
}

/// The events the gateway took from one webhook: `"accepted":N` in its answer.
fn accepted(answer: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(answer).ok()?;
    let rest = &text[text.find("\"accepted\":")? + 11..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// POSTs one signed webhook; the events accepted, or what went wrong.
fn post(agent: &ureq::Agent, url: &str, body: &str) -> Result<u64, String> {
    let signature = meta_signature(body.as_bytes(), APP_SECRET);
    let answer = agent
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &signature)
        .send(body.as_bytes())
        .and_then(|mut r| {
            let status = r.status().as_u16();
            r.body_mut().read_to_vec().map(|b| (status, b))
        });
    match answer {
        Ok((200, b)) => match accepted(&b) {
            Some(n) if n > 0 => Ok(n),
            _ => Err(format!("nothing accepted: {}", String::from_utf8_lossy(&b))),
        },
        Ok((status, b)) => Err(format!(
            "unexpected answer {status}: {}",
            String::from_utf8_lossy(&b)
        )),
        Err(e) => Err(format!("POST failed: {e}")),
    }
}

/// CPU time of a process (all threads), from /proc/<pid>/stat, in seconds.
fn process_cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on every Linux we run on.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time of the calling thread, in seconds (schedstat: nanoseconds on CPU).
fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .unwrap_or(0.0)
}

/// CPU time of a process's threads called `name` (e.g. the database writer), in seconds.
fn threads_cpu_secs(pid: u32, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .sum()
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
fn machine_jiffies() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// ureq resolves before it looks in its connection pool, and with a timeout set
/// its default resolver does every lookup on a new thread. The gateway is at an IP
/// literal, so the load generator skips that: one thread spawn per POST would
/// make the generator, not the gateway, the thing measured.
#[derive(Debug, Default)]
struct LiteralResolver(DefaultResolver);

impl Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match uri.authority().map(|a| a.as_str().parse::<SocketAddr>()) {
            Some(Ok(addr)) => {
                let mut out = self.empty();
                out.push(addr);
                Ok(out)
            }
            _ => self.0.resolve(uri, config, timeout),
        }
    }
}

/// One keep-alive connection's client.
fn load_agent() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build();
    ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        LiteralResolver::default(),
    )
}

/// What one generator thread saw.
#[derive(Default)]
struct Load {
    ok_latencies_us: Vec<u32>,
    events: u64,
    errors: u64,
    cpu_secs: f64,
    last_done_us: u64,
}

struct Outcome {
    scenario: Scenario,
    run: usize,
    connections: usize,
    ok: u64,
    events: u64,
    errors: u64,
    ingest_secs: f64,
    ingest_lat: Vec<u32>,
    e2e: Vec<u32>,
    delivered: u64,
    delivered_during_load: u64,
    delivery_secs: f64,
    duplicates: u64,
    calls: Option<Calls>,
    rss_mib: f64,
    gateway_cores: f64,
    writer_cores: f64,
    generator_cores: f64,
    bench_cores: f64,
    machine_cores: f64,
}

/// The call events of the calls scenario, beside the ordinary load.
struct Calls {
    sent: u64,
    errors: u64,
    /// POST start → the call's receiver has it, µs, sorted.
    e2e: Vec<u32>,
    duplicates: u64,
}

/// POSTs call events at `rate`/s until `stop`: (accepted, failed).
fn post_calls(url: String, rate: f64, stop: Arc<AtomicBool>) -> (u64, u64) {
    let agent = load_agent();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next_at = Instant::now();
    let (mut sent, mut errors) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next_at > now {
            std::thread::sleep(next_at - now);
        }
        next_at += interval;
        match post(&agent, &url, &call_body(sent + errors, now_us())) {
            Ok(_) => sent += 1,
            Err(e) => {
                if errors == 0 {
                    eprintln!("call: {e}");
                }
                errors += 1;
            }
        }
    }
    (sent, errors)
}

fn run_scenario(cfg: &Config, scenario: Scenario, run: usize) -> Outcome {
    let meta = FakeMeta::start();
    let mut args = Vec::new();
    if let Some(c) = &cfg.delivery_concurrency {
        args.extend(["--delivery-concurrency".to_string(), c.clone()]);
    }
    let gw = Gateway::start_with(
        &meta,
        Options {
            args,
            env: vec![("RUST_LOG".into(), cfg.rust_log.clone())],
            ..Options::default()
        },
    );
    gw.configure();
    let (_, key) = gw.add_account(&meta, "bench-token", &[WABA]);
    let receiver = scenario.delivers().then(|| {
        let r = CountingReceiver::start();
        gw.add_listener(&key, WABA, "messages", &r.url());
        r
    });
    let call_receiver = (scenario == Scenario::Calls).then(|| {
        let r = CountingReceiver::start();
        let listener =
            serde_json::json!({"wabaId": WABA, "events": ["whatsapp.call"], "url": r.url()});
        let (status, body) = gw.request("POST", "/api/v1/listeners", Some(&key), Some(&listener));
        assert_eq!(status, 201, "{body}");
        r
    });
    let pid = gw.pid().expect("gateway is running");
    let url = gw.url("/plugins/appmixer/whatsapp/events");
    let bodies = Bodies::for_scenario(scenario);
    let rate = scenario.rate(cfg);

    let next_seq = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(cfg.connections + 1));
    let mut threads = Vec::new();
    for worker in 0..cfg.connections {
        let (url, bodies, next_seq, stop, barrier) = (
            url.clone(),
            bodies.clone(),
            next_seq.clone(),
            stop.clone(),
            barrier.clone(),
        );
        let cfg_connections = cfg.connections;
        let max = cfg.max_requests;
        // Paced: this connection sends one POST every `interval`, on schedule
        // even when an answer was slow (so the offered load stays the same).
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(cfg.connections as f64 / rate));
        let t = std::thread::Builder::new()
            .name(format!("load-{worker}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let agent = load_agent();
                let mut load = Load::default();
                barrier.wait();
                let mut next_at = interval
                    .map(|i| Instant::now() + i.mul_f64(worker as f64 / cfg_connections as f64));
                while !stop.load(Ordering::Relaxed) {
                    if let (Some(at), Some(i)) = (next_at.as_mut(), interval) {
                        let now = Instant::now();
                        if *at > now {
                            std::thread::sleep(*at - now);
                        }
                        *at += i;
                    }
                    let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                    if max > 0 && seq >= max {
                        break;
                    }
                    let sent = now_us();
                    let answer = post(&agent, &url, &bodies.body(seq, sent));
                    let done = now_us();
                    match answer {
                        Ok(events) => {
                            load.ok_latencies_us
                                .push((done - sent).min(u32::MAX as u64) as u32);
                            load.events += events;
                            load.last_done_us = done;
                        }
                        Err(e) => {
                            if load.errors == 0 {
                                eprintln!("{e}");
                            }
                            load.errors += 1;
                        }
                    }
                }
                load.cpu_secs = thread_cpu_secs();
                load
            })
            .expect("cannot start a load thread");
        threads.push(t);
    }

    let (gw_cpu0, writer_cpu0, bench_cpu0, machine0) = (
        process_cpu_secs(&pid.to_string()),
        threads_cpu_secs(pid, WRITER_THREAD),
        process_cpu_secs("self"),
        machine_jiffies(),
    );
    barrier.wait();
    let start_us = now_us();
    let caller = call_receiver.is_some().then(|| {
        let (url, stop, rate) = (url.clone(), stop.clone(), cfg.call_rate);
        std::thread::spawn(move || post_calls(url, rate, stop))
    });
    let deadline = Instant::now() + Duration::from_secs(cfg.secs);
    while Instant::now() < deadline && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let loads: Vec<Load> = threads
        .into_iter()
        .map(|t| t.join().expect("load thread panicked"))
        .collect();
    let (gw_cpu1, writer_cpu1, bench_cpu1, machine1) = (
        process_cpu_secs(&pid.to_string()),
        threads_cpu_secs(pid, WRITER_THREAD),
        process_cpu_secs("self"),
        machine_jiffies(),
    );
    let end_us = loads
        .iter()
        .map(|l| l.last_done_us)
        .max()
        .unwrap_or(start_us);
    let ingest_secs = (end_us.saturating_sub(start_us) as f64 / 1e6).max(1e-6);
    let mut ingest_lat: Vec<u32> = loads
        .iter()
        .flat_map(|l| l.ok_latencies_us.iter().copied())
        .collect();
    ingest_lat.sort_unstable();
    let ok = ingest_lat.len() as u64;
    let errors = loads.iter().map(|l| l.errors).sum();
    let generator_cpu: f64 = loads.iter().map(|l| l.cpu_secs).sum();
    let events = loads.iter().map(|l| l.events).sum();
    let (calls_sent, call_errors) = caller.map_or((0, 0), |t| t.join().expect("call thread"));

    let (mut delivered, mut delivered_during_load, mut delivery_secs, mut duplicates) =
        (0, 0, 0.0, 0);
    let mut e2e = Vec::new();
    if let Some(r) = &receiver {
        delivered_during_load = r.delivered();
        let drain_deadline = Instant::now() + Duration::from_secs(cfg.drain_secs);
        while r.delivered() < ok && Instant::now() < drain_deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let st = r.state.lock().unwrap();
        delivered = st.e2e_us.len() as u64;
        duplicates = st.duplicates;
        delivery_secs = (st.last_at_us.saturating_sub(start_us) as f64 / 1e6).max(1e-6);
        if st.unreadable > 0 {
            eprintln!("{} deliveries had no benchmark mark", st.unreadable);
        }
        e2e = st.e2e_us.clone();
        e2e.sort_unstable();
    }
    let calls = call_receiver.map(|r| {
        let deadline = Instant::now() + Duration::from_secs(cfg.drain_secs);
        while r.delivered() < calls_sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let st = r.state.lock().unwrap();
        let mut e2e = st.e2e_us.clone();
        e2e.sort_unstable();
        Calls {
            sent: calls_sent,
            errors: call_errors,
            e2e,
            duplicates: st.duplicates,
        }
    });
    let rss_mib = vm_hwm_kib(pid) as f64 / 1024.0;
    let wall = ingest_secs.max(1e-6);
    let machine_cores = {
        let (busy, total) = (machine1.0 - machine0.0, machine1.1 - machine0.1);
        // jiffies of all CPUs over the same wall time: busy / (total / cores).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if total > 0.0 {
            busy / total * cores
        } else {
            0.0
        }
    };
    drop(gw);
    Outcome {
        scenario,
        run,
        connections: cfg.connections,
        ok,
        events,
        errors,
        ingest_secs,
        ingest_lat,
        e2e,
        delivered,
        delivered_during_load,
        delivery_secs,
        duplicates,
        calls,
        rss_mib,
        gateway_cores: (gw_cpu1 - gw_cpu0) / wall,
        writer_cores: (writer_cpu1 - writer_cpu0) / wall,
        generator_cores: generator_cpu / wall,
        bench_cores: (bench_cpu1 - bench_cpu0) / wall,
        machine_cores,
    }
}

fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario       | run | conns |  200s  | err | ingests/s |  events/s | ingest p50 / p99 / max ms | e2e p50 / p99 ms | deliveries/s | backlog@end | dup | peak RSS MiB | CPU cores: gateway (writer) / generator / bench proc / machine |"
    );
    let _ = writeln!(
        out,
        "|----------------|-----|-------|--------|-----|-----------|-----------|---------------------------|------------------|--------------|-------------|-----|--------------|----------------------------------------------------------------|"
    );
    for o in outcomes {
        let (e2e, dps, backlog, dup) = if o.scenario.delivers() {
            (
                format!(
                    "{:>7.1} / {:>6.1}",
                    percentile(&o.e2e, 0.50),
                    percentile(&o.e2e, 0.99)
                ),
                format!("{:>12.0}", o.delivered as f64 / o.delivery_secs),
                format!("{:>11}", o.ok.saturating_sub(o.delivered_during_load)),
                format!("{:>3}", o.duplicates),
            )
        } else {
            (
                format!("{:>16}", "-"),
                format!("{:>12}", "-"),
                format!("{:>11}", "-"),
                format!("{:>3}", "-"),
            )
        };
        let _ = writeln!(
            out,
            "| {:<14} | {:>3} | {:>5} | {:>6} | {:>3} | {:>9.0} | {:>9.0} | {:>7.2} / {:>6.2} / {:>6.1} | {} | {} | {} | {} | {:>12.1} | {:>6.2} ({:>4.2}) / {:>6.2} / {:>6.2} / {:>6.2} |",
            o.scenario.name(),
            o.run,
            o.connections,
            o.ok,
            o.errors,
            o.ok as f64 / o.ingest_secs,
            o.events as f64 / o.ingest_secs,
            percentile(&o.ingest_lat, 0.50),
            percentile(&o.ingest_lat, 0.99),
            o.ingest_lat.last().map_or(f64::NAN, |v| f64::from(*v) / 1000.0),
            e2e,
            dps,
            backlog,
            dup,
            o.rss_mib,
            o.gateway_cores,
            o.writer_cores,
            o.generator_cores,
            o.bench_cores,
            o.machine_cores,
        );
    }
    out
}

fn calls_table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| run | ordinary POSTs/s | ordinary deliveries/s | ordinary e2e p50 / p99 ms | calls sent | err | delivered | dup | call e2e p50 / p99 / max ms |"
    );
    let _ = writeln!(
        out,
        "|-----|------------------|-----------------------|---------------------------|------------|-----|-----------|-----|-----------------------------|"
    );
    for o in outcomes {
        let Some(c) = &o.calls else { continue };
        let _ = writeln!(
            out,
            "| {:>3} | {:>16.0} | {:>21.0} | {:>12.1} / {:>10.1} | {:>10} | {:>3} | {:>9} | {:>3} | {:>8.1} / {:>6.1} / {:>7.1} |",
            o.run,
            o.ok as f64 / o.ingest_secs,
            o.delivered as f64 / o.delivery_secs,
            percentile(&o.e2e, 0.50),
            percentile(&o.e2e, 0.99),
            c.sent,
            c.errors,
            c.e2e.len(),
            c.duplicates,
            percentile(&c.e2e, 0.50),
            percentile(&c.e2e, 0.99),
            c.e2e.last().map_or(f64::NAN, |v| f64::from(*v) / 1000.0),
        );
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter or `--list` is not supported here.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _ = now_us();
    let cfg = Config::from_env();
    let binary = support::gateway::binary();
    if !binary.exists() {
        panic!(
            "{} does not exist: run `cargo build --release` or set WABRIDGE_BIN",
            binary.display()
        );
    }
    if binary.components().any(|c| c.as_os_str() == "debug") {
        eprintln!(
            "warning: {} looks like a debug build; figures will be meaningless",
            binary.display()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("wabridge ingest benchmark");
    println!("  binary: {}", binary.display());
    println!(
        "  machine: {cores} cores, load average before start {}; gateway, load generator and receiver share it (loopback)",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "  load: {} keep-alive connections (one thread + ureq agent each), {}, {} s per scenario{}, RUST_LOG={}",
        cfg.connections,
        if cfg.rate > 0.0 {
            format!("paced at {} POSTs/s", cfg.rate)
        } else {
            "each sending as soon as its last POST was answered (calls+deliver: paced at 5000 POSTs/s)".to_string()
        },
        cfg.secs,
        if cfg.max_requests > 0 {
            format!(", at most {} POSTs", cfg.max_requests)
        } else {
            String::new()
        },
        cfg.rust_log
    );
    let mut outcomes = Vec::new();
    for run in 1..=cfg.runs {
        for &scenario in &cfg.scenarios {
            println!("  running {} (run {run}) …", scenario.name());
            outcomes.push(run_scenario(&cfg, scenario, run));
        }
    }
    println!();
    print!("{}", table(&outcomes));
    println!();
    println!("  ingests/s: 200 answers (each after a durable commit) / time from first POST to last 200.");
    println!("  e2e: POST start → the receiver has the delivery. deliveries/s: deliveries / time from first POST to last delivery.");
    println!("  backlog@end: events ingested but not yet delivered when the load stopped; when it grows, e2e is mostly time in the outbox.");
    println!("  events/s: events the gateway accepted / the same time (a mixed-field webhook often carries several).");
    println!("  CPU cores: average over the load phase; machine = all processes, including other users' builds.");
    if outcomes.iter().any(|o| o.calls.is_some()) {
        println!();
        println!(
            "  calls+deliver: call events at {}/s to their own listener, beside the ordinary load:",
            cfg.call_rate
        );
        println!();
        print!("{}", calls_table(&outcomes));
        println!();
        println!("  call e2e: POST start of a call event → its receiver has the delivery.");
    }
    let shortfall = outcomes.iter().any(|o| o.errors > 0)
        || outcomes
            .iter()
            .any(|o| o.scenario.delivers() && o.delivered < o.ok)
        || outcomes
            .iter()
            .filter_map(|o| o.calls.as_ref())
            .any(|c| c.errors > 0 || (c.e2e.len() as u64) < c.sent);
    if shortfall {
        println!(
            "  WARNING: some POSTs failed or some deliveries did not arrive within the drain time"
        );
    }
}
