//! Ingest and delivery benchmark: the real release binary on loopback, many
//! concurrent keep-alive connections POSTing correctly signed webhooks (single
//! messages, a mix of every field Meta sends, or single messages with call
//! events alongside), measured against a bare hyper server driven by the same
//! load in the same run.
//!
//! Reports durable ingests/s (every 200 is a committed, fsynced transaction),
//! ingest latency (POST → 200), end-to-end latency (POST start → the flow
//! webhook receives the delivery), deliveries/s, the gateway's idle and peak
//! RSS and who used the CPU (gateway, load generator, everything else on the
//! machine); in the calls scenario, the end-to-end latency of call events; in
//! the outbox scenario, deliveries/s from a full outbox. Then the figures beside
//! the aims of issue 10.
//!
//! ```text
//! cargo build --release && cargo bench --bench ingest
//! ```
//!
//! Scenarios (`WABRIDGE_BENCH_SCENARIOS`):
//! - `bare`: no gateway. A bare hyper server in its own process (this binary
//!   started again with `--bare-server`) answers `200` to every POST; the same
//!   generator drives it with the same connections, signed bodies, pacing and
//!   duration as `ingest`. It runs first in every run in which any other
//!   scenario runs, and each wabridge figure is also shown as a multiple of its
//!   POSTs/s (`0.31×`); `WABRIDGE_BENCH_BARE=0` leaves it out unless named.
//! - `deliver`: one `messages` listener on a counting receiver.
//! - `ingest`: no listener.
//! - `mixed`: no listener; the bodies cycle through every field Meta sends.
//! - `calls`: `deliver` paced, with call events to a second listener.
//! - `outbox`: one listener whose receiver holds every attempt (the gateway
//!   keeps `--delivery-concurrency` of them in flight, with a delivery timeout
//!   longer than the fill, so none fails and none waits out a retry) while
//!   `WABRIDGE_BENCH_OUTBOX` webhooks are ingested; then the receiver answers,
//!   and the drain to the last delivery is timed.
//!
//! Knobs (environment):
//! - `WABRIDGE_BENCH_CONNECTIONS` concurrent keep-alive connections (default 128)
//! - `WABRIDGE_BENCH_SECS` seconds of load per scenario (default 15; a default run takes about 3 min)
//! - `WABRIDGE_BENCH_REQUESTS` stop a scenario after this many POSTs (default: no cap)
//! - `WABRIDGE_BENCH_RATE` offered POSTs/s over all connections (default 0: as fast as answered)
//! - `WABRIDGE_BENCH_DRAIN_SECS` longest wait for outstanding deliveries (default 30;
//!   the outbox scenario waits at least one second per thousand events)
//! - `WABRIDGE_BENCH_SCENARIOS` comma list of `bare`, `deliver`, `ingest`, `mixed`,
//!   `calls`, `outbox` (default all)
//! - `WABRIDGE_BENCH_BARE` 0 leaves out the bare server when `bare` is not named (default 1)
//! - `WABRIDGE_BENCH_OUTBOX` events queued in the outbox scenario (default 100000); its
//!   fill is as fast as answered, whatever `WABRIDGE_BENCH_RATE`, `_SECS` and `_REQUESTS` say
//! - `WABRIDGE_BENCH_CALL_RATE` call events/s in the calls scenario (default 20); its
//!   ordinary load is paced at `WABRIDGE_BENCH_RATE`, or 5,000/s when that is 0
//! - `WABRIDGE_BENCH_RUNS` repetitions of each scenario (default 1)
//! - `WABRIDGE_BENCH_DELIVERY_CONCURRENCY` the gateway's `--delivery-concurrency` (default: its own)
//! - `WABRIDGE_BENCH_RUST_LOG` the gateway's `RUST_LOG` (default `info`, as in production)
//! - `WABRIDGE_BIN` the gateway executable (default: the one Cargo built, target/release/wabridge)
//!
//! Modules: `scenario` (what each scenario starts and measures), `load` (the
//! load generator), `bare` (the reference server), `receiver` (the counting flow
//! webhooks, which can hold deliveries), `procfs` (CPU and memory from /proc),
//! `report` (the tables and the aims).

#[path = "../env.rs"]
mod env;
use env::env_or;
#[path = "../../tests/support/mod.rs"]
mod support;

