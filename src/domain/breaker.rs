//! Receivers that keep attempts waiting without taking them. Each attempt
//! holds one of the `--delivery-concurrency` permits until it ends: a flow
//! webhook that never answers (a dropped connection, a hung server) holds
//! it for the whole delivery timeout. With a steady stream of events, one
//! such listener then holds every permit, and every other listener's
//! deliveries queue behind it for as long as it stays down.
//!
//! So, per listener: after `TRIP` attempts in a row that kept their permit
//! half the delivery timeout or more and did not deliver, its circuit opens.
//! While open, its attempts are not made: each fails at once and takes its
//! retry as a failed attempt would. Once the wait (one delivery timeout at
//! first) is over, one attempt goes as a probe; if it is kept waiting again
//! the circuit stays open for twice as long, up to `MAX_WAITS` timeouts (5
//! minutes with the default 15 s). An attempt delivered, or failed in good
//! time, closes it; the longer wait is kept until it has stayed closed for
//! twice the longest. The state is in memory: a restart starts closed.

use std::collections::HashMap;

/// Slow failures in a row that open a listener's circuit: one slow answer
/// is a hiccup, three are a receiver that is not taking its deliveries.
pub const TRIP: u32 = 3;
/// The longest an open circuit waits for its next probe, in delivery timeouts.
pub const MAX_WAITS: u64 = 20;

/// Whether an attempt for a listener may be made now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    Send,
    /// The one attempt that tries an open circuit: its verdict decides.
    Probe,
    /// Not made: the circuit is open, or its probe is out.
    Hold,
}

/// How an attempt that was made ended, as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Delivered, or failed in good time: the receiver does not sit on its attempts.
    Taken,
    /// Not delivered, after keeping its permit half the timeout or more.
    Held,
}

/// What changed, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    Opened { until_ms: u64 },
    Closed,
}

/// Circuits of the listeners whose attempts were held lately; a listener
/// without one sends freely.
#[derive(Debug)]
pub struct Breakers {
    timeout_ms: u64,
    circuits: HashMap<String, Circuit>,
}

#[derive(Debug)]
struct Circuit {
    held_in_a_row: u32,
    open_until: Option<u64>,
    /// How long the circuit stays open the next time it opens. Kept after
    /// it closes, so a receiver that takes a lone probe but sits on
    /// attempts again under load is left alone longer each time.
    next_wait_ms: u64,
    /// While a probe is out, no other goes until then: twice the timeout,
    /// so a probe whose verdict never comes (its listener removed
    /// meanwhile) cannot keep the circuit shut for good.
    probe_out_until: u64,
    /// When it last closed (`None`: it never opened).
    closed_at: Option<u64>,
    last_verdict_ms: u64,
}

impl Breakers {
    /// For attempts that wait at most `timeout_ms` for their answer.
    pub fn new(timeout_ms: u64) -> Breakers {
        Breakers {
            timeout_ms: timeout_ms.max(1),
            circuits: HashMap::new(),
        }
    }

    /// An attempt that took `took_ms` and delivered or not.
    pub fn verdict_of(&self, delivered: bool, took_ms: u64) -> Verdict {
        if !delivered && took_ms.saturating_mul(2) >= self.timeout_ms {
            Verdict::Held
        } else {
            Verdict::Taken
        }
    }

    pub fn gate(&mut self, listener: &str, now_ms: u64) -> Gate {
        let Some(c) = self.circuits.get_mut(listener) else {
            return Gate::Send;
        };
        let Some(open_until) = c.open_until else {
            return Gate::Send;
        };
        if now_ms < open_until.max(c.probe_out_until) {
            return Gate::Hold;
        }
        c.probe_out_until = now_ms.saturating_add(self.timeout_ms.saturating_mul(2));
        Gate::Probe
    }

    /// Records an attempt that was made (`probe`: it was let through by
    /// `Gate::Probe`).
    pub fn verdict(
        &mut self,
        listener: &str,
        verdict: Verdict,
        probe: bool,
        now_ms: u64,
    ) -> Option<Change> {
        match verdict {
            Verdict::Taken => self.taken(listener, now_ms),
            Verdict::Held => self.held(listener, probe, now_ms),
        }
    }

