//! Talking to a running wabridge from the command line (healthcheck, backup,
//! config check): where it listens, and an HTTP client that accepts the
//! generated self-signed certificate on loopback only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::ServeArgs;

/// The base URL of the server these settings describe, as seen from this host:
/// a wildcard listen address (`0.0.0.0`, `::`) is reached on loopback.
pub fn local_base(args: &ServeArgs) -> String {
    let ip = match args.listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!(
        "{}://{}",
        args.scheme(),
        SocketAddr::new(ip, args.listen.port())
    )
}

/// Whether `url` points at this host (its certificate need not be verified).
pub fn is_loopback(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// A command's `--timeout`: at most a day, since the HTTP client adds it to
/// the clock and a far larger one overflows it.
pub fn parse_timeout(raw: &str) -> Result<Duration, String> {
    crate::config::at_most(raw, 1, "1d")
}

/// A client that reports every HTTP status instead of failing on 4xx/5xx.
/// TLS certificates are verified, except on loopback or when `insecure`.
pub fn agent(url: &str, timeout: Duration, insecure: bool) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(insecure || is_loopback(url))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .tls_config(tls)
        .user_agent(concat!("wabridge-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// `WABRIDGE_ADMIN_TOKEN`, where set and not blank.
pub fn admin_token() -> Option<String> {
    std::env::var("WABRIDGE_ADMIN_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A short, readable form of a ureq error.
pub fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "no answer in time".into(),
        ureq::Error::ConnectionFailed => "connection refused".into(),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_recognised() {
        assert!(is_loopback("https://127.0.0.1:8443/healthz"));
        assert!(is_loopback("https://[::1]:8443"));
        assert!(is_loopback("http://localhost:1"));
        assert!(!is_loopback("https://gw.example.com"));
        assert!(!is_loopback("https://10.0.0.1"));
    }
}
