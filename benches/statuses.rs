//! Status-history benchmark: a store holding millions of message statuses,
//! built through the store's own write path (`record_sent` for Meta's answer
//! to a send, `ingest` for Meta's status webhooks parsed as the gateway parses
//! them), then what such a store costs: disk bytes per status, the time to
//! read one message's history, the janitor's time to expire one day's rows,
//! and durable statuses/s through `Store::ingest` while the janitor runs.
//!
//! ```text
//! cargo bench --bench statuses                                  # 10 million statuses
//! WABRIDGE_BENCH_STATUSES=1000000 cargo bench --bench statuses  # a quick run
//! ```
//!
//! The store holds 30 days (the default retention) of one business's sends
//! from three phone numbers: every message gets `accepted` (Meta's answer to
//! the send), `sent`, then `delivered` (96 %) and `read` (62 % of those,
//! minutes to hours later) or `failed` (4 %): about 3.6 statuses a message.
//! Recipients are phone numbers of several countries, half of them with a
//! BSUID; message ids have the shape of Meta's `wamid`s. Time is simulated
//! (30 days from 2026-11-01), so runs are alike.
//!
//! Knobs (environment):
//! - `WABRIDGE_BENCH_STATUSES` statuses to build (default 10,000,000)
//! - `WABRIDGE_BENCH_DB` the database file: built there when missing, and kept;
//!   an existing one (built with the same `WABRIDGE_BENCH_STATUSES`) is opened
//!   as it is, migrated if an older wabridge built it, which times the migration
//! - `WABRIDGE_BENCH_BUILD_ONLY` `1`: stop once the store is built and measured
//! - `WABRIDGE_BENCH_LOOKUPS` histories read for the lookup figures (default 20,000)
//! - `WABRIDGE_BENCH_INGEST_SECS` seconds of ingest without the janitor, to compare with (default 10)
//! - `WABRIDGE_BENCH_INGESTERS` concurrent ingest requests (default 64)

#[path = "env.rs"]
mod env;
use env::env_or;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wabridge::domain::model::{InboundEvent, StatusRecord};
use wabridge::domain::webhook;
use wabridge::store::{KeyLocation, Store};
use wabridge::worker::Janitor;

const WABA: &str = "102290129340398";
/// (phone number id, display number) of the business's three numbers.
const PHONES: [(&str, &str); 3] = [
    ("106540352242922", "15550783881"),
    ("106540352242923", "15550783882"),
    ("109871234567890", "442071838750"),
];
/// 2026-11-01T00:00:00Z.
const SIM_START_MS: u64 = 1_793_491_200_000;
const DAY_MS: u64 = 86_400_000;
const DAYS: u64 = 30;
/// Statuses a message gets on average (see the module comment).
const PER_MESSAGE: f64 = 2.0 + 0.04 + 0.96 + 0.96 * 0.62;
/// One slice of simulated time: one ingest transaction carries the statuses
/// Meta reported within it (about 10,000 at 10 million statuses), so the
/// events of a day fall in that day, as the janitor expects.
const SLICE_MS: u64 = 3_600_000;
/// At most this many sends in a slice, so a huge run keeps its batches bounded.
const SLICE_MESSAGES: u64 = 20_000;

struct Config {
    statuses: u64,
    db: Option<PathBuf>,
    build_only: bool,
    lookups: usize,
    ingest_secs: u64,
    ingesters: usize,
}

fn main() {
    let cfg = Config {
        statuses: env_or("WABRIDGE_BENCH_STATUSES", 10_000_000),
        db: std::env::var_os("WABRIDGE_BENCH_DB").map(PathBuf::from),
        build_only: env_or("WABRIDGE_BENCH_BUILD_ONLY", 0u8) == 1,
        lookups: env_or("WABRIDGE_BENCH_LOOKUPS", 20_000),
        ingest_secs: env_or("WABRIDGE_BENCH_INGEST_SECS", 10),
        ingesters: env_or("WABRIDGE_BENCH_INGESTERS", 64),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(cfg));
}

