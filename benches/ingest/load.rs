//! The load generator: one thread and one keep-alive ureq connection per
//! simulated Meta connection, POSTing correctly signed webhooks as fast as they
//! are answered or on a schedule, each thread timing its own POSTs and its own CPU.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use wabridge::meta::field_samples::{field_sample, FIELD_SAMPLES};

use crate::procfs::{thread_cpu_secs, Cores, Usage};
use crate::support::fake_meta::APP_SECRET;
use crate::support::{meta_signature, payloads};
use crate::{now_us, MARK, PHONE, WABA};

/// Stands for the run in a field sample's ids until a POST gets its own.
const RUN_SLOT: &str = "RUNSLOT";
/// Stands for the entry time in a field sample (no sample has this number).
const TIME_SLOT: u64 = 4_102_444_800;

/// What the load threads POST.
#[derive(Clone)]
pub enum Bodies {
    /// One text message whose text carries the benchmark mark.
    Single(Arc<String>),
    /// The field samples in turn. Ids and entry times are new for every POST,
    /// since Meta's id-less events are deduplicated by content and entry time.
    Mixed(Arc<Vec<String>>),
}

impl Bodies {
    /// One text message per webhook, each with its own id and mark.
    pub fn single() -> Bodies {
        let template = payloads::single_text(WABA, PHONE, "ID_SLOT", "TEXT_SLOT");
        Bodies::Single(Arc::new(
            String::from_utf8(template).expect("payload is UTF-8"),
        ))
    }