mod bare;
mod load;
mod procfs;
mod receiver;
mod report;
mod scenario;

use std::sync::OnceLock;
use std::time::Instant;

use scenario::Scenario;

const WABA: &str = "111";
const PHONE: &str = "PN1";
/// Marks the send time in a message text: `bench:<seq>:<µs since EPOCH>;`.
const MARK: &str = "bench:";

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
    outbox: u64,
    delivery_concurrency: Option<String>,
    rust_log: String,
}

impl Config {
    fn from_env() -> Config {
        let named: Vec<Scenario> = env_or(
            "WABRIDGE_BENCH_SCENARIOS",
            "deliver,ingest,mixed,calls,outbox".to_string(),
        )
        .split(',')
        .map(|s| {
            Scenario::parse(s.trim())
                .unwrap_or_else(|| panic!("unknown scenario {s:?}; use {}", Scenario::NAMES))
        })
        .collect();
        // The bare server first, so every ratio has its reference when the
        // wabridge scenarios come; once, even if named twice.
        let others: Vec<Scenario> = named
            .iter()
            .copied()
            .filter(|s| *s != Scenario::Bare)
            .collect();
        let bare = named.contains(&Scenario::Bare)
            || (!others.is_empty() && env_or("WABRIDGE_BENCH_BARE", 1u8) != 0);
        let scenarios = bare
            .then_some(Scenario::Bare)
            .into_iter()
            .chain(others)
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
            outbox: env_or("WABRIDGE_BENCH_OUTBOX", 100_000u64).max(1),
            delivery_concurrency: std::env::var("WABRIDGE_BENCH_DELIVERY_CONCURRENCY").ok(),
            rust_log: env_or("WABRIDGE_BENCH_RUST_LOG", "info".to_string()),
        }
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(bare::ARG) {
        bare::serve();
        return;
    }
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
            outcomes.push(scenario::run(&cfg, scenario, run));
        }
    }
    println!();
    print!("{}", report::table(&outcomes));
    println!();
    println!("  ingests/s: 200 answers (each after a durable commit) / time from first POST to last 200.");
    println!("  bare server: no gateway; the same generator, connections, signed bodies and pacing against a hyper server that answers 200 (its POSTs/s in the ingests/s column).");
    println!("  × bare: the figure beside it / the bare server's POSTs/s in the same run.");
    println!("  e2e: POST start → the receiver has the delivery. deliveries/s: deliveries / time from first POST to last delivery.");
    println!("  backlog@end: events ingested but not yet delivered when the load stopped; when it grows, e2e is mostly time in the outbox.");
    println!("  events/s: events the gateway accepted / the same time (a mixed-field webhook often carries several).");
    println!("  idle RSS: the server's VmRSS after start and setup, once steady, before the load; peak: its VmHWM at the end.");
    println!("  CPU cores: average over the load phase; server = the gateway (its database writer thread in brackets) or the bare server;");
    println!("    bench proc = load generator + receivers; machine = all processes, including other users' builds.");
    if outcomes.iter().any(|o| o.calls.is_some()) {
        println!();
        println!(
            "  calls+deliver: call events at {}/s to their own listener, beside the ordinary load:",
            cfg.call_rate
        );
        println!();
        print!("{}", report::calls_table(&outcomes));
        println!();
        println!("  call e2e: POST start of a call event → its receiver has the delivery.");
    }
    if outcomes.iter().any(|o| o.drain.is_some()) {
        println!();
        println!(
            "  outbox drain: {} webhooks ingested while the receiver held every delivery, then released:",
            cfg.outbox
        );
        println!();
        print!("{}", report::outbox_table(&outcomes));
        println!();
        println!("  fill ingests/s: as fast as answered, one listener, every delivery attempt held (held: attempts the gateway had in flight).");
        println!("  deliveries/s: distinct deliveries / time from the release to the last delivery, to a receiver that answers 200 at once.");
    }
    let aims = report::aims(&outcomes);
    if !aims.is_empty() {
        println!();
        println!("  Aims of issue 10 (this machine, generator and receivers included):");
        print!("{aims}");
    }
    if report::shortfall(&outcomes) {
        println!();
        println!(
            "  WARNING: some POSTs failed or some deliveries did not arrive within the drain time"
        );
    }
}
