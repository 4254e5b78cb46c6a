//! How fast one phone number may send: a token bucket per phone number,
//! `rate` messages a second, holding one second's worth (so a quiet number may
//! send `rate` messages at once, then one every `1/rate` s). Meta allows each
//! number 80 messages a second by default and answers `130429` beyond
//! (developers.facebook.com/documentation/business-messaging/whatsapp/throughput);
//! refusing here first tells the flow how long to wait.
//!
//! A bucket is kept as one number, the time at which it will be full again
//! (the "generic cell rate algorithm"): a send adds one interval to it, and is
//! refused when that would put it more than a second ahead of now. A bucket
//! that is full is the same as no bucket, so full ones are forgotten without
//! changing any answer.
//!
//! A number Meta holds to a lower fixed throughput (a coexistence number,
//! 20 a second: `domain::coexistence`) has its own rate, set when wabridge
//! learns it; so has a number Meta has upgraded to 1,000 a second (its
//! phone number object's `throughput.level` is `HIGH`). No own rate is above
//! the `ceiling`: `rate` itself when the admin chose it
//! (`--send-rate-per-number` set: no number sends faster than the admin
//! said), 1,000 when `rate` is the default, so the tier raises the default
//! only. Every other number sends at `rate`; 0 is no limit.

use std::collections::HashMap;

use super::ids::PhoneNumberId;

/// Meta's default throughput of a Cloud API number (messages a second).
pub const DEFAULT_RATE: u32 = 80;

/// The throughput of a number Meta upgraded (`throughput.level: HIGH`).
pub const HIGH_RATE: u32 = 1_000;

/// Whether Meta's phone number object (listed with `throughput` among the
/// fields) says the number has the higher throughput. `STANDARD`,
/// `NOT_APPLICABLE` and no answer are all the default.
pub fn is_high_throughput(number: &serde_json::Value) -> bool {
    number
        .pointer("/throughput/level")
        .and_then(serde_json::Value::as_str)
        == Some("HIGH")
}

/// The ids of the numbers in a Graph listing of a WABA's numbers that
/// `kind` picks (`is_high_throughput`, `coexistence::is_coexistence`), sorted:
/// what the store keeps of the WABA's numbers with a rate of their own.
pub fn numbers_where(
    listing: &[serde_json::Value],
    kind: fn(&serde_json::Value) -> bool,
) -> Vec<String> {
    let mut ids: Vec<String> = listing
        .iter()
        .filter(|n| kind(n))
        .filter_map(|n| n.get("id").and_then(serde_json::Value::as_str))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// Numbers held before the full buckets are dropped: a full bucket is the
/// same as none, so memory is bounded by the numbers that sent within the
/// last second, and no answer changes.
const MAX_NUMBERS: usize = 10_000;

const MICROS_PER_SEC: u64 = 1_000_000;

/// One number's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// When the bucket is full again, µs since the epoch.
    full_at: u64,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket { full_at: 0 }
    }

    /// Takes one token at `now_us` with one token every `interval` µs, or
    /// the µs until one is there.
    fn try_take(&mut self, now_us: u64, interval: u64) -> Result<(), u64> {
        // A bucket is never legitimately more than a second ahead: after the
        // clock stepped back, it is not left refusing for the length of the step.
        self.full_at = self.full_at.min(now_us + MICROS_PER_SEC);
        let next = self.full_at.max(now_us) + interval;
        let ahead = next - now_us;
        if ahead > MICROS_PER_SEC {
            return Err(ahead - MICROS_PER_SEC);
        }
        self.full_at = next;
        Ok(())
    }
}

/// The buckets of every number that sent within the last second.
#[derive(Debug)]
pub struct Throughput {
    /// Messages a second per number; 0 is no limit.
    rate: u32,
    /// The most a number's own rate may be.
    ceiling: u32,
    buckets: HashMap<PhoneNumberId, Bucket>,
    /// Numbers with a rate of their own, other than `rate`.
    own_rates: HashMap<PhoneNumberId, u32>,
}

impl Throughput {
    /// Every number at `rate` at most: the admin's explicit choice.
    pub fn new(rate: u32) -> Throughput {
        Throughput {
            rate,
            ceiling: rate,
            buckets: HashMap::new(),
            own_rates: HashMap::new(),
        }
    }