async fn run(cfg: Config) {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let path = cfg
        .db
        .clone()
        .unwrap_or_else(|| temp.path().join("wabridge.redb"));
    let sim = Sim::new(cfg.statuses);
    println!(
        "status history: {} statuses planned ({} messages over {DAYS} days, {} recipients) in {}",
        thousands(cfg.statuses),
        thousands(sim.messages),
        thousands(sim.recipients),
        path.display()
    );

    println!("machine load average at start: {}", load_average());
    let existed = path.exists();
    let started = Instant::now();
    let store = open(&path);
    if existed {
        println!(
            "opened the existing database in {:.1} s (a migration, if one was due, included)",
            started.elapsed().as_secs_f64()
        );
    } else {
        build(&store, &sim).await;
    }
    store.close();
    drop(store);
    let size = footprint(&path);
    if cfg.build_only {
        return;
    }

    let store = open(&path);
    let (p50, p99) = lookups(&store, &sim, cfg.lookups);

    let counter = Arc::new(AtomicU64::new(0));
    let quiet = ingest_for(&store, &sim, &counter, cfg.ingesters, cfg.ingest_secs).await;
    println!(
        "ingest, janitor idle: {} statuses/s durable ({} in {:.1} s, {} concurrent requests of one status each)",
        thousands(quiet.per_sec() as u64),
        thousands(quiet.statuses),
        quiet.secs,
        cfg.ingesters
    );

    let janitor = Janitor {
        store: store.clone(),
        retention: Duration::from_millis(DAYS * DAY_MS),
    };
    let never = CancellationToken::new();
    let t = Instant::now();
    let removed = janitor
        .sweep(SIM_START_MS + (DAYS + 1) * DAY_MS, &never)
        .await
        .expect("the janitor's sweep of day 1");
    let alone = t.elapsed().as_secs_f64();
    println!(
        "janitor, day 1 expired alone: {} rows in {alone:.1} s",
        thousands(removed as u64)
    );

    let stop = CancellationToken::new();
    let load = {
        let (store, sim, counter, stop) =
            (store.clone(), sim.clone(), counter.clone(), stop.clone());
        tokio::spawn(async move { ingest_until(&store, &sim, &counter, cfg.ingesters, stop).await })
    };
    let t = Instant::now();
    let removed = janitor
        .sweep(SIM_START_MS + (DAYS + 2) * DAY_MS, &never)
        .await
        .expect("the janitor's sweep of day 2");
    let loaded = t.elapsed().as_secs_f64();
    stop.cancel();
    let busy = load.await.expect("the ingest load");
    println!(
        "janitor, day 2 expired under ingest: {} rows in {loaded:.1} s",
        thousands(removed as u64)
    );
    println!(
        "ingest while the janitor runs: {} statuses/s durable ({} in {:.1} s)",
        thousands(busy.per_sec() as u64),
        thousands(busy.statuses),
        busy.secs
    );
    store.close();
    println!("machine load average at the end: {}", load_average());
    println!(
        "\nsummary: {size:.0} bytes/status (file), lookup p50 {p50:.1} µs / p99 {p99:.1} µs (API), janitor day expiry {alone:.1} s alone / {loaded:.1} s under ingest, ingest {} statuses/s with the janitor idle / {} while it runs",
        thousands(quiet.per_sec() as u64),
        thousands(busy.per_sec() as u64)
    );
}

fn open(path: &Path) -> Store {
    let dir = path.parent().expect("the database's folder");
    Store::open(path, &KeyLocation::in_data_dir(dir)).expect("open the store")
}

/// What every message and recipient is, derived from its number alone, so
/// the lookups find the ids the build wrote without keeping them.
#[derive(Clone)]
struct Sim {
    messages: u64,
    recipients: u64,
    /// Simulated ms between two sends.
    spacing: f64,
}

struct Message {
    id: String,
    phone: String,
    user_id: Option<String>,
    number: (&'static str, &'static str),
    sent_at_ms: u64,
    seed: u64,
}

impl Sim {
    fn new(statuses: u64) -> Sim {
        let messages = ((statuses as f64 / PER_MESSAGE) as u64).max(1);
        Sim {
            messages,
            recipients: (messages / 4).max(1),
            spacing: (DAYS * DAY_MS) as f64 / messages as f64,
        }
    }

    fn sent_at(&self, m: u64) -> u64 {
        SIM_START_MS + (m as f64 * self.spacing) as u64
    }

    fn message(&self, m: u64) -> Message {
        let r = hash(m, 3) % self.recipients;
        let (phone, country) = phone_number(r);
        let user_id = hash(r, 11).is_multiple_of(2).then(|| {
            format!(
                "{country}.{}",
                10_000_000_000_000_000_000 + hash(r, 12) % 8_000_000_000_000_000_000
            )
        });
        let mut raw = vec![0x1c, 0x18, phone.len() as u8];
        raw.extend(phone.as_bytes());
        raw.extend([0x15, 0x02, 0x00, 0x11, 0x18, 0x12]);
        raw.extend(format!("{:016X}{:02X}", hash(m, 4), hash(m, 5) & 0xff).as_bytes());
        raw.push(0);
        Message {
            id: format!("wamid.{}", STANDARD.encode(raw)),
            phone,
            user_id,
            number: PHONES[(hash(m, 6) % 3) as usize],
            sent_at_ms: self.sent_at(m),
            seed: m,
        }
    }
}

