//! When to try a delivery again: the contract's schedule, jitter, and the
//! receiver's `Retry-After` within bounds.

use std::time::{Duration, SystemTime};

/// How one attempt ended, as the sender saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// 2xx within the timeout.
    Delivered { status: u16 },
    /// 410: the receiver asks us to stop sending to this listener.
    Gone,
    /// Anything else: non-2xx, timeout, refused, guard refusal.
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Done,
    RetryAt(u64),
    GiveUp,
    StopListener,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub schedule: Vec<Duration>,
}

/// A receiver may not push a retry out further than this, nor pull it closer than the floor.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600);
const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);

impl RetryPolicy {
    /// `attempts` counts the attempt that just ended; `jitter` is uniform in [0, 1).
    pub fn next(&self, attempt: &Attempt, attempts: u32, now_ms: u64, jitter: f64) -> Next {
        match attempt {
            Attempt::Delivered { .. } => Next::Done,
            Attempt::Gone => Next::StopListener,
            Attempt::Failed { retry_after, .. } => {
                let Some(base) = self.schedule.get(attempts.saturating_sub(1) as usize) else {
                    return Next::GiveUp;
                };
                let delay = match retry_after {
                    Some(asked) => (*asked).clamp(RETRY_AFTER_MIN, RETRY_AFTER_MAX),
                    None => base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)),
                };
                Next::RetryAt(now_ms + delay.as_millis() as u64)
            }
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: vec![Duration::from_secs(5), Duration::from_secs(300)],
        }
    }

    fn failed(retry_after: Option<Duration>) -> Attempt {
        Attempt::Failed {
            status: Some(500),
            error: "boom".into(),
            retry_after,
        }
    }

    #[test]
    fn retries_follow_the_schedule_with_jitter() {
        let p = policy();
        assert_eq!(p.next(&failed(None), 1, 0, 0.5), Next::RetryAt(5_000));
        assert_eq!(p.next(&failed(None), 1, 0, 0.0), Next::RetryAt(4_000));
        assert_eq!(
            p.next(&failed(None), 2, 1_000, 1.0),
            Next::RetryAt(1_000 + 360_000)
        );
        assert_eq!(p.next(&failed(None), 3, 0, 0.5), Next::GiveUp);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = policy();
        assert_eq!(
            p.next(&failed(Some(Duration::from_secs(60))), 1, 0, 0.5),
            Next::RetryAt(60_000)
        );
        assert_eq!(
            p.next(&failed(Some(Duration::ZERO)), 1, 0, 0.5),
            Next::RetryAt(1_000)
        );
        assert_eq!(
            p.next(&failed(Some(Duration::from_secs(10 * 86400))), 1, 0, 0.5),
            Next::RetryAt(86_400_000)
        );
    }

    #[test]
    fn success_and_gone() {
        assert_eq!(
            policy().next(&Attempt::Delivered { status: 204 }, 1, 0, 0.0),
            Next::Done
        );
        assert_eq!(policy().next(&Attempt::Gone, 1, 0, 0.0), Next::StopListener);
    }

    #[test]
    fn parses_retry_after() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
