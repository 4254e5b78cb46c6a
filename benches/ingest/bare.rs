//! The reference: a bare hyper server that answers every POST `200` and does
//! nothing else, in a process of its own (this bench binary started again with
//! `--bare-server`), so the same load generator measures what the machine and
//! loopback allow before the gateway does any work: its POSTs/s is what every
//! wabridge figure is divided by.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

/// The argument that makes this binary the bare server.
pub const ARG: &str = "--bare-server";
/// The shape of the gateway's answer to a webhook, so the load generator reads
/// and parses the same bytes from both.
const ANSWER: &[u8] = br#"{"accepted":1,"duplicates":0,"deliveries":0}"#;

/// The bare server as the bench sees it: a child process, killed on drop.
pub struct BareServer {
    child: Child,
    base: String,
}

impl BareServer {
    pub fn start() -> BareServer {
        let exe = std::env::current_exe().expect("cannot find this bench's executable");
        let mut child = Command::new(exe)
            .arg(ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start the bare server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the bare server said nothing");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the bare server did not start: {line:?}"))
            .to_string();
        BareServer { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the child: serves on a free loopback port until stdin closes (the bench
/// ended, however it ended). A runtime like the gateway's: multi-threaded, one
/// worker per core; connections as the gateway serves them: HTTP/1.1 or 2, no delay.
pub fn serve() {
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the bare server cannot bind");
        println!("listening on http://{}", listener.local_addr().unwrap());
        let builder = Builder::new(TokioExecutor::new());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    });
}

/// Reads the whole body (as the gateway must before it answers), then `200`.
async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = req.into_body().collect().await;
    let mut resp = Response::new(Full::new(Bytes::from_static(ANSWER)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}
