//! The accept loop: a bounded number of connections, TLS handshake and request
//! heads with deadlines, HTTP/1.1 and HTTP/2, and a graceful shutdown that
//! lets requests in flight finish.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};
use http_body_util::{Either, Full};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::header::{HeaderValue, STRICT_TRANSPORT_SECURITY};
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::client::client_ip;
use super::limits::{Admission, Conn, EdgeLimits, Expiry, RequestGuard, WriteGuard};
use super::request::boxed;
use super::response::{Resp, SendFile};
use super::router::{self, handle};
use super::AppState;
use crate::metrics::Metrics;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a connection buffers of what it reads (hyper's default is about
/// 400 KiB): enough for any request head, and bodies stream through it, so
/// thousands of slow senders cannot pile up buffers.
const READ_BUFFER: usize = 64 * 1024;
/// HTTP/2 requests one connection may have in progress at once.
const MAX_STREAMS: u32 = 100;
/// How long requests in flight may take to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Who is on the other end of a request's connection; handlers find it in the
/// request's extensions (login throttling, the session cookie's `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The client: the peer, or the one a trusted proxy names (see `client`).
    pub client: IpAddr,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    shutdown: CancellationToken,
    limits: EdgeLimits,
) {
    router::check_routes();
    let (idle_timeout, write_timeout) = (limits.header_timeout, limits.body_timeout);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog below closes (and counts) a connection whose head is
        // late; hyper's own timer is only the backstop.
        .header_read_timeout(idle_timeout * 2)
        .max_buf_size(READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Counted from the first moment, so a socket stalled in the TLS
        // handshake is as sheddable as an idle one.
        let proxy = state.trusted_proxies.iter().any(|n| n.contains(&peer.ip()));
        let handle = match state.connections.admit(peer.ip(), !proxy) {
            Admission::Admitted(h) => h,
            Admission::MadeRoom(h) => {
                Metrics::add(&state.metrics.connections_shed_total, 1);
                h
            }
            Admission::Full | Admission::AddressFull => {
                Metrics::add(&state.metrics.connections_refused_total, 1);
                tracing::debug!(%peer, "no room for another connection: refused");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let info = ConnInfo {
            peer,
            tls: tls.is_some(),
            client: peer.ip(),
        };
        let metrics = state.metrics.clone();
        tokio::spawn(async move {
            let conn = handle.conn.clone();
            tokio::select! {
                _ = serve_connection(stream, tls, state, builder, watcher, info, conn.clone()) => {}
                _ = conn.close.cancelled() => {
                    tracing::debug!(%peer, "closed to make room for a new connection");
                }
                why = conn.expired(idle_timeout, write_timeout) => {
                    let counter = match why {
                        Expiry::Idle => &metrics.connections_idle_closed_total,
                        Expiry::Stalled => &metrics.answers_stalled_total,
                    };
                    Metrics::add(counter, 1);
                    tracing::debug!(%peer, ?why, "closed by the edge's deadlines");
                }
            }
            drop(handle);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// One connection from TLS handshake to its end.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    builder: Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    info: ConnInfo,
    conn: Arc<Conn>,
) {
    let peer = info.peer;
    let io: Box<dyn Io> = match tls {
        None => Box::new(stream),
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let conn = conn.clone();
        let busy = conn.begin();
        let client = client_ip(req.headers(), info.peer.ip(), &state.trusted_proxies);
        req.extensions_mut().insert(ConnInfo { client, ..info });
        let state = state.clone();
        async move {
            let mut resp = with_file_body(handle(state, req.map(boxed)).await);
            if info.tls {
                // Browsers that once reached us over TLS never fall back to
                // plain HTTP for a year (a cookie or an API key sent in clear).
                resp.headers_mut().insert(
                    STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static("max-age=31536000"),
                );
            }
            let writing = conn.writing();
            Ok::<_, Infallible>(resp.map(|body| Guarded {
                body,
                pending: Bytes::new(),
                writing,
                _busy: busy,
            }))
        }
    });
    let served = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    if let Err(e) = watcher.watch(served).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Most of an answer handed to hyper at once. hyper takes a frame into its
/// write buffer whole; in pieces this size, the answer stays in this body
/// (and its connection counted busy and watched for progress) until at most
/// this much is left to send.
const ANSWER_PIECE: usize = 64 * 1024;

/// An answer's body: keeps its connection counted busy until it is sent, and
/// tells the connection each time a piece of it is taken.
struct Guarded {
    body: Body,
    /// The rest of a frame larger than a piece.
    pending: Bytes,
    writing: WriteGuard,
    _busy: RequestGuard,
}

impl Guarded {
    fn piece(&mut self) -> Frame<Bytes> {
        let n = self.pending.len().min(ANSWER_PIECE);
        self.writing.wrote();
        Frame::data(self.pending.split_to(n))
    }
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if !self.pending.is_empty() {
            return Poll::Ready(Some(Ok(self.piece())));
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    self.pending = data;
                    Poll::Ready(Some(Ok(self.piece())))
                }
                Err(trailers) => Poll::Ready(Some(Ok(trailers))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.body.size_hint();
        let extra = self.pending.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + extra);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

/// A response whose body is a whole `Full` buffer, or a file streamed in chunks.
type Body = Either<Full<Bytes>, Channel<Bytes, std::io::Error>>;

/// Streams the file a handler attached (`SendFile`) as the body, so a large
/// answer (a database backup) never sits in memory whole.
fn with_file_body(resp: Resp) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    match parts.extensions.remove::<SendFile>().and_then(|f| f.take()) {
        None => Response::from_parts(parts, Either::Left(body)),
        Some(file) => {
            let (tx, channel) = Channel::new(4);
            tokio::spawn(send_file(file, tx));
            Response::from_parts(parts, Either::Right(channel))
        }
    }
}

async fn send_file(file: std::fs::File, mut tx: Sender<Bytes, std::io::Error>) {
    const CHUNK: usize = 256 * 1024;
    let mut file = tokio::fs::File::from_std(file);
    let mut buf = vec![0u8; CHUNK];
    loop {
        match file.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                if tx
                    .send_data(Bytes::copy_from_slice(&buf[..n]))
                    .await
                    .is_err()
                {
                    // The client went away.
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the file being sent");
                tx.abort(e);
                return;
            }
        }
    }
}
