//! The accept loop: TLS handshake with a timeout, HTTP/1.1 and HTTP/2, and a
//! graceful shutdown that lets requests in flight finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};
use http_body_util::{Either, Full};
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::response::{Resp, SendFile};
use super::router::{handle, AppState};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long requests in flight may take to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Who is on the other end of a request's connection; handlers find it in the
/// request's extensions (login throttling, the session cookie's `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
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
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let info = ConnInfo {
            peer,
            tls: tls.is_some(),
        };
        tokio::spawn(async move {
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
                req.extensions_mut().insert(info);
                let state = state.clone();
                async move { Ok::<_, Infallible>(with_file_body(handle(state, req).await)) }
            });
            let conn = builder
                .serve_connection(TokioIo::new(io), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
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
