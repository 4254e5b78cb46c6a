//! The command line and its `WABRIDGE_*` environment twins, validated once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

    /// Largest webhook body accepted from Meta, in bytes.
    #[arg(long, env = "WABRIDGE_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long a flow webhook may take to answer before the attempt counts as failed.
    #[arg(long, env = "WABRIDGE_DELIVERY_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub delivery_timeout: Duration,

    /// How many deliveries may be in flight at once.
    #[arg(long, env = "WABRIDGE_DELIVERY_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub delivery_concurrency: u16,

    /// Delays between delivery attempts (±20 % jitter); after the last one a
    /// delivery is marked failed.
    #[arg(long, env = "WABRIDGE_RETRY_SCHEDULE", value_delimiter = ',', default_value = "5s,5m,30m,2h,5h,10h,14h,20h,24h", value_parser = humantime::parse_duration)]
    pub retry_schedule: Vec<Duration>,

    /// How long events, their dedupe keys, status history and finished deliveries
    /// are kept. At least 7 days, because Meta redelivers webhooks for up to a week.
    #[arg(long, env = "WABRIDGE_RETENTION", default_value = "30d", value_parser = parse_retention)]
    pub retention: Duration,
}

impl ServeArgs {
    /// The scheme the listener speaks, for log lines and the self-signed cert.
    pub fn scheme(&self) -> &'static str {
        if self.no_tls {
            "http"
        } else {
            "https"
        }
    }
}

fn parse_retention(raw: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if d < Duration::from_secs(7 * 86400) {
        return Err("must be at least 7d: Meta redelivers webhooks for up to a week".into());
    }
    Ok(d)
}

fn parse_base_url(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(raw.trim_end_matches('/').to_string())
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
    fn public_url_must_be_http() {
        assert!(parse_public_url("ftp://x").is_err());
        assert!(parse_public_url("https://x/?a=b").is_err());
        assert!(parse_public_url("nope").is_err());
    }
}
