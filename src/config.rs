//! The configuration, in one place and validated once at start. Each setting comes
//! from, in this order of precedence: a flag, its `WABRIDGE_*` environment twin, the
//! TOML file named by `--config` / `WABRIDGE_CONFIG`, the default.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, Command};
use ipnet::IpNet;

/// Flags of `wabridge serve`. Every flag also reads `WABRIDGE_<FLAG>`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Where the database, the lock and the generated certificate live.
    #[arg(long, env = "WABRIDGE_DATA_DIR", default_value = "./wabridge-data")]
    pub data_dir: PathBuf,

    /// Address and port to listen on.
    #[arg(long, env = "WABRIDGE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Base of every URL the gateway shows or sends to Meta.
    #[arg(long, env = "WABRIDGE_PUBLIC_URL", default_value = "https://localhost:8443", value_parser = parse_public_url)]
    pub public_url: String,

    /// PEM certificate chain to serve instead of the generated self-signed one.
    #[arg(
        long,
        env = "WABRIDGE_TLS_CERT",
        requires = "tls_key",
        conflicts_with = "no_tls"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key matching --tls-cert.
    #[arg(
        long,
        env = "WABRIDGE_TLS_KEY",
        requires = "tls_cert",
        conflicts_with = "no_tls"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve plain HTTP (behind a reverse proxy that terminates TLS).
    #[arg(long, env = "WABRIDGE_NO_TLS")]
    pub no_tls: bool,

    /// Meta's Graph API base URL (a local fake Meta in tests).
    #[arg(long, env = "WABRIDGE_GRAPH_URL", default_value = "https://graph.facebook.com", value_parser = parse_base_url)]
    pub graph_url: String,

    /// Graph API version used in every Graph call.
    #[arg(long, env = "WABRIDGE_GRAPH_VERSION", default_value = "v25.0")]
    pub graph_version: String,

    /// Host of Meta's OAuth dialog.
    #[arg(long, env = "WABRIDGE_FACEBOOK_URL", default_value = "https://www.facebook.com", value_parser = parse_base_url)]
    pub facebook_url: String,

    /// Networks that listener URLs may point into although they are not global
    /// (e.g. 127.0.0.0/8 for a flow tool on this host).
    #[arg(long, env = "WABRIDGE_WEBHOOK_ALLOW_NET", value_delimiter = ',')]
    pub webhook_allow_net: Vec<IpNet>,

    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names
    /// the client, e.g. 127.0.0.1/32 for nginx on this host. Empty: the peer's
    /// own address is the client's, whatever the headers say.
    #[arg(long, env = "WABRIDGE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// Largest webhook body accepted from Meta, in bytes.
    #[arg(long, env = "WABRIDGE_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// A connection with no request in progress is closed when it has not sent
    /// a complete request head within this long (since it opened, or since its
    /// last answer).
    #[arg(long, env = "WABRIDGE_HEADER_TIMEOUT", default_value = "20s", value_parser = parse_edge_timeout)]
    pub header_timeout: Duration,

    /// A webhook or form body must arrive in full within this long after its
    /// head, an upload must not pause longer, and an answer the client does
    /// not take for this long is dropped with its connection.
    #[arg(long, env = "WABRIDGE_BODY_TIMEOUT", default_value = "30s", value_parser = parse_edge_timeout)]
    pub body_timeout: Duration,

    /// Connections open at once. At the limit, the connection idle the longest
    /// is closed to make room for a new one.
    #[arg(long, env = "WABRIDGE_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub max_connections: u32,

    /// Connections open at once from one client address (an IPv6 /64 counts
    /// as one); trusted proxies are not limited.
    #[arg(long, env = "WABRIDGE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_address: u32,

    /// Bytes of webhook bodies being received at once, over all connections;
    /// beyond, webhooks are answered 503 with Retry-After until some finish.
    #[arg(long, env = "WABRIDGE_WEBHOOK_BODY_BUDGET", default_value_t = 64 * 1024 * 1024)]
    pub webhook_body_budget: usize,

    /// How long a flow webhook may take to answer before the attempt counts as failed.
    #[arg(long, env = "WABRIDGE_DELIVERY_TIMEOUT", default_value = "15s", value_parser = parse_delivery_timeout)]
    pub delivery_timeout: Duration,

    /// How many deliveries may be in flight at once, over all listeners.
    /// 128: on a 2-core machine, enough for one listener's deliveries to keep
    /// up with ingest at full speed (64 fell behind by a few percent).
    #[arg(long, env = "WABRIDGE_DELIVERY_CONCURRENCY", default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub delivery_concurrency: u16,

    /// Messages a second each phone number may send through wabridge (a
    /// burst of one second's worth at once); beyond, sends are answered 429
    /// with Retry-After before Meta is asked. Meta's default throughput is 80;
    /// left unset, a number Meta reports upgraded (throughput HIGH) sends at
    /// 1000; set, no number sends faster than it. 0 is no limit.
    #[arg(long, env = "WABRIDGE_SEND_RATE_PER_NUMBER", default_value_t = crate::domain::throughput::DEFAULT_RATE, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub send_rate_per_number: u32,

    /// Whether `send_rate_per_number` came from a flag, a variable or the
    /// config file rather than its default (filled in by `cli::parse_from`).
    #[arg(skip)]
    pub send_rate_chosen: bool,

    /// Delays between delivery attempts (±20 % jitter); after the last one a
    /// delivery is marked failed.
    #[arg(long, env = "WABRIDGE_RETRY_SCHEDULE", value_delimiter = ',', default_value = "5s,5m,30m,2h,5h,10h,14h,20h,24h", value_parser = parse_retry_delay)]
    pub retry_schedule: Vec<Duration>,

    /// How long events, their dedupe keys, status history and finished deliveries
    /// are kept. At least 7 days, because Meta redelivers webhooks for up to a week.
    #[arg(long, env = "WABRIDGE_RETENTION", default_value = "30d", value_parser = parse_retention)]
    pub retention: Duration,

    /// How often connected accounts' Meta tokens are checked and, when they
    /// expire within 10 days, refreshed.
    #[arg(long, env = "WABRIDGE_TOKEN_CHECK_INTERVAL", default_value = "6h", value_parser = parse_positive_duration)]
    pub token_check_interval: Duration,

    /// How long a customer may take from opening a connect link to finishing
    /// Meta's login (the signup wizard may include verifying a phone number).
    #[arg(long, env = "WABRIDGE_CONNECT_STATE_TTL", default_value = "30m", value_parser = parse_positive_duration)]
    pub connect_state_ttl: Duration,

    /// A backoffice session ends after this long without a request.
    #[arg(long, env = "WABRIDGE_ADMIN_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_idle_timeout)]
    pub admin_idle_timeout: Duration,

    /// Free space kept in reserve on the data dir's disk: below it, new events
    /// are refused with 503 (Meta retries later) before a write can fail for
    /// lack of room. A size (64MiB, 1GB) or a share of the disk (2%); 0 is off.
    #[arg(long, env = "WABRIDGE_MIN_FREE_SPACE", default_value = "64MiB")]
    pub min_free_space: crate::domain::disk::MinFreeSpace,

    /// The key that encrypts the stored secrets (app secret, account tokens,
    /// listener secrets): 32 bytes, generated at first start. Default: the
    /// systemd credential `wabridge-secrets-key` when there is one, else
    /// <data-dir>/secrets.key. Restoring a backup needs it.
    #[arg(long, env = "WABRIDGE_SECRETS_KEY", value_name = "FILE")]
    pub secrets_key: Option<PathBuf>,

    /// A TOML file with any of the settings above, keyed by the flag's name
    /// (`listen = "0.0.0.0:443"`, `data_dir = "/var/lib/wabridge"`). Flags and
    /// WABRIDGE_* variables win over it.
    #[arg(long, env = "WABRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ServeArgs {
    /// Settings that are each valid but do not fit together.
    pub fn edge_problem(&self) -> Option<String> {
        (self.webhook_body_budget < self.max_body_bytes).then(|| {
            format!(
                "--webhook-body-budget ({} bytes) is smaller than --max-body-bytes ({}): every large webhook from Meta would be refused",
                self.webhook_body_budget, self.max_body_bytes
            )
        })
    }

    /// The scheme the listener speaks, for log lines and the self-signed cert.
    pub fn scheme(&self) -> &'static str {
        if self.no_tls {
            "http"
        } else {
            "https"
        }
    }
}