    /// `rate` by default, up to Meta's higher throughput for a number Meta
    /// has upgraded: when the admin left `--send-rate-per-number` unset.
    pub fn following_tiers(rate: u32) -> Throughput {
        let ceiling = if rate == 0 { 0 } else { rate.max(HIGH_RATE) };
        Throughput {
            ceiling,
            ..Throughput::new(rate)
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The rate `number` sends at: its own, or everyone's.
    pub fn rate_for(&self, number: &PhoneNumberId) -> u32 {
        self.own_rates.get(number).copied().unwrap_or(self.rate)
    }

    /// Gives `number` a rate of its own (never above the ceiling, and off
    /// when everyone's is), or with `None` takes it back.
    pub fn set_rate_for(&mut self, number: &PhoneNumberId, rate: Option<u32>) {
        match rate.map(|r| r.min(self.ceiling)) {
            Some(r) if self.rate != 0 && r != self.rate => {
                self.own_rates.insert(number.clone(), r);
            }
            _ => {
                self.own_rates.remove(number);
            }
        }
    }

    /// Counts one message from `number` at `now_ms`, or refuses it with the
    /// milliseconds (rounded up) until the number may send again.
    pub fn try_take(&mut self, number: &PhoneNumberId, now_ms: u64) -> Result<(), u64> {
        let rate = self.rate_for(number);
        if rate == 0 {
            return Ok(());
        }
        let now_us = now_ms.saturating_mul(1000);
        if self.buckets.len() >= MAX_NUMBERS && !self.buckets.contains_key(number) {
            self.buckets.retain(|_, b| b.full_at > now_us);
        }
        let interval = (MICROS_PER_SEC / u64::from(rate)).max(1);
        self.buckets
            .entry(number.clone())
            .or_insert_with(Bucket::new)
            .try_take(now_us, interval)
            .map_err(|wait_us| wait_us.div_ceil(1000))
    }

    /// How many numbers have a bucket that is not full.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.buckets.len()
    }
}

/// Whole seconds for a `Retry-After` of `wait_ms`: rounded up, at least 1.
pub fn retry_after_secs(wait_ms: u64) -> u64 {
    wait_ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    fn number(id: &str) -> PhoneNumberId {
        PhoneNumberId::new(id)
    }

    /// How many of `n` sends at `now_ms` pass.
    fn passed(t: &mut Throughput, id: &str, n: usize, now_ms: u64) -> usize {
        (0..n)
            .filter(|_| t.try_take(&number(id), now_ms).is_ok())
            .count()
    }

    #[test]
    fn a_quiet_number_may_send_one_seconds_worth_at_once_and_no_more() {
        let mut t = Throughput::new(80);
        assert_eq!(passed(&mut t, "1", 200, T0), 80);
        // The 81st waits one interval (12.5 ms, rounded up).
        assert_eq!(t.try_take(&number("1"), T0), Err(13));
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let mut t = Throughput::new(5);
        assert_eq!(passed(&mut t, "1", 10, T0), 5);
        assert_eq!(t.try_take(&number("1"), T0 + 100), Err(100));
        assert_eq!(passed(&mut t, "1", 10, T0 + 200), 1);
        assert_eq!(passed(&mut t, "1", 10, T0 + 600), 2);
        // A second later the bucket is full again, and no fuller.
        assert_eq!(passed(&mut t, "1", 10, T0 + 10_000), 5);
    }

    #[test]
    fn the_wait_is_until_the_next_token() {
        let mut t = Throughput::new(1);
        assert_eq!(t.try_take(&number("1"), T0), Ok(()));
        assert_eq!(t.try_take(&number("1"), T0), Err(1000));
        assert_eq!(t.try_take(&number("1"), T0 + 999), Err(1));
        assert_eq!(t.try_take(&number("1"), T0 + 1000), Ok(()));
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(1000), 1);
        assert_eq!(retry_after_secs(1001), 2);
    }

    #[test]
    fn each_number_has_its_own_bucket() {
        let mut t = Throughput::new(5);
        assert_eq!(passed(&mut t, "1", 10, T0), 5);
        assert_eq!(passed(&mut t, "2", 10, T0), 5);
    }