/// A recipient's phone number and its country's code, by a mix of countries.
fn phone_number(r: u64) -> (String, &'static str) {
    let d = |n: u32, salt: u64| {
        let modulus = 10u64.pow(n);
        format!("{:0width$}", hash(r, salt) % modulus, width = n as usize)
    };
    match hash(r, 10) % 100 {
        0..35 => (format!("1{}{}", 200 + hash(r, 20) % 800, d(7, 21)), "US"),
        35..50 => (format!("91{}{}", 6 + hash(r, 20) % 4, d(9, 21)), "IN"),
        50..62 => (format!("55{}9{}", 11 + hash(r, 20) % 89, d(8, 21)), "BR"),
        62..72 => (format!("52{}", d(10, 21)), "MX"),
        72..80 => (format!("447{}", d(9, 21)), "GB"),
        80..88 => (format!("4915{}", d(9, 21)), "DE"),
        88..94 => (format!("628{}", d(9, 21)), "ID"),
        _ => (format!("420{}{}", 6 + hash(r, 20) % 2, d(8, 21)), "CZ"),
    }
}

/// splitmix64 of (n, salt): every attribute of a message from its number.
fn hash(n: u64, salt: u64) -> u64 {
    let mut z = n
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Meta's status webhook for one status of `msg`, as Meta sends it.
fn webhook_body(msg: &Message, status: &str, at_ms: u64) -> String {
    let ts = at_ms / 1000;
    let mut s = format!(
        r#"{{"id":"{}","status":"{status}","timestamp":"{ts}","recipient_id":"{}""#,
        msg.id, msg.phone
    );
    if let Some(user) = &msg.user_id {
        s.push_str(&format!(r#","recipient_user_id":"{user}""#));
    }
    let (category, kind, billable) = match hash(msg.seed, 9) % 100 {
        0..45 => ("marketing", "regular", true),
        45..85 => ("utility", "regular", true),
        85..95 => ("authentication", "regular", true),
        _ => ("service", "free_customer_service", false),
    };
    let conversation = format!("{:016x}{:016x}", hash(msg.seed, 7), hash(msg.seed, 8));
    let sent_secs = msg.sent_at_ms / 1000;
    match status {
        "sent" => s.push_str(&format!(
            r#","conversation":{{"id":"{conversation}","expiration_timestamp":"{}","origin":{{"type":"{category}"}}}},"pricing":{{"billable":{billable},"pricing_model":"PMP","category":"{category}","type":"{kind}"}}"#,
            sent_secs + 86_400
        )),
        "delivered" => s.push_str(&format!(
            r#","conversation":{{"id":"{conversation}","origin":{{"type":"{category}"}}}},"pricing":{{"billable":{billable},"pricing_model":"PMP","category":"{category}","type":"{kind}"}}"#
        )),
        "failed" => s.push_str(
            r#","errors":[{"code":131026,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"Message Undeliverable."},"href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]"#,
        ),
        _ => {}
    }
    s.push('}');
    let (phone_id, display) = msg.number;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"{display}","phone_number_id":"{phone_id}"}},"statuses":[{s}]}},"field":"messages"}}]}}]}}"#
    )
}

/// The events the gateway makes of that webhook.
fn parsed(msg: &Message, status: &str, at_ms: u64) -> Vec<InboundEvent> {
    let body = webhook_body(msg, status, at_ms);
    let events = webhook::parse(body.as_bytes(), at_ms).expect("a usable status webhook");
    assert_eq!(events.len(), 1, "one status, one event");
    events
}

/// What `POST …/messages` records from Meta's answer to a send.
fn accepted(msg: &Message) -> StatusRecord {
    StatusRecord {
        message_id: msg.id.clone(),
        status: "accepted".into(),
        timestamp: Some((msg.sent_at_ms / 1000).to_string()),
        recipient_id: Some(msg.phone.clone()),
        recipient_user_id: msg.user_id.clone(),
        recipient_type: Some("individual".into()),
        waba_id: WABA.into(),
        phone_number_id: msg.number.0.into(),
        received_at: msg.sent_at_ms,
        ..StatusRecord::default()
    }
}