/// The edge's deadlines: at least a second (a client needs a round trip),
/// at most an hour (beyond, they protect nothing).
fn parse_edge_timeout(raw: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&d) {
        return Err("must be from 1s to 1h".into());
    }
    Ok(d)
}

fn parse_retention(raw: &str) -> Result<Duration, String> {
    let d = at_most(raw, 3650, "3650d (ten years)")?;
    if d < Duration::from_secs(7 * DAY_SECS) {
        return Err("must be at least 7d: Meta redelivers webhooks for up to a week".into());
    }
    Ok(d)
}

const DAY_SECS: u64 = 86_400;

/// A duration of at most `days`. `humantime` takes up to 584 billion years,
/// and a deadline that far overflows the clock it is added to.
pub(crate) fn at_most(raw: &str, days: u64, shown: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if d > Duration::from_secs(days * DAY_SECS) {
        return Err(format!("must be at most {shown}"));
    }
    Ok(d)
}

fn parse_delivery_timeout(raw: &str) -> Result<Duration, String> {
    at_most(raw, 1, "1d")
}

fn parse_retry_delay(raw: &str) -> Result<Duration, String> {
    at_most(raw, 30, "30d each")
}

fn parse_idle_timeout(raw: &str) -> Result<Duration, String> {
    at_most(raw, 30, "30d")
}

