//! The 24-hour customer-service window (connector guide §2.4): free-form
//! messages reach a user only within 24 hours of the user's last message to
//! that phone number. Outside it Meta answers 200 and silently drops them.

use serde::Serialize;

/// How long a user's message keeps the window open.
pub const WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowState {
    Open,
    Closed,
    /// wabridge has never received a message from this user on this number
    /// (the user never wrote, or wrote before the WABA was subscribed).
    Unknown,
}

/// The window of one user on one phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub state: WindowState,
    /// When an open window closes, or when a closed one did (unix ms).
    pub expires_at: Option<u64>,
}

/// The window given the user's last inbound message time, if any.
pub fn window(last_inbound_ms: Option<u64>, now_ms: u64) -> Window {
    match last_inbound_ms {
        None => Window {
            state: WindowState::Unknown,
            expires_at: None,
        },
        Some(at) => {
            let expires_at = at.saturating_add(WINDOW_MS);
            Window {
                state: if now_ms < expires_at {
                    WindowState::Open
                } else {
                    WindowState::Closed
                },
                expires_at: Some(expires_at),
            }
        }
    }
}

/// Templates are the only messages Meta delivers outside the window.
pub fn is_free_form(message_type: &str) -> bool {
    message_type != "template"
}

/// An inbound message of this type opens the window; Meta's system notices
/// (e.g. "the user changed their number") are not written by the user.
pub fn opens_window(inbound_type: &str) -> bool {
    inbound_type != "system"
}

/// What a free-form send outside an open window should tell the caller.
pub fn warning(state: WindowState) -> Option<&'static str> {
    match state {
        WindowState::Open => None,
        WindowState::Closed => Some("The 24-hour customer-service window with this recipient is closed: Meta accepts this message but will silently drop it. Send an approved template instead, and free-form messages once the user replies."),
        WindowState::Unknown => Some("wabridge has not seen this recipient write to this number, so the 24-hour customer-service window is probably closed: Meta would accept this message but silently drop it. Send an approved template first."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_764_000_000_000;

    #[test]
    fn a_message_opens_the_window_for_24_hours() {
        let w = window(Some(T0), T0 + 1000);
        assert_eq!(w.state, WindowState::Open);
        assert_eq!(w.expires_at, Some(T0 + WINDOW_MS));
        assert_eq!(
            window(Some(T0), T0 + WINDOW_MS - 1).state,
            WindowState::Open
        );
    }

    #[test]
    fn after_24_hours_the_window_is_closed() {
        let w = window(Some(T0), T0 + WINDOW_MS);
        assert_eq!(w.state, WindowState::Closed);
        assert_eq!(w.expires_at, Some(T0 + WINDOW_MS));
    }

    #[test]
    fn a_user_never_seen_is_unknown() {
        assert_eq!(window(None, T0).state, WindowState::Unknown);
        assert!(warning(WindowState::Unknown).is_some());
        assert!(warning(WindowState::Closed).unwrap().contains("template"));
        assert!(warning(WindowState::Open).is_none());
    }

    #[test]
    fn only_templates_pass_a_closed_window() {
        assert!(!is_free_form("template"));
        for t in ["text", "image", "interactive", "reaction", "location"] {
            assert!(is_free_form(t));
        }
        assert!(opens_window("text"));
        assert!(!opens_window("system"));
    }
}
