//! A flow tool's webhook: records what wabridge delivers and answers as scripted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::server::{Handler, Recorded, Reply, TestServer};

#[derive(Default)]
struct State {
    /// Every request with the status it was answered with.
    got: Vec<(Recorded, u16)>,
    /// Replies for the next requests, then 200.
    script: VecDeque<Reply>,
}

pub struct Receiver {
    server: TestServer,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Self::start_at("127.0.0.1:0".parse().unwrap())
    }

    /// On a given address, e.g. to come back on the port a listener was registered with.
    pub fn start_at(addr: SocketAddr) -> Receiver {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let handler: Handler = Arc::new(move |req: &Recorded| {
            let mut st = s.lock().unwrap();
            let reply = st.script.pop_front().unwrap_or_else(|| Reply::status(200));
            st.got.push((req.clone(), reply.status));
            reply
        });
        let server = TestServer::start(addr, handler).expect("receiver could not bind");
        Receiver { server, state }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// The next requests get these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Drops the replies not used yet: from now on every request gets a 200.
    pub fn unscript(&self) {
        self.state.lock().unwrap().script.clear();
    }

    pub fn all_requests(&self) -> Vec<(Recorded, u16)> {
        self.state.lock().unwrap().got.clone()
    }

    /// Requests answered with a 2xx.
    pub fn delivered(&self) -> Vec<Recorded> {
        self.all_requests()
            .into_iter()
            .filter(|(_, s)| (200..300).contains(s))
            .map(|(r, _)| r)
            .collect()
    }

    /// Waits until at least `n` deliveries succeeded; panics with what arrived after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.delivered();
            if got.len() >= n {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {n} deliveries within {timeout:?}, got {}: {:?}",
                    got.len(),
                    got.iter()
                        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                        .collect::<Vec<_>>()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `n` successful deliveries, then lets `grace` pass and checks that
    /// nothing more arrived (no extra delivery, no failed attempt either).
    pub fn wait_for_exactly(&self, n: usize, timeout: Duration, grace: Duration) -> Vec<Recorded> {
        if n > 0 {
            self.wait_for(n, timeout);
        }
        std::thread::sleep(grace);
        let all = self.all_requests();
        assert_eq!(
            all.len(),
            n,
            "expected exactly {n} requests, got {}: {:?}",
            all.len(),
            all.iter()
                .map(|(r, s)| format!("{s} {}", String::from_utf8_lossy(&r.body)))
                .collect::<Vec<_>>()
        );
        self.delivered()
    }

    pub fn stop(&mut self) {
        self.server.stop();
    }
}