/// One slice of simulated time: the sends within it, and every status Meta
/// reported within it.
struct Slice {
    now_ms: u64,
    accepted: Vec<StatusRecord>,
    events: Vec<InboundEvent>,
}

/// Makes the slices on a thread of its own (parsing is most of the work), so
/// the writer commits one slice while the next is parsed.
fn slices(sim: Sim) -> mpsc::Receiver<Slice> {
    let (tx, rx) = mpsc::sync_channel(2);
    std::thread::spawn(move || {
        // (arrival ms, message): `read`s that come in a later slice.
        let mut reads: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
        let mut m = 0;
        let mut end = SIM_START_MS;
        while m < sim.messages || !reads.is_empty() {
            end += SLICE_MS;
            let mut slice = Slice {
                now_ms: end,
                accepted: Vec::new(),
                events: Vec::new(),
            };
            let mut now = end;
            let mut statuses = |events: Vec<InboundEvent>, at: u64| {
                now = now.max(at);
                slice.events.extend(events);
            };
            let mut sent = Vec::new();
            while m < sim.messages && sim.sent_at(m) < end && (sent.len() as u64) < SLICE_MESSAGES {
                let msg = sim.message(m);
                let t = msg.sent_at_ms;
                sent.push(accepted(&msg));
                statuses(parsed(&msg, "sent", t + 1_000), t + 1_000);
                if hash(m, 1) % 100 < 4 {
                    statuses(parsed(&msg, "failed", t + 2_000), t + 2_000);
                } else {
                    statuses(parsed(&msg, "delivered", t + 3_000), t + 3_000);
                    if hash(m, 2) % 100 < 62 {
                        reads.push(Reverse((t + 60_000 + hash(m, 13) % (6 * 3_600_000), m)));
                    }
                }
                m += 1;
            }
            while let Some(Reverse((at, read))) = reads.peek().copied() {
                if at >= end && m < sim.messages {
                    break;
                }
                reads.pop();
                statuses(parsed(&sim.message(read), "read", at), at);
            }
            slice.now_ms = now;
            slice.accepted = sent;
            if slice.accepted.is_empty() && slice.events.is_empty() {
                continue;
            }
            if tx.send(slice).is_err() {
                return;
            }
        }
    });
    rx
}

