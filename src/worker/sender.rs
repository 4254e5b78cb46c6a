//! One delivery attempt: a signed POST with a timeout, to an address the guard allows.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::domain::delivery::{parse_retry_after, Attempt};
use crate::domain::signature::standard_webhooks_signature;
use crate::domain::urlguard::UrlGuard;

/// How much of a receiver's error answer we keep for the admin.
const ERROR_BODY_CHARS: usize = 300;

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

    /// Blocking: run it on the blocking pool.
    pub fn send(&self, url: &str, secret: &str, webhook_id: &str, body: &[u8]) -> Attempt {
        let now = SystemTime::now();
        let ts = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let signature = match standard_webhooks_signature(secret, webhook_id, ts, body) {
            Ok(s) => s,
            Err(e) => return failed(None, e.to_string()),
        };
        let result = self
            .agent
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", &ts.to_string())
            .header("webhook-signature", &signature)
            .send(body);
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
        let found = self.inner.resolve(uri, config, timeout)?;
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
