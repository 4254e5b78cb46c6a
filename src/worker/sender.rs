//! One delivery attempt: a signed POST with a timeout, to an address the
//! guard allows. On tokio, without a thread per attempt: hyper's client with
//! a pool of kept-alive connections per receiver origin, and rustls.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::domain::delivery::{parse_retry_after, Attempt};
use crate::domain::signature::{sign_meta, standard_webhooks_signature};
use crate::domain::subscription::Format;
use crate::domain::urlguard::UrlGuard;

/// How much of a receiver's error answer we keep for the admin.
const ERROR_BODY_CHARS: usize = 300;
/// The most of an answer that is read; a longer one is cut (and its
/// connection not reused).
const ANSWER_LIMIT: usize = 64 * 1024;
/// The most of a flow tool's answer to a Flows request that is taken: a
/// screen's data may carry images as base64.
const CALL_ANSWER_LIMIT: usize = 4 * 1024 * 1024;
/// Idle connections kept per receiver origin. At most one connection is open
/// per delivery in flight (`--delivery-concurrency`, at most 4096).
const IDLE_PER_ORIGIN: usize = 4096;
/// How long an idle connection is kept for the next delivery.
const IDLE_FOR: Duration = Duration::from_secs(15);

const USER_AGENT_VALUE: &str = concat!("wabridge/", env!("CARGO_PKG_VERSION"));

pub struct Sender {
    client: Client<Timed<HttpsConnector<GuardedConnector>>, Full<Bytes>>,
    timeout: Duration,
}

impl Sender {
    pub fn new(timeout: Duration, guard: UrlGuard) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            // ring supports TLS 1.2 and 1.3: building the defaults cannot fail.
            .expect("ring offers the default TLS versions")
            .https_or_http()
            .enable_http1()
            .wrap_connector(GuardedConnector {
                guard: Arc::new(guard),
            });
        // A redirect could lead anywhere: hyper's client follows none, so a
        // receiver must answer at its URL.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_FOR)
            .pool_max_idle_per_host(IDLE_PER_ORIGIN)
            .build(Timed {
                inner: https,
                timeout,
            });
        Sender { client, timeout }
    }

    /// How long an attempt may wait for its answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A `meta` listener gets the body signed as Meta signs, with its secret
    /// as the app secret; the `webhook-id` still goes along, so a receiver
    /// can dedupe retries.
    pub async fn send(
        &self,
        url: &str,
        secret: &str,
        format: Format,
        webhook_id: &str,
        body: Bytes,
    ) -> Attempt {
        let now = SystemTime::now();
        let request = match signed(url, secret, format, webhook_id, body, now) {
            Ok(request) => request,
            Err(error) => return failed(None, error),
        };
        match tokio::time::timeout(self.timeout, self.exchange(request, now)).await {
            Ok(attempt) => attempt,
            Err(_) => failed(None, "no answer within the delivery timeout".into()),
        }
    }

    /// One signed POST whose answer is wanted back (a Flows data request):
    /// not retried, as the one waiting cannot wait for a retry. The body of
    /// a 2xx within `timeout`, or why there was none.
    pub async fn call(
        &self,
        url: &str,
        secret: &str,
        webhook_id: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, String> {
        let request = signed(
            url,
            secret,
            Format::Standard,
            webhook_id,
            body,
            SystemTime::now(),
        )?;
        let answered = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|e| describe(&e))?;
            let status = resp.status().as_u16();
            let (kept, whole) = read_at_most(resp.into_body(), CALL_ANSWER_LIMIT).await;
            if !(200..=299).contains(&status) {
                let text = String::from_utf8_lossy(&kept);
                return Err(format!(
                    "HTTP {status}: {}",
                    text.chars().take(ERROR_BODY_CHARS).collect::<String>()
                ));
            }
            if !whole {
                return Err(format!(
                    "the answer is larger than {CALL_ANSWER_LIMIT} bytes"
                ));
            }
            Ok(kept.freeze())
        };
        match tokio::time::timeout(timeout, answered).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
        }
    }

    async fn exchange(&self, request: Request<Full<Bytes>>, now: SystemTime) -> Attempt {
        let resp = match self.client.request(request).await {
            Ok(resp) => resp,
            Err(e) => return failed(None, describe(&e)),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        // Reading the answer lets the connection go back to the pool; only a
        // failure's is kept, as text, for its error.
        let (kept, _) = read_at_most(resp.into_body(), ANSWER_LIMIT).await;
        match status {
            200..=299 => Attempt::Delivered { status },
            410 => Attempt::Gone,
            _ => Attempt::Failed {
                status: Some(status),
                error: format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&kept)
                        .chars()
                        .take(ERROR_BODY_CHARS)
                        .collect::<String>()
                ),
                retry_after,
            },
        }
    }
}

