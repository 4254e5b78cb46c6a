//! Wall-clock helpers. Stored times are unix milliseconds; shown times RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// 9999-12-31T23:59:59Z: RFC 3339 has four-digit years, and the formatter
/// panics past it. A time from a signed body may be anything.
const LAST_SECS: u64 = 253_402_300_799;

pub fn rfc3339_ms(ms: u64) -> String {
    let ms = ms.min(LAST_SECS * 1000 + 999);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

pub fn rfc3339_secs(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs.min(LAST_SECS)))
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339_secs(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            super::rfc3339_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn times_past_year_9999_are_clamped_not_a_panic() {
        assert_eq!(super::rfc3339_secs(u64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(super::rfc3339_ms(u64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