    /// A sample of every field Meta sends (tests/fixtures/fields), in turn.
    pub fn mixed() -> Bodies {
        let samples = FIELD_SAMPLES
            .iter()
            .map(|(name, _)| {
                let body = field_sample(name, WABA, RUN_SLOT, TIME_SLOT).expect("sample");
                String::from_utf8(body).expect("sample is UTF-8")
            })
            .collect();
        Bodies::Mixed(Arc::new(samples))
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

/// POSTs one webhook signed as Meta signs it: the status and body of the answer.
fn send(agent: &ureq::Agent, url: &str, body: &str) -> Result<(u16, Vec<u8>), ureq::Error> {
    let signature = meta_signature(body.as_bytes(), APP_SECRET);
    agent
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", &signature)
        .send(body.as_bytes())
        .and_then(|mut r| {
            let status = r.status().as_u16();
            r.body_mut().read_to_vec().map(|b| (status, b))
        })
}

/// POSTs one signed webhook; the events accepted, or what went wrong.
fn post(agent: &ureq::Agent, url: &str, body: &str) -> Result<u64, String> {
    match send(agent, url, body) {
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

/// Opens the connection before the clock starts, as Meta's are open at a
/// steady rate: one signed webhook with no entries (no event, no delivery),
/// not timed or counted. Without it the first POST of each of the 128
/// connections, all made together, paid for the connection and the start.
fn warm_up(agent: &ureq::Agent, url: &str) {
    let body = r#"{"object":"whatsapp_business_account","entry":[]}"#;
    match send(agent, url, body) {
        Ok((200, _)) => {}
        Ok((status, _)) => eprintln!("warm-up POST answered {status}"),
        Err(e) => eprintln!("warm-up POST failed: {e}"),
    }
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

/// One load: where to, what, over how many connections, how fast, how long.
pub struct Plan {
    pub url: String,
    pub bodies: Bodies,
    pub connections: usize,
    /// Offered POSTs/s over all connections (0: as fast as answered).
    pub rate: f64,
    /// The load stops after this long …
    pub limit: Duration,
    /// … or after this many POSTs (0: no cap).
    pub max_requests: u64,
}

/// What the load threads saw, together.
pub struct Driven {
    /// 200 answers.
    pub ok: u64,
    /// Events the server said it accepted.
    pub events: u64,
    pub errors: u64,
    /// POST → 200 of each success, µs, sorted.
    pub latencies_us: Vec<u32>,
    /// When the threads were let go (µs on the bench's clock).
    pub start_us: u64,
    /// From the first POST to the last 200, s.
    pub secs: f64,
}

impl Driven {
    /// 200 answers per second.
    pub fn ok_per_sec(&self) -> f64 {
        self.ok as f64 / self.secs
    }
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

/// What every load thread shares.
struct Shared {
    url: String,
    bodies: Bodies,
    next_seq: AtomicU64,
    stop: Arc<AtomicBool>,
    barrier: Barrier,
    connections: usize,
    max_requests: u64,
    /// Paced: each connection sends one POST every `interval`.
    interval: Option<Duration>,
}

/// Runs `plan` against the server process `server_pid`; `alongside` is started
/// with the load (it gets the stop flag). Returns what the load saw and the CPU
/// each part used while it ran.
pub fn drive<T>(
    plan: &Plan,
    server_pid: u32,
    alongside: impl FnOnce(&Arc<AtomicBool>) -> T,
) -> (Driven, Cores, T) {
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        url: plan.url.clone(),
        bodies: plan.bodies.clone(),
        next_seq: AtomicU64::new(0),
        stop: stop.clone(),
        barrier: Barrier::new(plan.connections + 1),
        connections: plan.connections,
        max_requests: plan.max_requests,
        interval: (plan.rate > 0.0)
            .then(|| Duration::from_secs_f64(plan.connections as f64 / plan.rate)),
    });
    let threads: Vec<JoinHandle<Load>> = (0..plan.connections)
        .map(|worker| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("load-{worker}"))
                .stack_size(256 * 1024)
                .spawn(move || connection(&shared, worker))
                .expect("cannot start a load thread")
        })
        .collect();

    // After the barrier: every connection is open and warmed up by then.
    shared.barrier.wait();
    let before = Usage::sample(server_pid);
    let start_us = now_us();
    let side = alongside(&stop);
    let deadline = Instant::now() + plan.limit;
    while Instant::now() < deadline && !threads.iter().all(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let loads: Vec<Load> = threads
        .into_iter()
        .map(|t| t.join().expect("load thread panicked"))
        .collect();
    let after = Usage::sample(server_pid);

    let end_us = loads
        .iter()
        .map(|l| l.last_done_us)
        .max()
        .unwrap_or(start_us);
    let secs = (end_us.saturating_sub(start_us) as f64 / 1e6).max(1e-6);
    let mut latencies_us: Vec<u32> = loads
        .iter()
        .flat_map(|l| l.ok_latencies_us.iter().copied())
        .collect();
    latencies_us.sort_unstable();
    let generator_cpu: f64 = loads.iter().map(|l| l.cpu_secs).sum();
    let driven = Driven {
        ok: latencies_us.len() as u64,
        events: loads.iter().map(|l| l.events).sum(),
        errors: loads.iter().map(|l| l.errors).sum(),
        latencies_us,
        start_us,
        secs,
    };
    (driven, after.since(&before, secs, generator_cpu), side)
}

/// One connection's thread: POSTs until stopped, capped or past the limit.
fn connection(shared: &Shared, worker: usize) -> Load {
    let agent = load_agent();
    let mut load = Load::default();
    warm_up(&agent, &shared.url);
    shared.barrier.wait();
    // Paced: this connection sends one POST every `interval`, on schedule
    // even when an answer was slow (so the offered load stays the same).
    let mut next_at = shared
        .interval
        .map(|i| Instant::now() + i.mul_f64(worker as f64 / shared.connections as f64));
    while !shared.stop.load(Ordering::Relaxed) {
        if let (Some(at), Some(i)) = (next_at.as_mut(), shared.interval) {
            let now = Instant::now();
            if *at > now {
                std::thread::sleep(*at - now);
            }
            *at += i;
        }
        let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
        if shared.max_requests > 0 && seq >= shared.max_requests {
            break;
        }
        let sent = now_us();
        let answer = post(&agent, &shared.url, &shared.bodies.body(seq, sent));
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
}

/// POSTs call events at `rate`/s until `stop`: (accepted, failed).
pub fn post_calls(url: String, rate: f64, stop: Arc<AtomicBool>) -> (u64, u64) {
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
