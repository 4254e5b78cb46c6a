//! The scenarios: what each one starts, which load it runs, what it measures.

use std::time::{Duration, Instant};

use crate::bare::BareServer;
use crate::load::{drive, post_calls, Bodies, Driven, Plan};
use crate::procfs::{settled_rss_kib, threads_cpu_secs, vm_hwm_kib, vm_rss_kib, Cores, Usage};
use crate::receiver::{self, CountingReceiver};
use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::{sample, Gateway, Options};
use crate::{now_us, Config, WABA};

/// Where Meta POSTs webhooks.
const EVENTS_PATH: &str = "/plugins/appmixer/whatsapp/events";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// No gateway: a bare hyper server answering `200`, driven by the same
    /// load; the reference every other figure is divided by.
    Bare,
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
    /// A `messages` listener whose receiver holds every attempt while
    /// `WABRIDGE_BENCH_OUTBOX` events are ingested, then answers at once:
    /// deliveries/s from a full outbox.
    Outbox,
}

impl Scenario {
    /// The names `WABRIDGE_BENCH_SCENARIOS` takes.
    pub const NAMES: &'static str = "bare, deliver, ingest, mixed, calls, outbox";

    pub fn parse(name: &str) -> Option<Scenario> {
        Some(match name {
            "bare" => Scenario::Bare,
            "deliver" => Scenario::Deliver,
            "ingest" => Scenario::Ingest,
            "mixed" => Scenario::Mixed,
            "calls" => Scenario::Calls,
            "outbox" => Scenario::Outbox,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Bare => "bare server",
            Scenario::Deliver => "ingest+deliver",
            Scenario::Ingest => "ingest only",
            Scenario::Mixed => "mixed fields",
            Scenario::Calls => "calls+deliver",
            Scenario::Outbox => "outbox drain",
        }
    }

    /// Whether a `messages` listener receives the ordinary load as it comes.
    pub fn delivers(self) -> bool {
        matches!(self, Scenario::Deliver | Scenario::Calls)
    }

    /// Offered POSTs/s of the ordinary load (0: as fast as answered).
    fn rate(self, cfg: &Config) -> f64 {
        match self {
            Scenario::Calls if cfg.rate == 0.0 => 5_000.0,
            Scenario::Outbox => 0.0,
            _ => cfg.rate,
        }
    }
}

/// What one run of one scenario measured.
pub struct Outcome {
    pub scenario: Scenario,
    pub run: usize,
    pub connections: usize,
    /// Offered POSTs/s (0: as fast as answered).
    pub rate: f64,
    /// The load phase (for the outbox: filling it).
    pub load: Driven,
    /// CPU over the load phase.
    pub cores: Cores,
    /// The ordinary load's deliveries, when the scenario has a listener.
    pub deliveries: Option<Deliveries>,
    pub calls: Option<Calls>,
    /// The outbox scenario's drain.
    pub drain: Option<Drain>,
    /// The server's `VmRSS` after start and setup, once steady, before the load.
    pub idle_rss_mib: f64,
    /// The server's `VmHWM` at the end.
    pub peak_rss_mib: f64,
    /// The gateway's commits and answers during the load phase (none for the bare server).
    pub clocks: Option<GatewayClocks>,
}

/// The gateway's own clocks over the load, from its `/metrics` histograms:
/// its group commits (`wabridge_store_commit_seconds`), how often the disk
/// kept the answers waiting, and its webhook answers
/// (`wabridge_webhook_seconds`), the ingest latency without the load
/// generator's share.
#[derive(Clone, Copy)]
pub struct GatewayClocks {
    /// Group commits …
    pub commits: u64,
    /// … that took longer than 5 ms (the paced ingest p99 aim) …
    pub over_5ms: u64,
    /// … and longer than 100 ms.
    pub over_100ms: u64,
    /// Webhooks the gateway answered 200 …
    pub answered: u64,
    /// … of which more than 5 ms after their request head.
    pub answered_over_5ms: u64,
}

impl GatewayClocks {
    /// The histograms' counts now: commits (all, at most 5 ms, at most
    /// 100 ms), then answers (all, at most 5 ms).
    fn read(gw: &Gateway) -> [u64; 5] {
        // One page, so the counts are of the same moment.
        let page = gw.metrics();
        [
            sample(&page, "wabridge_store_commit_seconds_count"),
            sample(&page, "wabridge_store_commit_seconds_bucket{le=\"0.005\"}"),
            sample(&page, "wabridge_store_commit_seconds_bucket{le=\"0.1\"}"),
            sample(&page, "wabridge_webhook_seconds_count"),
            sample(&page, "wabridge_webhook_seconds_bucket{le=\"0.005\"}"),
        ]
    }

    fn since(now: [u64; 5], before: [u64; 5]) -> GatewayClocks {
        let d = |i: usize| now[i].saturating_sub(before[i]);
        GatewayClocks {
            commits: d(0),
            over_5ms: d(0).saturating_sub(d(1)),
            over_100ms: d(0).saturating_sub(d(2)),
            answered: d(3),
            answered_over_5ms: d(3).saturating_sub(d(4)),
        }
    }

