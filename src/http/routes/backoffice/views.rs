//! Shared pieces of the pages: the layout's data, times as people read them,
//! status colours, and the pages for errors and refusals.

use askama::Template;
use hyper::StatusCode;

use super::{html, Ctx};
use crate::domain::time::rfc3339_secs;
use crate::error::{Error, StorageFault};
use crate::http::response::{status_of, Resp};
use crate::http::session::Flash;

/// What the layout needs from every page.
pub struct Chrome {
    /// Which nav entry is current.
    pub nav: &'static str,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub version: &'static str,
    /// Why new events are being refused (disk full or failing), on every page.
    pub storage: Option<String>,
}

/// The layout's banner while the store refuses new events.
pub fn storage_warning(fault: &StorageFault) -> String {
    format!(
        "{fault}. Meta's webhooks are answered 503 until this passes, and Meta delivers them again later. What to do: {}.",
        crate::http::response::fault_hint(fault)
    )
}

impl Chrome {
    /// `aria-current` for the nav entry of this page.
    pub fn current(&self, entry: &str) -> &'static str {
        if self.nav == entry {
            "page"
        } else {
            "false"
        }
    }
}

/// A moment shown as "5 min ago", with the exact UTC time on hover.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub ago: String,
    pub full: String,
}

pub fn stamp(ms: u64, now: u64) -> Stamp {
    Stamp {
        ago: ago(ms, now),
        full: utc(ms),
    }
}

/// A time from a signed body or from Meta may be anything: past year 9999
/// it shows as the last second of 9999, never a panic of the page.
pub fn utc(ms: u64) -> String {
    rfc3339_secs(ms / 1000)
        .replace('T', " ")
        .replace('Z', " UTC")
}

fn ago(ms: u64, now: u64) -> String {
    if ms > now {
        return in_future(ms - now);
    }
    let s = (now - ms) / 1000;
    match s {
        0..=9 => "just now".into(),
        10..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

fn in_future(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("in {s} s"),
        60..=3599 => format!("in {} min", s / 60),
        3600..=86_399 => format!("in {} h", s / 3600),
        _ => format!("in {} d", s / 86_400),
    }
}

/// The message a person sees for an error: what happened and, where known, what to do.
/// Storage details stay in the log.
pub fn user_message(e: &Error) -> String {
    if matches!(e, Error::Storage { .. } | Error::Startup(_)) {
        tracing::error!(error = %e, "backoffice action failed");
        return "wabridge could not read or write its database; the server log has the details."
            .into();
    }
    if matches!(e, Error::Internal { .. }) {
        tracing::error!(error = %e, "backoffice action failed");
        return "wabridge failed inside (a bug, not something you did); the server log has the details."
            .into();
    }
    match crate::http::response::hint(e) {
        // The API hint for NotConfigured names the JSON API; the page has the form.
        Some(_) if matches!(e, Error::NotConfigured(_)) => {
            format!("{e}. Enter the App ID and App Secret on the Setup page first.")
        }
        Some(hint) if !matches!(e, Error::Unauthorized) => format!("{e}. {hint}"),
        _ => e.to_string(),
    }
}

pub fn error_flash(e: &Error) -> Flash {
    Flash::error(user_message(e))
}

#[derive(Template)]
#[template(path = "admin/notice.html")]
struct Notice<'a> {
    title: &'a str,
    message: &'a str,
}

/// A page outside the logged-in layout: refusals, an ended session.
pub fn notice(status: StatusCode, title: &str, message: &str) -> Resp {
    html(status, &Notice { title, message })
}

pub fn csrf_refused(why: &str) -> Resp {
    notice(
        StatusCode::FORBIDDEN,
        "Request refused",
        &format!(
            "This form was refused to protect the backoffice from cross-site requests: {why}. \
             If you sent it yourself, go back, reload the page and try again."
        ),
    )
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: &'static str,
    message: String,
}

pub fn error_page(cx: &Ctx<'_>, e: &Error) -> Resp {
    let status = status_of(e);
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "That did not work",
        _ => "Something went wrong",
    };
    let page = ErrorPage {
        chrome: cx.chrome(""),
        title,
        message: user_message(e),
    };
    html(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_a_person_says_them() {
        assert_eq!(ago(1_000, 1_500), "just now");
        assert_eq!(ago(0, 125_000), "2 min ago");
        assert_eq!(ago(0, 7_200_000), "2 h ago");
        assert_eq!(ago(0, 3 * 86_400_000), "3 d ago");
        assert_eq!(ago(61_000, 1_000), "in 1 min");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn times_past_year_9999_show_as_its_last_second() {
        assert_eq!(utc(253_402_300_800_000), "9999-12-31 23:59:59 UTC");
        assert_eq!(utc(u64::MAX), "9999-12-31 23:59:59 UTC");
        assert_eq!(stamp(u64::MAX, 0).full, "9999-12-31 23:59:59 UTC");
    }

    #[test]
    fn storage_details_stay_in_the_log() {
        let m = user_message(&Error::storage("reading /var/x", "disk on fire"));
        assert!(!m.contains("/var/x"));
    }
}