    #[test]
    fn a_number_with_its_own_rate_sends_at_it_until_taken_back() {
        let mut t = Throughput::new(80);
        t.set_rate_for(&number("coex"), Some(20));
        assert_eq!(t.rate_for(&number("coex")), 20);
        assert_eq!(passed(&mut t, "coex", 100, T0), 20);
        assert_eq!(passed(&mut t, "other", 100, T0), 80);
        // Never above everyone's rate.
        t.set_rate_for(&number("high"), Some(500));
        assert_eq!(t.rate_for(&number("high")), 80);
        t.set_rate_for(&number("coex"), None);
        assert_eq!(passed(&mut t, "coex", 100, T0 + 2_000), 80);
        // Everyone's rate off: every number's too.
        let mut off = Throughput::new(0);
        off.set_rate_for(&number("coex"), Some(20));
        assert_eq!(passed(&mut off, "coex", 1_000, T0), 1_000);
    }

    #[test]
    fn an_upgraded_number_sends_at_1000_unless_the_admin_chose_the_rate() {
        // The flag left at its default: Meta's tier raises the number.
        let mut t = Throughput::following_tiers(DEFAULT_RATE);
        t.set_rate_for(&number("high"), Some(HIGH_RATE));
        t.set_rate_for(&number("coex"), Some(20));
        assert_eq!(t.rate_for(&number("high")), 1_000);
        assert_eq!(passed(&mut t, "high", 2_000, T0), 1_000);
        assert_eq!(passed(&mut t, "standard", 2_000, T0), 80);
        assert_eq!(passed(&mut t, "coex", 2_000, T0), 20);
        // Chosen by the admin: no number above it, lower ones still lower.
        for chosen in [50, 80, 5_000] {
            let mut t = Throughput::new(chosen);
            t.set_rate_for(&number("high"), Some(HIGH_RATE));
            t.set_rate_for(&number("coex"), Some(20));
            assert_eq!(
                t.rate_for(&number("high")),
                HIGH_RATE.min(chosen),
                "{chosen}"
            );
            assert_eq!(t.rate_for(&number("coex")), 20.min(chosen), "{chosen}");
        }
        // Off stays off.
        let mut off = Throughput::following_tiers(0);
        off.set_rate_for(&number("high"), Some(HIGH_RATE));
        assert_eq!(passed(&mut off, "high", 3_000, T0), 3_000);
    }

    #[test]
    fn metas_throughput_level_high_is_the_upgraded_tier() {
        let listing = [
            serde_json::json!({"id": "3", "throughput": {"level": "HIGH"}}),
            serde_json::json!({"id": "1", "throughput": {"level": "STANDARD"}}),
            serde_json::json!({"id": "2", "throughput": {"level": "NOT_APPLICABLE"}}),
            serde_json::json!({"id": "4"}),
            serde_json::json!({"id": "0", "throughput": {"level": "HIGH"}}),
        ];
        assert_eq!(numbers_where(&listing, is_high_throughput), ["0", "3"]);
    }

    #[test]
    fn rate_zero_is_no_limit() {
        let mut t = Throughput::new(0);
        assert_eq!(passed(&mut t, "1", 100_000, T0), 100_000);
        assert_eq!(t.held(), 0);
    }

    #[test]
    fn full_buckets_are_forgotten_when_many_numbers_sent() {
        let mut t = Throughput::new(80);
        for n in 0..MAX_NUMBERS {
            t.try_take(&number(&n.to_string()), T0).unwrap();
        }
        assert_eq!(t.held(), MAX_NUMBERS);
        // A second later every bucket is full: the next new number clears them.
        t.try_take(&number("new"), T0 + 1000).unwrap();
        assert_eq!(t.held(), 1);
        // A number still sending keeps its (not full) bucket.
        let mut t = Throughput::new(1);
        for n in 0..MAX_NUMBERS {
            t.try_take(&number(&n.to_string()), T0).unwrap();
        }
        t.try_take(&number("new"), T0 + 500).unwrap();
        assert_eq!(t.held(), MAX_NUMBERS + 1);
    }

    #[test]
    fn a_clock_stepped_back_does_not_hold_a_number_back_longer_than_a_second() {
        let number = PhoneNumberId::new("1");
        let mut t = Throughput::new(1);
        assert!(t.try_take(&number, 10_000_000).is_ok());
        // An hour back: at most a second's wait, not an hour's.
        let wait = t.try_take(&number, 10_000_000 - 3_600_000).unwrap_err();
        assert!(wait <= 1_000, "{wait} ms");
    }
}