    /// The share of the gateway's answers that took over 5 ms, in %: over 1,
    /// the gateway alone missed the paced p99 aim.
    pub fn answered_over_5ms_pct(&self) -> f64 {
        100.0 * self.answered_over_5ms as f64 / self.answered.max(1) as f64
    }
}

/// The deliveries of the ordinary load.
pub struct Deliveries {
    /// Distinct events delivered, by the end of the drain.
    pub delivered: u64,
    /// … of which by the end of the load.
    pub during_load: u64,
    /// From the first POST to the last delivery, s.
    pub secs: f64,
    pub duplicates: u64,
    /// POST start → the receiver has it, µs, sorted.
    pub e2e_us: Vec<u32>,
}

impl Deliveries {
    pub fn per_sec(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
}

/// The call events of the calls scenario, beside the ordinary load.
pub struct Calls {
    pub sent: u64,
    pub errors: u64,
    /// POST start → the call's receiver has it, µs, sorted.
    pub e2e: Vec<u32>,
    pub duplicates: u64,
}

/// The outbox scenario after the fill: the receiver lets every delivery through.
pub struct Drain {
    /// Events in the outbox when the receiver opened (one per 200 of the fill).
    pub queued: u64,
    /// Attempts the receiver was holding then (the gateway's in flight).
    pub held: u64,
    /// Distinct events delivered after the release.
    pub delivered: u64,
    pub duplicates: u64,
    /// From the release to the last delivery, s.
    pub secs: f64,
    /// The gateway's `VmRSS` at the release.
    pub rss_at_release_mib: f64,
    /// CPU over the drain (no load generator runs).
    pub cores: Cores,
    /// The receiver's threads, over the drain.
    pub receiver_cores: f64,
}

impl Drain {
    pub fn per_sec(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
}

pub fn run(cfg: &Config, scenario: Scenario, run: usize) -> Outcome {
    match scenario {
        Scenario::Bare => bare(cfg, run),
        Scenario::Outbox => outbox(cfg, run),
        _ => gateway(cfg, scenario, run),
    }
}

/// The same load as `ingest only`, against the bare server.
fn bare(cfg: &Config, run: usize) -> Outcome {
    let server = BareServer::start();
    let pid = server.pid();
    let idle_rss_mib = mib(settled_rss_kib(pid));
    let plan = Plan {
        url: server.url(EVENTS_PATH),
        bodies: Bodies::single(),
        connections: cfg.connections,
        rate: Scenario::Bare.rate(cfg),
        limit: Duration::from_secs(cfg.secs),
        max_requests: cfg.max_requests,
    };
    let (load, cores, ()) = drive(&plan, pid, |_| ());
    let peak_rss_mib = mib(vm_hwm_kib(pid));
    Outcome {
        scenario: Scenario::Bare,
        run,
        connections: cfg.connections,
        rate: plan.rate,
        load,
        cores,
        deliveries: None,
        calls: None,
        drain: None,
        idle_rss_mib,
        peak_rss_mib,
        clocks: None,
    }
}

/// The gateway with the bench's knobs and `extra` flags, its Meta app set, one
/// account on the bench's WABA; returns the gateway and the account's API key.
fn start_gateway(cfg: &Config, meta: &FakeMeta, extra: &[String]) -> (Gateway, String) {
    let mut args = Vec::new();
    if let Some(c) = &cfg.delivery_concurrency {
        args.extend(["--delivery-concurrency".to_string(), c.clone()]);
    }
    args.extend_from_slice(extra);
    let gw = Gateway::start_with(
        meta,
        Options {
            args,
            env: vec![("RUST_LOG".into(), cfg.rust_log.clone())],
            ..Options::default()
        },
    );
    gw.configure();
    let (_, key) = gw.add_account(meta, "bench-token", &[WABA]);
    (gw, key)
}

fn gateway(cfg: &Config, scenario: Scenario, run: usize) -> Outcome {
    let meta = FakeMeta::start();
    let (gw, key) = start_gateway(cfg, &meta, &[]);
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
    let idle_rss_mib = mib(settled_rss_kib(pid));
    let url = gw.url(EVENTS_PATH);
    let plan = Plan {
        url: url.clone(),
        bodies: if scenario == Scenario::Mixed {
            Bodies::mixed()
        } else {
            Bodies::single()
        },
        connections: cfg.connections,
        rate: scenario.rate(cfg),
        limit: Duration::from_secs(cfg.secs),
        max_requests: cfg.max_requests,
    };
    let clocks_before = GatewayClocks::read(&gw);
    let (load, cores, caller) = drive(&plan, pid, |stop| {
        call_receiver.is_some().then(|| {
            let (url, stop, rate) = (url.clone(), stop.clone(), cfg.call_rate);
            std::thread::spawn(move || post_calls(url, rate, stop))
        })
    });
    let (calls_sent, call_errors) = caller.map_or((0, 0), |t| t.join().expect("call thread"));
    let clocks = GatewayClocks::since(GatewayClocks::read(&gw), clocks_before);

    let drain = Duration::from_secs(cfg.drain_secs);
    let deliveries = receiver.map(|r| {
        let during_load = r.delivered();
        wait_for(&r, load.ok, drain);
        r.arrivals(|st| {
            if st.unreadable > 0 {
                eprintln!("{} deliveries had no benchmark mark", st.unreadable);
            }
            let mut e2e_us = st.e2e_us.clone();
            e2e_us.sort_unstable();
            Deliveries {
                delivered: e2e_us.len() as u64,
                during_load,
                secs: (st.last_at_us.saturating_sub(load.start_us) as f64 / 1e6).max(1e-6),
                duplicates: st.duplicates,
                e2e_us,
            }
        })
    });
    let calls = call_receiver.map(|r| {
        wait_for(&r, calls_sent, drain);
        r.arrivals(|st| {
            let mut e2e = st.e2e_us.clone();
            e2e.sort_unstable();
            Calls {
                sent: calls_sent,
                errors: call_errors,
                e2e,
                duplicates: st.duplicates,
            }
        })
    });
    let peak_rss_mib = mib(vm_hwm_kib(pid));
    drop(gw);
    Outcome {
        scenario,
        run,
        connections: cfg.connections,
        rate: plan.rate,
        load,
        cores,
        deliveries,
        calls,
        drain: None,
        idle_rss_mib,
        peak_rss_mib,
        clocks: Some(clocks),
    }
}

/// Fills the outbox of one listener while its receiver holds every attempt,
/// then lets them all through and times the drain.
///
/// Held, not failed: the gateway's `--delivery-concurrency` attempts wait for
/// an answer (the bench gives it a delivery timeout longer than the fill) and
/// every other event waits in the outbox, due at once, with no retry back-off
/// to wait out. Only public surfaces: the API to add the listener, webhooks to
/// fill it, and the receiver's answers.
fn outbox(cfg: &Config, run: usize) -> Outcome {
    let n = cfg.outbox;
    // The fill ends after `n` POSTs; this only bounds one that stalls.
    let fill_limit = Duration::from_secs((n / 500).max(cfg.secs).max(60));
    let hold = format!("{}s", fill_limit.as_secs() + 60);
    let meta = FakeMeta::start();
    let (gw, key) = start_gateway(cfg, &meta, &["--delivery-timeout".into(), hold]);
    let receiver = CountingReceiver::held();
    gw.add_listener(&key, WABA, "messages", &receiver.url());
    let pid = gw.pid().expect("gateway is running");
    let idle_rss_mib = mib(settled_rss_kib(pid));
    let plan = Plan {
        url: gw.url(EVENTS_PATH),
        bodies: Bodies::single(),
        connections: cfg.connections,
        rate: Scenario::Outbox.rate(cfg),
        limit: fill_limit,
        max_requests: n,
    };
    let clocks_before = GatewayClocks::read(&gw);
    let (load, cores, ()) = drive(&plan, pid, |_| ());
    let clocks = GatewayClocks::since(GatewayClocks::read(&gw), clocks_before);
    let held = receiver.waiting();
    println!(
        "    {} events queued in {:.1} s, {held} attempts held; releasing the deliveries …",
        load.ok, load.secs
    );

    let rss_at_release_mib = mib(vm_rss_kib(pid));
    let me = std::process::id();
    let (before, receiver_cpu0) = (Usage::sample(pid), threads_cpu_secs(me, receiver::THREAD));
    let released = Instant::now();
    let released_us = now_us();
    receiver.release();
    let limit = Duration::from_secs(cfg.drain_secs.max(load.ok / 1_000));
    wait_for(&receiver, load.ok, limit);
    let wall = released.elapsed().as_secs_f64();
    let (after, receiver_cpu1) = (Usage::sample(pid), threads_cpu_secs(me, receiver::THREAD));
    let drain = receiver.arrivals(|st| Drain {
        queued: load.ok,
        held,
        delivered: st.e2e_us.len() as u64,
        duplicates: st.duplicates,
        secs: (st.last_at_us.saturating_sub(released_us) as f64 / 1e6).max(1e-6),
        rss_at_release_mib,
        cores: after.since(&before, wall, 0.0),
        receiver_cores: (receiver_cpu1 - receiver_cpu0) / wall.max(1e-6),
    });
    let peak_rss_mib = mib(vm_hwm_kib(pid));
    drop(gw);
    Outcome {
        scenario: Scenario::Outbox,
        run,
        connections: cfg.connections,
        rate: plan.rate,
        load,
        cores,
        deliveries: None,
        calls: None,
        drain: Some(drain),
        idle_rss_mib,
        peak_rss_mib,
        clocks: Some(clocks),
    }
}

/// Waits until `receiver` has `n` distinct events, or `limit` has passed.
fn wait_for(receiver: &CountingReceiver, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while receiver.delivered() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