/// Variables read outside clap: listed so they are not reported as unknown.
pub const OTHER_ENV: &[(&str, &str)] = &[
    (
        "WABRIDGE_ADMIN_TOKEN",
        "the admin credential (serve; backup and config check use it to ask a running server)",
    ),
    (
        "WABRIDGE_PURGE_DATA",
        "`yes` makes `apt purge wabridge` delete the data dir too",
    ),
];

/// Families of variables read by tools around wabridge (the benchmark harness
/// starts the gateway with its own environment): not reported as unknown.
pub const OTHER_ENV_PREFIXES: &[&str] = &["WABRIDGE_BENCH_"];

/// Where an effective setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    File,
    Default,
    Unset,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Flag => "flag",
            Origin::Env => "env",
            Origin::File => "file",
            Origin::Default => "default",
            Origin::Unset => "unset",
        }
    }
}

/// The command line after the config file has been layered in.
pub struct Layered {
    pub matches: ArgMatches,
    /// The config file that was read, if any.
    pub file: Option<PathBuf>,
    /// Ids of the settings the file supplied (nothing above it did).
    pub from_file: BTreeSet<String>,
    /// Unknown keys in the file and unknown `WABRIDGE_*` variables: probably typos.
    pub unknown: Vec<String>,
}

impl Layered {
    /// Where the setting `id` of the innermost subcommand came from.
    pub fn origin(&self, id: &str) -> Origin {
        if self.from_file.contains(id) {
            return Origin::File;
        }
        match leaf(&self.matches).value_source(id) {
            Some(ValueSource::CommandLine) => Origin::Flag,
            Some(ValueSource::EnvVariable) => Origin::Env,
            Some(ValueSource::DefaultValue) => Origin::Default,
            _ => Origin::Unset,
        }
    }
}

/// The ids of `serve`'s settings that a config file may set.
pub fn file_keys() -> Vec<String> {
    ServeArgs::augment_args(Command::new("serve"))
        .get_arguments()
        .filter(|a| a.get_long().is_some() && a.get_id() != "config")
        .map(|a| a.get_id().to_string())
        .collect()
}

/// Parses `argv`; where the innermost subcommand takes `--config`, settings that
/// neither a flag nor a variable gave are taken from that TOML file. They are
/// handed to clap as flags, so a file value is checked exactly like a flag.
pub fn parse_layered(cmd: Command, argv: Vec<OsString>) -> Result<Layered, clap::Error> {
    let first = cmd.clone().try_get_matches_from(&argv)?;
    let mut layered = Layered {
        matches: first,
        file: None,
        from_file: BTreeSet::new(),
        unknown: unknown_env(&cmd),
    };
    let leaf_cmd = leaf_command(&cmd, &layered.matches);
    let has_config = leaf_cmd.get_arguments().any(|a| a.get_id() == "config");
    let path = if has_config {
        leaf(&layered.matches).get_one::<PathBuf>("config").cloned()
    } else {
        None
    };
    let Some(path) = path else {
        return Ok(layered);
    };
    let table = read_file(&path)?;
    let keys = file_keys();
    let mut extra: Vec<OsString> = Vec::new();
    for (raw_key, value) in &table {
        let id = raw_key.replace('-', "_");
        let arg = leaf_cmd
            .get_arguments()
            .find(|a| a.get_id() == id.as_str() && keys.contains(&id));
        let Some(arg) = arg else {
            layered.unknown.push(format!(
                "unknown key `{raw_key}` in {} (known: {})",
                path.display(),
                keys.join(", ")
            ));
            continue;
        };
        if matches!(
            leaf(&layered.matches).value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let long = format!("--{}", arg.get_long().unwrap_or(&id));
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            match value {
                toml::Value::Boolean(true) => extra.push(long.into()),
                toml::Value::Boolean(false) => {}
                _ => {
                    return Err(file_error(
                        &path,
                        &format!("`{raw_key}` must be true or false"),
                    ))
                }
            }
        } else {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s.clone()),
                        toml::Value::Integer(i) => Ok(i.to_string()),
                        toml::Value::Float(f) => Ok(f.to_string()),
                        _ => Err(file_error(
                            &path,
                            &format!("`{raw_key}` must be a list of strings or numbers"),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                _ => {
                    return Err(file_error(
                        &path,
                        &format!("`{raw_key}` must be a string, a number, a boolean or a list"),
                    ))
                }
            };
            extra.push(long.into());
            extra.push(text.into());
        }
        layered.from_file.insert(id);
    }
    let mut all = argv;
    all.extend(extra);
    layered.matches = cmd.try_get_matches_from(all).map_err(|e| {
        let text = e.to_string();
        let first_line = text.lines().next().unwrap_or_default();
        file_error(&path, first_line.trim_start_matches("error: "))
    })?;
    layered.file = Some(path);
    Ok(layered)
}