async fn build(store: &Store, sim: &Sim) {
    let started = Instant::now();
    let mut built = 0u64;
    let mut next_report = 0.1;
    let planned = sim.messages as f64 * PER_MESSAGE;
    let (mut waiting, mut sending, mut ingesting) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut t = Instant::now();
    for slice in slices(sim.clone()) {
        waiting += t.elapsed();
        t = Instant::now();
        // Queued together with the slice's ingest, the sends share its
        // commits instead of paying one fsync per few of them.
        let mut sends = JoinSet::new();
        built += slice.accepted.len() as u64;
        for record in slice.accepted {
            let store = store.clone();
            sends.spawn(async move { store.record_sent(record).await });
        }
        let n = slice.events.len();
        let report = store
            .ingest(slice.events, slice.now_ms)
            .await
            .expect("ingest a slice");
        assert_eq!((report.accepted, report.duplicates), (n, 0));
        ingesting += t.elapsed();
        t = Instant::now();
        while let Some(done) = sends.join_next().await {
            done.expect("a send's task").expect("record_sent");
        }
        sending += t.elapsed();
        t = Instant::now();
        built += n as u64;
        if built as f64 >= planned * next_report {
            println!(
                "  built {:>11} statuses in {:>6.1} s",
                thousands(built),
                started.elapsed().as_secs_f64()
            );
            next_report += 0.1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  waiting for parsed slices {:.1} s, for record_sent after ingest {:.1} s, for ingest {:.1} s",
        waiting.as_secs_f64(),
        sending.as_secs_f64(),
        ingesting.as_secs_f64()
    );
    println!(
        "built {} statuses in {secs:.1} s ({} statuses/s through record_sent and ingest)",
        thousands(built),
        thousands((built as f64 / secs) as u64)
    );
}

/// Prints the file's size and each table's, per status; returns the file's
/// bytes per status.
fn footprint(path: &Path) -> f64 {
    let file = std::fs::metadata(path).expect("the database file").len();
    // A small cache: the statistics read each page once, and redb's default
    // (1 GiB) would hide the store's own peak memory in the process's.
    let db = redb::Database::builder()
        .set_cache_size(16 << 20)
        .open(path)
        .expect("open the database for its statistics");
    let tx = db.begin_read().expect("a read");
    let mut tables = Vec::new();
    for handle in tx.list_tables().expect("the tables") {
        let name = handle.name().to_string();
        let table = tx.open_untyped_table(handle).expect("a table");
        let stats = table.stats().expect("a table's statistics");
        let bytes = stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes();
        tables.push((name, table.len().expect("a table's length"), bytes, stats));
    }
    let statuses = tables
        .iter()
        .find(|t| t.0 == "statuses")
        .map(|t| t.1)
        .expect("a statuses table");
    let per = |bytes: u64| bytes as f64 / statuses as f64;
    println!(
        "disk: file {} bytes for {} statuses = {:.0} bytes/status",
        thousands(file),
        thousands(statuses),
        per(file)
    );
    tables.sort_by_key(|t| Reverse(t.2));
    for (name, rows, bytes, stats) in tables.iter().take(8) {
        println!(
            "  {name:<20} {:>12} rows {:>15} bytes = {:>5.0} bytes/status (keys+values {:.0} bytes/row, height {})",
            thousands(*rows),
            thousands(*bytes),
            per(*bytes),
            stats.stored_bytes() as f64 / (*rows).max(1) as f64,
            stats.tree_height()
        );
    }
    per(file)
}

/// Reads the history of random messages, as `GET /api/v1/messages/{id}`
/// (`status_history_in`) and the backoffice timeline (`status_history`) do.
/// Returns the API's p50 and p99 in µs.
fn lookups(store: &Store, sim: &Sim, n: usize) -> (f64, f64) {
    let wabas = [WABA.to_string()];
    let mut api = Vec::with_capacity(n);
    let mut office = Vec::with_capacity(n);
    let mut rows = 0;
    for i in 0..n as u64 {
        let msg = sim.message(hash(i, 99) % sim.messages);
        let t = Instant::now();
        let history = store.status_history_in(&msg.id, &wabas).expect("a history");
        api.push(t.elapsed());
        assert!(!history.is_empty(), "{} has a history", msg.id);
        rows += history.len();
        let msg = sim.message(hash(i, 98) % sim.messages);
        let t = Instant::now();
        let history = store.status_history(&msg.id).expect("a history");
        office.push(t.elapsed());
        assert!(!history.is_empty(), "{} has a history", msg.id);
    }
    let mut figures = Vec::new();
    for (what, mut times) in [
        ("API (status_history_in)", api),
        ("backoffice (status_history)", office),
    ] {
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        figures.push((at(0.50).as_secs_f64() * 1e6, at(0.99).as_secs_f64() * 1e6));
        println!(
            "lookup of one message's history, {what}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} random messages ({:.1} statuses each)",
            at(0.50).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6,
            times[times.len() - 1].as_secs_f64() * 1e6,
            thousands(times.len() as u64),
            rows as f64 / n as f64
        );
    }
    figures[0]
}

struct Ingested {
    statuses: u64,
    secs: f64,
}

impl Ingested {
    fn per_sec(&self) -> f64 {
        self.statuses as f64 / self.secs
    }
}

async fn ingest_for(
    store: &Store,
    sim: &Sim,
    counter: &Arc<AtomicU64>,
    ingesters: usize,
    secs: u64,
) -> Ingested {
    let stop = CancellationToken::new();
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.cancel();
        })
    };
    let done = ingest_until(store, sim, counter, ingesters, stop).await;
    timer.await.expect("the timer");
    done
}

/// `ingesters` requests at a time, each one of today's statuses parsed from
/// its own webhook, until `stop`: `sent`, `delivered` and `read` of new
/// messages in turn.
async fn ingest_until(
    store: &Store,
    sim: &Sim,
    counter: &Arc<AtomicU64>,
    ingesters: usize,
    stop: CancellationToken,
) -> Ingested {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..ingesters {
        let (store, sim, counter, stop) =
            (store.clone(), sim.clone(), counter.clone(), stop.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while !stop.is_cancelled() {
                let k = counter.fetch_add(1, Ordering::Relaxed);
                let mut msg = sim.message(sim.messages + k / 3);
                let now = SIM_START_MS + DAYS * DAY_MS + k;
                msg.sent_at_ms = now;
                let status = ["sent", "delivered", "read"][(k % 3) as usize];
                let report = store
                    .ingest(parsed(&msg, status, now), now)
                    .await
                    .expect("ingest one status");
                n += report.accepted as u64;
            }
            n
        });
    }
    let mut statuses = 0;
    while let Some(n) = tasks.join_next().await {
        statuses += n.expect("an ingest task");
    }
    Ingested {
        statuses,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// The other work on the machine skews every figure: shown with them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
