//! The flow webhooks of the benchmark: receivers that only count what the
//! gateway delivers, and how long after its POST started each event arrived.

use std::sync::{Arc, Mutex};

use crate::support::server::{Handler, Recorded, Reply, TestServer};
use crate::{now_us, MARK};

/// A flow webhook that only counts: arrival time minus the send time in the text.
pub struct CountingReceiver {
    server: TestServer,
    state: Arc<Mutex<Arrivals>>,
}

#[derive(Default)]
pub struct Arrivals {
    /// End-to-end latency of each first delivery, µs.
    pub e2e_us: Vec<u32>,
    /// Which sequence numbers arrived (a redelivery is counted once).
    seen: Vec<bool>,
    pub duplicates: u64,
    pub unreadable: u64,
    pub last_at_us: u64,
}

impl Arrivals {
    fn record(&mut self, at: u64, mark: Option<(u64, u64)>) {
        self.last_at_us = at;
        let Some((seq, sent)) = mark else {
            self.unreadable += 1;
            return;
        };
        let seq = seq as usize;
        if self.seen.len() <= seq {
            self.seen.resize(seq + 1, false);
        }
        if self.seen[seq] {
            self.duplicates += 1;
        } else {
            self.seen[seq] = true;
            self.e2e_us
                .push(at.saturating_sub(sent).min(u32::MAX as u64) as u32);
        }
    }
}

impl CountingReceiver {
    pub fn start() -> CountingReceiver {
        let state = Arc::new(Mutex::new(Arrivals::default()));
        let s = state.clone();
        let handler: Handler = Arc::new(move |req: &Recorded| {
            let at = now_us();
            let mark = parse_mark(&req.body);
            s.lock().unwrap().record(at, mark);
            Reply::status(200)
        });
        let server = TestServer::start("127.0.0.1:0".parse().unwrap(), handler).unwrap();
        CountingReceiver { server, state }
    }

    pub fn url(&self) -> String {
        format!("{}/hook", self.server.base_url())
    }

    /// Distinct events delivered so far.
    pub fn delivered(&self) -> u64 {
        self.state.lock().unwrap().e2e_us.len() as u64
    }

    /// Reads what arrived so far.
    pub fn arrivals<R>(&self, read: impl FnOnce(&Arrivals) -> R) -> R {
        read(&self.state.lock().unwrap())
    }
}

/// `(seq, sent µs)` from `…bench:<seq>:<sent>;…` in a delivery body.
fn parse_mark(body: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find(MARK)? + MARK.len()..];
    let (seq, rest) = rest.split_once(':')?;
    let (sent, _) = rest.split_once(';')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}
