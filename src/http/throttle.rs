//! Failed credentials per client address over a sliding window: backoffice
//! logins, and wrong Bearer tokens on the API. An attempt is counted when it
//! starts, so a burst of simultaneous guesses cannot all be checked before the
//! first failure is recorded. An IPv6 /64 counts as one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::limits::Source;

/// Addresses tracked at most; beyond, those with no recent failure are forgotten.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

pub struct Throttle {
    /// Failures (and attempts in progress) allowed per address in the window.
    pub max_failures: usize,
    pub window: Duration,
    state: Arc<Mutex<HashMap<Source, Record>>>,
}

#[derive(Default)]
struct Record {
    /// When each recent failure happened, ms.
    failures: Vec<u64>,
    /// Attempts started and not yet decided.
    pending: usize,
}

/// One attempt being checked. Dropped undecided (the client went away while
/// its password was being checked), it counts as a failure: hanging up must
/// not be a way to guess for free.
pub struct Attempt {
    state: Arc<Mutex<HashMap<Source, Record>>>,
    source: Source,
    decided: bool,
}

impl Throttle {
    pub fn new(max_failures: usize, window: Duration) -> Throttle {
        Throttle {
            max_failures,
            window,
            state: Arc::default(),
        }
    }

    /// Starts a slow attempt (a password check) from `ip`, or the seconds
    /// until one is allowed; attempts in progress count like failures.
    pub fn begin(&self, ip: IpAddr, now_ms: u64) -> Result<Attempt, u64> {
        self.with_record(ip, now_ms, |record, wait| {
            if record.failures.len() + record.pending >= self.max_failures {
                return Err(wait(record));
            }
            record.pending += 1;
            Ok(())
        })?;
        Ok(Attempt {
            state: self.state.clone(),
            source: Source::of(ip),
            decided: false,
        })
    }

    /// For an instant check (a token's hash): `Err(seconds to wait)` when
    /// `ip` has used up its failures, else the outcome of `check`, counted
    /// when it is `Ok(None)` (a wrong answer; an error is not a guess). The
    /// check runs outside the lock; a success does not clear the failures
    /// (one valid key must not license guessing others).
    pub fn check<T, E>(
        &self,
        ip: IpAddr,
        now_ms: u64,
        check: impl FnOnce() -> Result<Option<T>, E>,
    ) -> Result<Result<Option<T>, E>, u64> {
        self.with_record(ip, now_ms, |record, wait| {
            if record.failures.len() >= self.max_failures {
                return Err(wait(record));
            }
            Ok(())
        })?;
        let outcome = check();
        if let Ok(None) = outcome {
            let _ = self.with_record(ip, now_ms, |record, _| {
                record.failures.push(now_ms);
                Ok(())
            });
        }
        Ok(outcome)
    }

    fn with_record<T>(
        &self,
        ip: IpAddr,
        now_ms: u64,
        f: impl FnOnce(&mut Record, &dyn Fn(&Record) -> u64) -> Result<T, u64>,
    ) -> Result<T, u64> {
        let window = self.window.as_millis() as u64;
        let max = self.max_failures;
        let Ok(mut map) = self.state.lock() else {
            return Err(1);
        };
        let source = Source::of(ip);
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(&source) {
            map.retain(|_, r| r.pending > 0 || r.failures.iter().any(|t| now_ms < t + window));
            // Still full of recent failures (many addresses at work): the
            // newcomer replaces one, rather than the map growing without end.
            if map.len() >= MAX_TRACKED_ADDRESSES {
                if let Some(victim) = map.keys().next().copied() {
                    map.remove(&victim);
                }
            }
        }
        let record = map.entry(source).or_default();
        record.failures.retain(|t| now_ms < t + window);
        let wait = |r: &Record| match r.failures.iter().min() {
            Some(oldest) if r.failures.len() >= max => {
                (oldest + window).saturating_sub(now_ms) / 1000 + 1
            }
            // Attempts in progress hold the places: they are decided within seconds.
            _ => 1,
        };
        f(record, &wait)
    }
}

impl Attempt {
    pub fn failed(mut self, now_ms: u64) {
        self.decide(|r| r.failures.push(now_ms));
    }

    /// A success forgets the address's failures.
    pub fn succeeded(mut self) {
        self.decide(|r| r.failures.clear());
    }

    /// Not checked at all (the server was busy): neither outcome.
    pub fn withdrawn(mut self) {
        self.decide(|_| {});
    }

    fn decide(&mut self, outcome: impl FnOnce(&mut Record)) {
        self.decided = true;
        if let Ok(mut map) = self.state.lock() {
            if let Some(r) = map.get_mut(&self.source) {
                r.pending = r.pending.saturating_sub(1);
                outcome(r);
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.decided {
            let now = crate::domain::time::now_ms();
            self.decide(|r| r.failures.push(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    #[test]
    fn failures_lock_an_address_out_for_the_window() {
        let t = Throttle::new(5, Duration::from_secs(15 * 60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..5 {
            t.begin(ip, i).unwrap().failed(i);
        }
        assert_eq!(t.begin(ip, 10).err(), Some(900));
        assert!(t.begin(other, 10).is_ok());
        assert!(t.begin(ip, 15 * MIN + 5).is_ok(), "the window slid past");
    }

    #[test]
    fn simultaneous_attempts_count_before_they_are_decided() {
        let t = Throttle::new(5, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let running: Vec<Attempt> = (0..5).map(|_| t.begin(ip, 0).unwrap()).collect();
        assert_eq!(t.begin(ip, 0).err(), Some(1), "five are being checked");
        let mut running = running.into_iter();
        running.next().unwrap().succeeded();
        let a = t.begin(ip, 1).expect("a decided attempt frees its place");
        a.succeeded();
        drop(running);
        let now = crate::domain::time::now_ms();
        t.begin(ip, now).unwrap().failed(now);
        assert!(
            t.begin(ip, now).is_err(),
            "four clients that hung up mid-check count as four failures"
        );
    }

    #[test]
    fn a_v6_64_is_one_address() {
        let t = Throttle::new(2, Duration::from_secs(60));
        t.begin("2001:db8::1".parse().unwrap(), 0)
            .unwrap()
            .failed(0);
        t.begin("2001:db8::2".parse().unwrap(), 0)
            .unwrap()
            .failed(0);
        assert!(t.begin("2001:db8::3".parse().unwrap(), 1).is_err());
        assert!(t.begin("2001:db8:0:1::3".parse().unwrap(), 1).is_ok());
    }

    #[test]
    fn a_login_success_forgets_the_failures() {
        let t = Throttle::new(5, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..4 {
            t.begin(ip, 2).unwrap().failed(2);
        }
        t.begin(ip, 3).unwrap().succeeded();
        for _ in 0..4 {
            t.begin(ip, 4).unwrap().failed(4);
        }
        assert!(t.begin(ip, 5).is_ok());
    }

    #[test]
    fn instant_checks_count_only_wrong_answers() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.check(ip, 1, || Err::<Option<u8>, _>(())), Ok(Err(())));
        assert_eq!(t.check(ip, 1, || Ok::<Option<u8>, ()>(None)), Ok(Ok(None)));
        assert_eq!(t.check(ip, 1, || Ok::<_, ()>(Some(1))), Ok(Ok(Some(1))));
        assert_eq!(t.check(ip, 2, || Ok::<Option<u8>, ()>(None)), Ok(Ok(None)));
        let mut asked = false;
        assert_eq!(
            t.check(ip, 3, || {
                asked = true;
                Ok::<_, ()>(Some(1))
            }),
            Err(60)
        );
        assert!(!asked, "a locked-out address is not even checked");
    }
}