/// The POST with its signature headers.
fn signed(
    url: &str,
    secret: &str,
    format: Format,
    webhook_id: &str,
    body: Bytes,
    now: SystemTime,
) -> Result<Request<Full<Bytes>>, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("the listener URL cannot be used: {e}"))?;
    let webhook_id_value =
        HeaderValue::from_str(webhook_id).map_err(|e| format!("webhook-id: {e}"))?;
    let mut request = Request::post(uri)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header("webhook-id", webhook_id_value);
    request = match format {
        Format::Meta => request.header("x-hub-signature-256", sign_meta(&body, secret)),
        Format::Standard => {
            let ts = now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let signature = standard_webhooks_signature(secret, webhook_id, ts, &body)
                .map_err(|e| e.to_string())?;
            request
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature)
        }
    };
    request
        .body(Full::new(body))
        .map_err(|e| format!("the request cannot be built: {e}"))
}

/// The answer up to a little past `limit` bytes, and whether it ended
/// within `limit`.
async fn read_at_most(mut body: hyper::body::Incoming, limit: usize) -> (BytesMut, bool) {
    let mut kept = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return (kept, false);
        };
        if let Ok(data) = frame.into_data() {
            kept.extend_from_slice(&data);
            if kept.len() > limit {
                return (kept, false);
            }
        }
    }
    (kept, true)
}

fn failed(status: Option<u16>, error: String) -> Attempt {
    Attempt::Failed {
        status,
        error,
        retry_after: None,
    }
}

/// hyper's client says "client error (Connect)"; the cause is deeper.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    match cause.downcast_ref::<io::Error>() {
        Some(io) if io.kind() == io::ErrorKind::PermissionDenied => io.to_string(),
        Some(io) if e.is_connect() => format!("connection refused or unreachable ({io})"),
        _ if e.is_connect() => format!("connection refused or unreachable ({cause})"),
        _ => format!("the receiver broke off the exchange ({cause})"),
    }
}

/// Connects to the receiver: resolves its host, drops every address the
/// guard refuses, and connects to the first one left. Checking after
/// resolution, at each new connection, defeats DNS names that point inside;
/// a pooled connection was checked when it was made, to the same address.
#[derive(Clone)]
pub struct GuardedConnector {
    guard: Arc<UrlGuard>,
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let guard = self.guard.clone();
        Box::pin(async move {
            let found = resolve(&uri).await?;
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| guard.permits(a.ip()))
                .collect();
            if allowed.is_empty() {
                let first = found
                    .first()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("refused by the URL guard: {first} is not a public address (see --webhook-allow-net)"),
                ));
            }
            let mut last = None;
            for addr in allowed {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        stream.set_nodelay(true)?;
                        return Ok(TokioIo::new(stream));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")))
        })
    }
}

/// A connector whose connection (TCP and TLS handshake) must be made within
/// the delivery timeout. hyper's client may finish a connection in the
/// background once a pooled one served the attempt, out of the attempt's own
/// timeout: a receiver that never completes a handshake must not keep
/// sockets open without end.
#[derive(Clone)]
pub struct Timed<C> {
    inner: C,
    timeout: Duration,
}

impl<C> tower_service::Service<Uri> for Timed<C>
where
    C: tower_service::Service<Uri> + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = C::Response;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err("no connection (TCP and TLS) within the delivery timeout".into()),
            }
        })
    }
}

/// The receiver's addresses: an IP literal as it is, a name looked up.
async fn resolve(uri: &Uri) -> io::Result<Vec<SocketAddr>> {
    if let Some(addr) = ip_literal(uri) {
        return Ok(vec![addr]);
    }
    let host = uri
        .host()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the URL has no host"))?;
    let port = port_of(uri)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the URL has no port"))?;
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

fn port_of(uri: &Uri) -> Option<u16> {
    match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => Some(port),
        (None, Some("http")) => Some(80),
        (None, Some("https")) => Some(443),
        _ => None,
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
    Some(SocketAddr::new(ip, port_of(uri)?))
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

    #[tokio::test]
    async fn an_address_the_guard_refuses_is_never_connected_to() {
        let mut connector = GuardedConnector {
            guard: Arc::new(UrlGuard { allow: Vec::new() }),
        };
        let err =
            tower_service::Service::call(&mut connector, "http://127.0.0.1:9/x".parse().unwrap())
                .await
                .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("URL guard"), "{err}");
    }
}
