//! What wabridge has seen of Meta's webhook, for the admin's setup checklist:
//! the last verification handshake, the last signed event, and signature failures
//! per hour over the last day.
//!
//! The webhook path only touches a small struct behind a mutex (`WebhookWatch`);
//! a background task persists it at most every few seconds, so recording costs no
//! disk write and a flood of unsigned POSTs cannot become a flood of commits.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

const HOUR_MS: u64 = 3_600_000;
const HOURS: usize = 24;

/// The last verification handshake Meta (or someone) made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    pub at_ms: u64,
    pub token_matched: bool,
}

/// Signature failures of one clock hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourBucket {
    /// Hours since the epoch.
    pub hour: u64,
    pub count: u32,
}

/// Why the last signature check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No `X-Hub-Signature-256` header at all: not Meta, or a proxy drops it.
    Missing,
    /// A signature that does not match: the secret differs from the App Secret.
    Mismatch,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookFacts {
    #[serde(default)]
    pub last_handshake: Option<Handshake>,
    /// The last handshake whose token matched, kept when a wrong one follows.
    #[serde(default)]
    pub last_good_handshake_ms: Option<u64>,
    #[serde(default)]
    pub last_signed_event_ms: Option<u64>,
    /// Webhook POSTs refused with 503 because no clientSecret was set yet.
    #[serde(default)]
    pub last_unconfigured_ms: Option<u64>,
    #[serde(default)]
    pub failures: Vec<HourBucket>,
    #[serde(default)]
    pub last_failure: Option<(u64, FailureKind)>,
}

impl WebhookFacts {
    pub fn record_handshake(&mut self, now_ms: u64, token_matched: bool) {
        self.last_handshake = Some(Handshake {
            at_ms: now_ms,
            token_matched,
        });
        if token_matched {
            self.last_good_handshake_ms = Some(now_ms);
        }
    }

    pub fn record_signed_event(&mut self, now_ms: u64) {
        self.last_signed_event_ms = Some(now_ms);
    }

    pub fn record_unconfigured(&mut self, now_ms: u64) {
        self.last_unconfigured_ms = Some(now_ms);
    }

    pub fn record_bad_signature(&mut self, now_ms: u64, kind: FailureKind) {
        let hour = now_ms / HOUR_MS;
        self.failures.retain(|b| b.hour + HOURS as u64 > hour);
        match self.failures.iter_mut().find(|b| b.hour == hour) {
            Some(b) => b.count = b.count.saturating_add(1),
            None => self.failures.push(HourBucket { hour, count: 1 }),
        }
        self.last_failure = Some((now_ms, kind));
    }

    /// Failures in the current hour and the 23 before it.
    pub fn failures_last_24h(&self, now_ms: u64) -> u32 {
        let hour = now_ms / HOUR_MS;
        self.failures
            .iter()
            .filter(|b| b.hour <= hour && b.hour + HOURS as u64 > hour)
            .map(|b| b.count)
            .sum()
    }

    /// The failures of the last 24 hours, oldest hour first (for a small bar chart).
    pub fn hourly_last_24h(&self, now_ms: u64) -> Vec<u32> {
        let hour = now_ms / HOUR_MS;
        (0..HOURS as u64)
            .rev()
            .map(|back| {
                let h = hour.saturating_sub(back);
                self.failures
                    .iter()
                    .filter(|b| b.hour == h)
                    .map(|b| b.count)
                    .sum()
            })
            .collect()
    }
}

/// The facts in memory, with a flag telling the flusher whether they changed.
#[derive(Default)]
pub struct WebhookWatch {
    inner: Mutex<(WebhookFacts, bool)>,
}

impl WebhookWatch {
    pub fn new(facts: WebhookFacts) -> Self {
        WebhookWatch {
            inner: Mutex::new((facts, false)),
        }
    }

    /// Changes the facts and marks them for the next flush.
    pub fn update(&self, f: impl FnOnce(&mut WebhookFacts)) {
        if let Ok(mut guard) = self.inner.lock() {
            f(&mut guard.0);
            guard.1 = true;
        }
    }

    pub fn snapshot(&self) -> WebhookFacts {
        self.inner.lock().map(|g| g.0.clone()).unwrap_or_default()
    }

    /// The facts if they changed since the last call, clearing the flag.
    pub fn take_dirty(&self) -> Option<WebhookFacts> {
        let mut guard = self.inner.lock().ok()?;
        if !guard.1 {
            return None;
        }
        guard.1 = false;
        Some(guard.0.clone())
    }

    /// Puts the flag back after a failed flush, so the next one tries again.
    pub fn mark_dirty(&self) {
        if let Ok(mut guard) = self.inner.lock() {
            guard.1 = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_only_the_last_24_hours() {
        let mut f = WebhookFacts::default();
        let t0 = 1_000 * HOUR_MS;
        f.record_bad_signature(t0, FailureKind::Mismatch);
        f.record_bad_signature(t0 + 10, FailureKind::Mismatch);
        f.record_bad_signature(t0 + 5 * HOUR_MS, FailureKind::Missing);
        assert_eq!(f.failures_last_24h(t0 + 5 * HOUR_MS), 3);
        assert_eq!(f.failures_last_24h(t0 + 24 * HOUR_MS), 1);
        assert_eq!(f.failures_last_24h(t0 + 29 * HOUR_MS), 0);
        let hourly = f.hourly_last_24h(t0 + 5 * HOUR_MS);
        assert_eq!(hourly.len(), 24);
        assert_eq!((hourly[18], hourly[23]), (2, 1));
        assert_eq!(
            f.last_failure,
            Some((t0 + 5 * HOUR_MS, FailureKind::Missing))
        );
    }

    #[test]
    fn a_wrong_handshake_keeps_the_last_good_one() {
        let mut f = WebhookFacts::default();
        f.record_handshake(10, true);
        f.record_handshake(20, false);
        assert_eq!(f.last_good_handshake_ms, Some(10));
        assert!(!f.last_handshake.unwrap().token_matched);
    }

    #[test]
    fn the_watch_reports_changes_once() {
        let w = WebhookWatch::default();
        assert!(w.take_dirty().is_none());
        w.update(|f| f.record_signed_event(5));
        assert_eq!(w.take_dirty().unwrap().last_signed_event_ms, Some(5));
        assert!(w.take_dirty().is_none());
        w.mark_dirty();
        assert!(w.take_dirty().is_some());
    }
}
