//! One delivery attempt: a signed POST with a timeout, to an address the guard allows.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::domain::delivery::{parse_retry_after, Attempt};
use crate::domain::signature::{sign_meta, standard_webhooks_signature};
use crate::domain::subscription::Format;
use crate::domain::urlguard::UrlGuard;

/// How much of a receiver's error answer we keep for the admin.
const ERROR_BODY_CHARS: usize = 300;

/// Idle connections kept for reuse, in all and per receiver. ureq keeps 3 per
/// host by default, so with many deliveries in flight to one flow tool most
/// attempts paid for a new TCP (and TLS) connection. At most one connection is
/// open per delivery in flight (`--delivery-concurrency`, at most 4096), and
/// idle ones still close after ureq's 15 s.
const IDLE_CONNECTIONS: usize = 4096;

pub struct Sender {
    agent: ureq::Agent,
}

impl Sender {
    pub fn new(timeout: Duration, guard: UrlGuard) -> Self {
        let config = Config::builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // A redirect could lead anywhere; receivers must answer at their URL.
            .max_redirects(0)
            .max_idle_connections(IDLE_CONNECTIONS)
            .max_idle_connections_per_host(IDLE_CONNECTIONS)
            .user_agent(concat!("wabridge/", env!("CARGO_PKG_VERSION")))
            .build();
        let resolver = GuardedResolver {
            inner: DefaultResolver::default(),
            guard,
        };
        Sender {
            agent: ureq::Agent::with_parts(config, DefaultConnector::default(), resolver),
        }
    }

    /// Blocking: run it on the blocking pool. A `meta` listener gets the
    /// body signed as Meta signs, with its secret as the app secret; the
    /// `webhook-id` still goes along, so a receiver can dedupe retries.
    pub fn send(
        &self,
        url: &str,
        secret: &str,
        format: Format,
        webhook_id: &str,
        body: &[u8],
    ) -> Attempt {
        let now = SystemTime::now();
        let ts = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let request = self
            .agent
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id);
        let request = match format {
            Format::Meta => request.header("x-hub-signature-256", &sign_meta(body, secret)),
            Format::Standard => match standard_webhooks_signature(secret, webhook_id, ts, body) {
                Ok(signature) => request
                    .header("webhook-timestamp", &ts.to_string())
                    .header("webhook-signature", &signature),
                Err(e) => return failed(None, e.to_string()),
            },
        };
        let result = request.send(body);
        let mut resp = match result {
            Ok(r) => r,
            Err(e) => return failed(None, describe(&e)),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        // Reading the answer lets the connection go back to the pool.
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        match status {
            200..=299 => Attempt::Delivered { status },
            410 => Attempt::Gone,
            _ => Attempt::Failed {
                status: Some(status),
                error: format!(
                    "HTTP {status}: {}",
                    text.chars().take(ERROR_BODY_CHARS).collect::<String>()
                ),
                retry_after,
            },
        }
    }
}

fn failed(status: Option<u16>, error: String) -> Attempt {
    Attempt::Failed {
        status,
        error,
        retry_after: None,
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "no answer within the delivery timeout".into(),
        ureq::Error::ConnectionFailed => "connection refused or unreachable".into(),
        other => other.to_string(),
    }
}

/// Resolves as usual, then drops every address the guard refuses. Checking
/// after resolution, at each attempt, defeats DNS names that point inside.
/// An IP literal is taken as it is: ureq's resolver would start a thread for
/// each lookup (that is how it honours the timeout), and ureq resolves before
/// it looks for a pooled connection, so that thread would be paid per attempt.
#[derive(Debug)]
struct GuardedResolver {
    inner: DefaultResolver,
    guard: UrlGuard,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let found = match ip_literal(uri) {
            Some(addr) => {
                let mut one = self.empty();
                one.push(addr);
                one
            }
            None => self.inner.resolve(uri, config, timeout)?,
        };
        let mut allowed = self.empty();
        for addr in found.iter().filter(|a| self.guard.permits(a.ip())) {
            allowed.push(*addr);
        }
        if allowed.is_empty() {
            let first = found
                .first()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let msg = format!("refused by the URL guard: {first} is not a public address (see --webhook-allow-net)");
            return Err(ureq::Error::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                msg,
            )));
        }
        Ok(allowed)
    }
}

/// The socket address of a URL whose host is an IP address (`[…]` for IPv6).
fn ip_literal(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("http")) => 80,
        (None, Some("https")) => 443,
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(url: &str) -> Option<SocketAddr> {
        ip_literal(&url.parse::<Uri>().unwrap())
    }

    #[test]
    fn ip_literals_need_no_lookup() {
        assert_eq!(
            literal("http://127.0.0.1:8080/hook"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            literal("https://10.1.2.3/x"),
            Some("10.1.2.3:443".parse().unwrap())
        );
        assert_eq!(literal("http://[::1]/x"), Some("[::1]:80".parse().unwrap()));
        assert_eq!(
            literal("https://[2001:db8::1]:8443/"),
            Some("[2001:db8::1]:8443".parse().unwrap())
        );
    }

    #[test]
    fn host_names_are_looked_up() {
        assert_eq!(literal("https://example.com/hook"), None);
        assert_eq!(literal("http://localhost:8080/hook"), None);
        assert_eq!(literal("http://127.0.0.1.nip.io/hook"), None);
    }
}