fn read_file(path: &Path) -> Result<toml::Table, clap::Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, &format!("cannot read it: {e}")))?;
    text.parse::<toml::Table>()
        .map_err(|e| file_error(path, &format!("not valid TOML: {}", e.message())))
}

fn file_error(path: &Path, message: &str) -> clap::Error {
    clap::Error::raw(
        ErrorKind::ValueValidation,
        format!("config file {}: {message}\n", path.display()),
    )
}

/// The matches of the innermost subcommand.
pub fn leaf(matches: &ArgMatches) -> &ArgMatches {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    m
}

fn leaf_command(cmd: &Command, matches: &ArgMatches) -> Command {
    let mut c = cmd.clone();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        match c.find_subcommand(name) {
            Some(found) => c = found.clone(),
            None => break,
        }
        m = sub;
    }
    c
}

/// Every `WABRIDGE_*` variable some part of the program reads.
pub fn known_env(cmd: &Command) -> BTreeSet<String> {
    fn walk(c: &Command, out: &mut BTreeSet<String>) {
        for a in c.get_arguments() {
            if let Some(env) = a.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in c.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(cmd, &mut out);
    out.extend(OTHER_ENV.iter().map(|(k, _)| k.to_string()));
    out
}

fn unknown_env(cmd: &Command) -> Vec<String> {
    let known = known_env(cmd);
    let mut out: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("WABRIDGE_") && !known.contains(k))
        .filter(|k| !OTHER_ENV_PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(|k| format!("unknown environment variable {k} (ignored; a typo?)"))
        .collect();
    out.sort();
    out
}

fn parse_base_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(raw.trim_end_matches('/').to_string())
}

fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    let d = at_most(raw, 30, "30d")?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn parse_public_url(raw: &str) -> Result<String, String> {
    let base = parse_base_url(raw)?;
    let url = url::Url::parse(&base).map_err(|e| e.to_string())?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not carry a query or a fragment".into());
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_loses_its_trailing_slash() {
        assert_eq!(
            parse_public_url("https://gw.example.com/").unwrap(),
            "https://gw.example.com"
        );
    }

    #[test]
    fn retention_keeps_at_least_a_week() {
        assert!(parse_retention("6d").is_err());
        assert_eq!(
            parse_retention("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
    }

    #[test]
    fn durations_past_their_bound_are_refused_with_it() {
        assert!(parse_retention("3650d").is_ok());
        assert_eq!(
            parse_retention("3651d").unwrap_err(),
            "must be at most 3650d (ten years)"
        );
        assert_eq!(
            parse_retry_delay("18446744073709551615s").unwrap_err(),
            "must be at most 30d each"
        );
        assert_eq!(
            parse_delivery_timeout("24h").unwrap(),
            Duration::from_secs(DAY_SECS)
        );
        assert!(parse_delivery_timeout("25h").is_err());
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("31d").is_err());
        assert!(parse_idle_timeout("2s").is_ok());
    }

    #[test]
    fn public_url_must_be_http() {
        assert!(parse_public_url("ftp://x").is_err());
        assert!(parse_public_url("https://x/?a=b").is_err());
        assert!(parse_public_url("nope").is_err());
    }
}