    /// Twice the longest wait: a circuit closed this long starts over at
    /// one timeout, and one without a verdict this long is forgotten.
    fn forget_after_ms(&self) -> u64 {
        self.timeout_ms.saturating_mul(2 * MAX_WAITS)
    }

    fn taken(&mut self, listener: &str, now_ms: u64) -> Option<Change> {
        let forget_after = self.forget_after_ms();
        let c = self.circuits.get_mut(listener)?;
        c.held_in_a_row = 0;
        c.last_verdict_ms = now_ms;
        if c.open_until.take().is_some() {
            c.closed_at = Some(now_ms);
            return Some(Change::Closed);
        }
        let healthy = c
            .closed_at
            .is_none_or(|at| now_ms.saturating_sub(at) >= forget_after);
        if healthy {
            self.circuits.remove(listener);
        }
        None
    }

    fn held(&mut self, listener: &str, probe: bool, now_ms: u64) -> Option<Change> {
        let c = self
            .circuits
            .entry(listener.to_string())
            .or_insert(Circuit {
                held_in_a_row: 0,
                open_until: None,
                next_wait_ms: self.timeout_ms,
                probe_out_until: 0,
                closed_at: None,
                last_verdict_ms: now_ms,
            });
        c.held_in_a_row = c.held_in_a_row.saturating_add(1);
        c.last_verdict_ms = now_ms;
        // Attempts started before the circuit opened end held one after
        // the other: only a probe's verdict moves an open circuit.
        let opens = match c.open_until {
            None => c.held_in_a_row >= TRIP,
            Some(_) => probe,
        };
        if !opens {
            return None;
        }
        let until_ms = now_ms.saturating_add(c.next_wait_ms);
        c.open_until = Some(until_ms);
        c.probe_out_until = 0;
        c.next_wait_ms = c
            .next_wait_ms
            .saturating_mul(2)
            .min(self.timeout_ms.saturating_mul(MAX_WAITS));
        // Opening is rare: the time to drop the circuits of listeners gone
        // quiet (removed, or with nothing more to deliver).
        let forget_after = self.forget_after_ms();
        self.circuits
            .retain(|_, c| now_ms.saturating_sub(c.last_verdict_ms) < forget_after);
        Some(Change::Opened { until_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: u64 = 15_000;

    fn held(b: &mut Breakers, n: u32, now: u64) -> Option<Change> {
        (0..n)
            .map(|_| b.verdict("a", Verdict::Held, false, now))
            .last()
            .flatten()
    }

    #[test]
    fn only_an_attempt_that_kept_its_permit_half_the_timeout_without_delivering_is_held() {
        let b = Breakers::new(TIMEOUT);
        assert_eq!(b.verdict_of(false, 7_500), Verdict::Held);
        assert_eq!(b.verdict_of(false, 15_000), Verdict::Held);
        assert_eq!(b.verdict_of(false, 7_499), Verdict::Taken);
        assert_eq!(b.verdict_of(true, 14_000), Verdict::Taken);
    }

    #[test]
    fn three_held_attempts_in_a_row_open_the_circuit_and_an_answer_in_between_starts_over() {
        let mut b = Breakers::new(TIMEOUT);
        assert_eq!(held(&mut b, 2, 0), None);
        assert_eq!(b.verdict("a", Verdict::Taken, false, 0), None);
        assert_eq!(held(&mut b, 2, 0), None);
        assert_eq!(b.gate("a", 0), Gate::Send);
        assert_eq!(
            held(&mut b, 1, 1_000),
            Some(Change::Opened {
                until_ms: 1_000 + TIMEOUT
            })
        );
        assert_eq!(b.gate("a", 1_001), Gate::Hold);
        assert_eq!(b.gate("a", 1_000 + TIMEOUT - 1), Gate::Hold);
        assert_eq!(b.gate("other", 1_001), Gate::Send);
    }

    #[test]
    fn once_open_one_probe_goes_and_the_stragglers_change_nothing() {
        let mut b = Breakers::new(TIMEOUT);
        held(&mut b, TRIP, 0);
        // The rest of the attempts started before it opened end held too.
        assert_eq!(held(&mut b, 100, 5), None);
        let t = TIMEOUT;
        assert_eq!(b.gate("a", t), Gate::Probe);
        assert_eq!(b.gate("a", t + 1), Gate::Hold);
        // The probe is held: open twice as long.
        assert_eq!(
            b.verdict("a", Verdict::Held, true, t + TIMEOUT),
            Some(Change::Opened {
                until_ms: t + TIMEOUT + 2 * TIMEOUT
            })
        );
        assert_eq!(b.gate("a", t + TIMEOUT + 1), Gate::Hold);
    }

    #[test]
    fn a_probe_taken_closes_the_circuit() {
        let mut b = Breakers::new(TIMEOUT);
        held(&mut b, TRIP, 0);
        assert_eq!(b.gate("a", TIMEOUT), Gate::Probe);
        assert_eq!(
            b.verdict("a", Verdict::Taken, true, TIMEOUT + 10),
            Some(Change::Closed)
        );
        assert_eq!(b.gate("a", TIMEOUT + 11), Gate::Send);
        // Closed means counting from zero again.
        assert_eq!(held(&mut b, TRIP - 1, TIMEOUT + 12), None);
    }

    #[test]
    fn the_wait_doubles_up_to_the_most() {
        let mut b = Breakers::new(TIMEOUT);
        let mut now = 0;
        let mut waits = Vec::new();
        let mut opened = held(&mut b, TRIP, now);
        for _ in 0..8 {
            let Some(Change::Opened { until_ms }) = opened else {
                panic!("{opened:?}");
            };
            waits.push(until_ms - now);
            now = until_ms;
            assert_eq!(b.gate("a", now), Gate::Probe);
            opened = b.verdict("a", Verdict::Held, true, now);
        }
        assert_eq!(
            waits,
            [15_000, 30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000]
        );
    }

    #[test]
    fn a_probe_whose_verdict_never_comes_is_followed_by_another() {
        let mut b = Breakers::new(TIMEOUT);
        held(&mut b, TRIP, 0);
        assert_eq!(b.gate("a", TIMEOUT), Gate::Probe);
        assert_eq!(b.gate("a", TIMEOUT + 2 * TIMEOUT), Gate::Probe);
    }

    #[test]
    fn a_circuit_that_closed_remembers_its_wait_until_it_stays_closed_long() {
        let mut b = Breakers::new(TIMEOUT);
        held(&mut b, TRIP, 0);
        assert_eq!(b.gate("a", TIMEOUT), Gate::Probe);
        assert_eq!(
            b.verdict("a", Verdict::Taken, true, TIMEOUT),
            Some(Change::Closed)
        );
        // A lone probe was taken, but under load the attempts sit again.
        let t = 2 * TIMEOUT;
        assert_eq!(
            held(&mut b, TRIP, t),
            Some(Change::Opened {
                until_ms: t + 2 * TIMEOUT
            })
        );
        let t = t + 2 * TIMEOUT;
        assert_eq!(b.gate("a", t), Gate::Probe);
        assert_eq!(
            b.verdict("a", Verdict::Taken, true, t),
            Some(Change::Closed)
        );
        // Closed and taking attempts for twice the longest wait: forgotten.
        let later = t + b.forget_after_ms();
        assert_eq!(b.verdict("a", Verdict::Taken, false, later), None);
        assert!(b.circuits.is_empty());
        assert_eq!(
            held(&mut b, TRIP, later),
            Some(Change::Opened {
                until_ms: later + TIMEOUT
            })
        );
    }

    #[test]
    fn circuits_of_listeners_gone_quiet_are_dropped_when_one_opens() {
        let mut b = Breakers::new(TIMEOUT);
        let forget_after = b.forget_after_ms();
        b.verdict("removed", Verdict::Held, false, 0);
        b.verdict("recent", Verdict::Held, false, forget_after - 1);
        held(&mut b, TRIP, forget_after);
        assert!(!b.circuits.contains_key("removed"));
        assert!(b.circuits.contains_key("recent"));
        assert!(b.circuits.contains_key("a"));
    }

    #[test]
    fn a_listener_that_never_opened_leaves_no_circuit_once_it_answers() {
        let mut b = Breakers::new(TIMEOUT);
        held(&mut b, TRIP - 1, 0);
        b.verdict("a", Verdict::Taken, false, 1);
        assert!(b.circuits.is_empty());
    }
}
