//! Wiring: data dir and lock, store, admin token, TLS, server, workers, shutdown.

use std::fs::{self, File};
use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::ServeArgs;
use crate::domain::coexistence;
use crate::domain::delivery::RetryPolicy;
use crate::domain::ids::{admin_token_problem, new_token, token_hash, PhoneNumberId};
use crate::domain::throughput::{Throughput, HIGH_RATE};
use crate::domain::time::now_ms;
use crate::domain::traffic::{minute_of, Traffic, WINDOW};
use crate::domain::urlguard::UrlGuard;
use crate::domain::webhook_health::WebhookWatch;
use crate::error::Error;
use crate::files;
use crate::http::limits::{set_body_timeout, BodyBudget, Connections, EdgeLimits};
use crate::http::password_checks::PasswordChecks;
use crate::http::{server, tls, AppState, Backoffice, Sessions, Throttle};
use crate::meta::{Graph, GraphConfig};
use crate::metrics::Metrics;
use crate::store::{self, Store};
use crate::usecase::flows::{FlowTool, ToolCall};
use crate::usecase::ingest::Intake;
use crate::usecase::{sandbox, Services, Wake};
use crate::worker::{Dispatcher, FactsFlusher, Janitor, Sender, TokenKeeper, TrafficFlusher};
use crate::VERSION;

mod log_sink;

/// Runs the gateway until SIGTERM. `warnings` are configuration problems found
/// while parsing (unknown config keys or `WABRIDGE_*` variables), logged at start.
pub fn serve(args: ServeArgs, warnings: Vec<String>) -> Result<(), Error> {
    // Held to the end: its drop writes the last lines before the process exits.
    let _log = init_logging()?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Startup(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(run(args));
    // A request's task still blocked in the network must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

/// One line per event on stderr, filtered by `RUST_LOG` (e.g. `info`,
/// `wabridge=debug`). Under systemd (`JOURNAL_STREAM` set) the timestamp is left
/// to journald; a terminal gets colours, journald and files plain text.
///
/// Lines are written by a thread of their own, in batches (`log_sink`): a
/// request never waits on the write to journald or a pipe. A full buffer makes
/// the logger wait rather than drop lines. Dropping the returned guard writes
/// what is pending, waiting a second at most for a stalled output.
pub fn init_logging() -> Result<log_sink::Flush, Error> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (sink, flush) = log_sink::start(std::io::stderr(), log_sink::LINGER, log_sink::CAPACITY)
        .map_err(|e| Error::Startup(format!("cannot start the log writer: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink)
        .with_ansi(ansi);
    let _ = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    Ok(flush)
}

async fn run(args: ServeArgs) -> Result<(), Error> {
    if let Some(problem) = args.edge_problem() {
        return Err(Error::Startup(problem));
    }
    let _lock = lock_data_dir(&args.data_dir)?;
    let key = store::locate_key(&args.data_dir, args.secrets_key.as_deref());
    let store = Store::open_with(
        &args.data_dir.join("wabridge.redb"),
        &key,
        args.min_free_space,
    )?;
    // A start that fails later (certificate, port) still closes the database
    // cleanly, so `backup` and `config check` can open it read-only after.
    let _close_on_exit = CloseOnDrop(store.clone());
    let tls = if args.no_tls {
        None
    } else {
        let files = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ => tls::self_signed(
                &args.data_dir,
                url::Url::parse(&args.public_url)
                    .ok()
                    .as_ref()
                    .and_then(|u| u.host_str()),
            )?,
        };
        Some(tls::acceptor(&files)?)
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| Error::Startup(format!("cannot listen on {}: {e}", args.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Startup(e.to_string()))?;
    // After the certificate and the port: a generated token is shown only once,
    // so a start that fails on those must not use up its showing.
    let admin_token_hash = admin_token(&store).await?;

    set_body_timeout(args.body_timeout);
    let max_connections = connection_cap(
        args.max_connections as usize,
        usize::from(args.delivery_concurrency),
    );
    let metrics = Arc::new(Metrics::default());
    let wake = Arc::new(Notify::new());
    let watch = Arc::new(WebhookWatch::new(store.webhook_facts()?));
    let since = (minute_of(now_ms()) + 1).saturating_sub(WINDOW);
    let traffic = Arc::new(Traffic::restored(store.traffic_since(since)?));
    let guard = UrlGuard {
        allow: args.webhook_allow_net.clone(),
    };
    let (sandbox_feed, sandbox_queue) = sandbox::Feed::new();
    // Deliveries and Flows requests each have a client and a pool of their
    // own, on their own runtime: a pooled connection is served by the
    // runtime that opened it.
    let sender = Arc::new(Sender::new(args.delivery_timeout, guard.clone()));
    let flow_tool = Arc::new(Sender::new(args.delivery_timeout, guard.clone()));
    let app = Services {
        settings: RwLock::new(store.settings()?),
        store: store.clone(),
        graph: Graph::new(GraphConfig {
            base_url: args.graph_url.clone(),
            version: args.graph_version.clone(),
        }),
        guard: guard.clone(),
        public_url: args.public_url.clone(),
        facebook_url: args.facebook_url.clone(),
        graph_version: args.graph_version.clone(),
        connect_state_ttl: args.connect_state_ttl,
        metrics: metrics.clone(),
        watch: watch.clone(),
        traffic: traffic.clone(),
        wake: Wake::new(wake.clone()),
        sandbox_feed,
        flow_tool,
        send_rate: Mutex::new(send_rates(
            &store,
            args.send_rate_per_number,
            args.send_rate_chosen,
        )?),
    };
    let state = Arc::new(AppState {
        app,
        admin_token_hash,
        max_body_bytes: args.max_body_bytes,
        connections: Connections::new(max_connections, args.max_connections_per_address as usize),
        body_budget: BodyBudget::new(args.webhook_body_budget),
        form_budget: BodyBudget::new(FORM_BUDGET),
        backoffice: Backoffice {
            sessions: Sessions::new(args.admin_idle_timeout),
            throttle: Throttle::new(LOGIN_FAILURES, FAILURE_WINDOW),
            password_checks: PasswordChecks::start(PASSWORD_CHECKS, PASSWORD_QUEUE),
        },
        api_throttle: Throttle::new(TOKEN_FAILURES, FAILURE_WINDOW),
        trusted_proxies: args.trusted_proxies.clone(),
    });
    // Installed before anything is spawned or "listening on" is printed: a
    // SIGTERM right after that line must be a clean shutdown, not a kill.
    let stop = stop_signals()?;
    let shutdown = CancellationToken::new();
    let dispatcher = Dispatcher {
        store: store.clone(),
        sender,
        policy: RetryPolicy {
            schedule: args.retry_schedule.clone(),
        },
        concurrency: usize::from(args.delivery_concurrency),
        wake,
        metrics,
        traffic: traffic.clone(),
        drain_timeout: args.delivery_timeout + Duration::from_secs(2),
    };
    // Deliveries run apart from the server's workers: there, an answer from a
    // flow webhook waited behind every queued request, so under a full
    // ingest load deliveries fell behind and the backlog grew.
    let workers = on_own_thread("wabridge-deliver", dispatcher.run(shutdown.clone())).await?;
    let janitor = Janitor {
        store: store.clone(),
        retention: args.retention,
    };
    let janitor = tokio::spawn(janitor.run(shutdown.clone()));
    let keeper = TokenKeeper {
        store: store.clone(),
        graph: state.graph.clone(),
        interval: args.token_check_interval,
    };
    let keeper = tokio::spawn(keeper.run(shutdown.clone()));
    let facts = FactsFlusher {
        store: store.clone(),
        watch,
    };
    let facts = tokio::spawn(facts.run(shutdown.clone()));
    let feed = tokio::spawn(sandbox::run_feed(
        sandbox_queue,
        Intake::new(&state),
        shutdown.clone(),
    ));
    let counts = TrafficFlusher {
        store: store.clone(),
        traffic,
    };
    // Stopped after the server and the deliveries: the last write has their last counts.
    let counts_stop = CancellationToken::new();
    let counts = tokio::spawn(counts.run(counts_stop.clone()));
    tokio::spawn(on_signal(stop, shutdown.clone()));

    announce(&format!("listening on {}://{bound}", args.scheme()));
    tracing::info!(public_url = %args.public_url, webhook = %crate::domain::paths::public(&args.public_url, crate::domain::paths::EVENTS), secrets_key = %key.path.display(), "wabridge {VERSION} ready; keep a copy of the secrets key with your backups");
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    let limits = EdgeLimits {
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        max_connections,
        max_connections_per_address: args.max_connections_per_address as usize,
        webhook_body_budget: args.webhook_body_budget,
    };
    server::serve(listener, tls, state, shutdown.clone(), limits).await;
    // Every background task watches `shutdown`; each gets a bounded time to finish
    // before the store closes. The dispatcher bounds itself (`drain_timeout`).
    let _ = workers.await;
    counts_stop.cancel();
    tokio::join!(
        // Stops between two batches; a batch is one short write.
        finish("janitor", janitor, Duration::from_secs(10)),
        // A check waiting on Meta is not worth holding the exit for; it is redone next start.
        finish("token keeper", keeper, Duration::from_secs(5)),
        // Its last flush is one small write: what the webhook saw survives the restart.
        finish("checklist saver", facts, Duration::from_secs(5)),
        // Likewise the traffic counts of the last minutes, for the charts.
        finish("traffic saver", counts, Duration::from_secs(5)),
        // Statuses not yet due are a sandbox's: not worth a wait.
        finish("sandbox feed", feed, Duration::from_secs(1)),
    );
    store.close();
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The Flows use case's flow tool is the delivery sender; the wiring lives
/// here, as `worker/` may not name the use cases nor they the worker.
impl FlowTool for Sender {
    fn exchange<'a>(
        &'a self,
        call: ToolCall<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>> {
        Box::pin(async move {
            self.call(
                call.url,
                call.secret,
                call.webhook_id,
                call.body.into(),
                call.timeout,
            )
            .await
            .map(|answer| answer.to_vec())
        })
    }
}

/// Wrong admin logins per address per window before the backoffice refuses more.
const LOGIN_FAILURES: usize = 5;
/// Wrong Bearer tokens per address per window before the API refuses more:
/// more than logins, as a flow tool with an old key retries on its own.
const TOKEN_FAILURES: usize = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bytes of forms anyone may post (logins, Meta's OAuth callback) being
/// received at once: each is at most 64 KiB and arrives in one packet or two.
const FORM_BUDGET: usize = 16 * 1024 * 1024;
/// Argon2id password checks at once (19 MiB each), and how many may wait.
const PASSWORD_CHECKS: usize = 2;
const PASSWORD_QUEUE: usize = 8;

/// File descriptors kept back from client connections: the database, the
/// log, deliveries in flight, Graph calls.
const RESERVED_FDS: usize = 256;

/// Each number's send bucket at `rate`; the numbers wabridge learned before
/// Meta upgraded at 1,000 a second, unless the admin chose `rate` (see
/// `domain::throughput`), and its coexistence numbers at Meta's 20.
fn send_rates(store: &Store, rate: u32, chosen: bool) -> Result<Throughput, Error> {
    let mut rates = if chosen {
        Throughput::new(rate)
    } else {
        Throughput::following_tiers(rate)
    };
    let facts = store.every_waba_facts()?;
    // Coexistence's 20 a second wins over HIGH: set last.
    for number in facts.iter().flat_map(|f| &f.high_throughput_numbers) {
        rates.set_rate_for(&PhoneNumberId::new(number), Some(HIGH_RATE));
    }
    for number in facts.iter().flat_map(|f| &f.coexistence_numbers) {
        rates.set_rate_for(&PhoneNumberId::new(number), Some(coexistence::RATE));
    }
    Ok(rates)
}

/// How many client connections may be open: the configured number, within
/// the process's file descriptor limit, which is first raised to its hard
/// limit (a shell's or systemd's soft limit is often 1024).
fn connection_cap(wanted: usize, delivery_concurrency: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file descriptor limit");
            return wanted;
        }
    };
    let room = limit
        .saturating_sub(RESERVED_FDS + delivery_concurrency)
        .max(16);
    if room < wanted {
        tracing::warn!(
            fd_limit = limit,
            max_connections = room,
            "the file descriptor limit allows fewer connections than --max-connections; raise LimitNOFILE"
        );
    }
    wanted.min(room)
}

/// Runs `task` on a single-threaded runtime on a thread of its own; the
/// returned receiver resolves once it has finished (or panicked). What it
/// spawned is not run after it returns: it is dropped, once the blocking work
/// it started (a DNS lookup) has ended or a second has passed.
async fn on_own_thread(
    name: &str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<()>, Error> {
    let (started, start) = tokio::sync::oneshot::channel();
    let (done, finished) = tokio::sync::oneshot::channel();
    // Built on its own thread: a runtime may not be dropped in async code,
    // as it would be here if the thread could not start.
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let _ = started.send(Ok(()));
            runtime.block_on(task);
            runtime.shutdown_timeout(Duration::from_secs(1));
            let _ = done.send(());
        })
        .map_err(|e| Error::Startup(format!("cannot start the {name} thread: {e}")))?;
    match start.await {
        Ok(Ok(())) => Ok(finished),
        Ok(Err(e)) => Err(Error::Startup(format!(
            "cannot start the {name} runtime: {e}"
        ))),
        Err(_) => Err(Error::Startup(format!("the {name} thread ended at start"))),
    }
}

/// Waits up to `bound` for a background task that was told to stop.
async fn finish(name: &str, task: tokio::task::JoinHandle<()>, bound: Duration) {
    if tokio::time::timeout(bound, task).await.is_err() {
        tracing::warn!(task = name, "did not stop in time; leaving it behind");
    }
}

/// Tells systemd (`Type=notify`) how we are doing; a no-op outside systemd.
fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(false, states) {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

/// Stops the store's writer when dropped; the last `Store` handle then closes the file.
struct CloseOnDrop(Store);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A line on stdout for people and scripts (tests read the bound port from it).
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

type StopSignals = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

fn stop_signals() -> Result<StopSignals, Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind| {
        signal(kind).map_err(|e| Error::Startup(format!("cannot listen for SIGTERM/SIGINT: {e}")))
    };
    Ok((
        listen(SignalKind::terminate())?,
        listen(SignalKind::interrupt())?,
    ))
}

async fn on_signal((mut term, mut int): StopSignals, shutdown: CancellationToken) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing requests and deliveries in flight");
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    shutdown.cancel();
}

/// Creates the data dir (0700; an existing one that lets others in is made
/// private) and takes an exclusive lock on it for the life of the process.
fn lock_data_dir(dir: &Path) -> Result<File, Error> {
    files::private_dir(dir)?;
    let path = dir.join("wabridge.lock");
    let file = files::open_private(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Startup(format!(
            "data dir {} is in use by another wabridge process",
            dir.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(Error::Startup(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// `WABRIDGE_ADMIN_TOKEN` wins; without it a stored hash is kept; on a first
/// start a token is generated and printed once. Only the hash is stored.
async fn admin_token(store: &Store) -> Result<String, Error> {
    if let Some(token) = std::env::var("WABRIDGE_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        if let Some(problem) = admin_token_problem(&token) {
            return Err(Error::Startup(problem));
        }
        let hash = token_hash(token.trim());
        if store.admin_token_hash()?.as_deref() != Some(hash.as_str()) {
            store.set_admin_token_hash(hash.clone()).await?;
        }
        return Ok(hash);
    }
    if let Some(hash) = store.admin_token_hash()? {
        return Ok(hash);
    }
    let token = new_token("wbadm");
    let hash = token_hash(&token);
    store.set_admin_token_hash(hash.clone()).await?;
    announce(&format!("admin token (shown once, keep it safe): {token}"));
    Ok(hash)
}
