//! The life of an account's Meta token: when to refresh it, and which answers of
//! Meta mean that only a fresh login helps.

use super::accounts::REQUIRED_SCOPES;
use super::model::{Account, AccountStatus};
use crate::meta::{DebugToken, MetaError};

/// Refresh a long-lived token (≈60 days) once it has less than this left, so a
/// few failed checks in a row (Meta down, the gateway stopped) still leave time.
pub const REFRESH_WITHIN_SECS: u64 = 10 * 24 * 3600;

/// What a check of one token found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A new token from `fb_exchange_token`.
    Refreshed {
        token: String,
        expires_at: Option<u64>,
    },
    /// The token works; Meta's current view of its expiry.
    Healthy { expires_at: Option<u64> },
    /// Meta refused the token: the account needs a reconnect, for this reason.
    Refused(String),
    /// We could not tell (Meta unreachable, our app credentials refused): try again later.
    Unknown(String),
}

/// Writes a verdict into the account. `Unknown` leaves it as it was.
pub fn apply(account: &mut Account, verdict: &Verdict, now_ms: u64) {
    match verdict {
        Verdict::Refreshed { token, expires_at } => {
            account.access_token = token.clone();
            account.token_expires_at = *expires_at;
        }
        Verdict::Healthy { expires_at } => account.token_expires_at = *expires_at,
        Verdict::Refused(reason) => {
            account.status = AccountStatus::NeedsReconnect;
            account.status_reason = Some(reason.clone());
        }
        Verdict::Unknown(_) => return,
    }
    account.token_checked_at = Some(now_ms);
}

/// Tokens that do not expire (System User tokens, `None`) are never refreshed.
pub fn refresh_due(expires_at: Option<u64>, now_secs: u64) -> bool {
    expires_at.is_some_and(|at| at <= now_secs.saturating_add(REFRESH_WITHIN_SECS))
}

/// Meta's errors that mean "this token is dead": 190 (expired, revoked, password
/// changed, app removed), 102 (session invalid), and the subcodes Meta documents
/// for those cases.
pub fn token_refused(e: &MetaError) -> bool {
    matches!(e.code, 102 | 190) || matches!(e.subcode, Some(458 | 459 | 460 | 463 | 464 | 467))
}

/// The reason shown as `statusReason` for an error of Meta.
pub fn reason_from_meta(e: &MetaError) -> String {
    let mut reason = match e.subcode {
        Some(sub) => format!("Meta error {} (subcode {sub}): {}", e.code, e.message),
        None => format!("Meta error {}: {}", e.code, e.message),
    };
    if let Some(trace) = &e.fbtrace_id {
        reason.push_str(&format!(" (fbtrace_id {trace})"));
    }
    reason.push_str(". Reconnect the account through a new connect link.");
    reason
}

/// Judges `/debug_token`'s answer for an account's token: `None` when it is fine.
pub fn refusal_in(debug: &DebugToken) -> Option<String> {
    if !debug.is_valid {
        let error = debug.error.as_ref();
        let code = error
            .and_then(|e| e.get("code"))
            .and_then(|c| c.as_i64())
            .unwrap_or(190);
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("the token is no longer valid");
        return Some(format!(
            "Meta error {code}: {message}. Reconnect the account through a new connect link."
        ));
    }
    let missing: Vec<&str> = REQUIRED_SCOPES
        .iter()
        .copied()
        .filter(|s| !debug.scopes.iter().any(|have| have == s))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the token lost the WhatsApp permissions ({}). Reconnect the account and approve them.",
            missing.join(", ")
        )
    })
}

/// `expires_at` of `/debug_token` (0 = never) as we store it.
pub fn expiry_of(debug: &DebugToken) -> Option<u64> {
    u64::try_from(debug.expires_at).ok().filter(|at| *at > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(code: i64, subcode: Option<i64>) -> MetaError {
        MetaError {
            http_status: 400,
            code,
            subcode,
            message: "Error validating access token".into(),
            error_type: Some("OAuthException".into()),
            fbtrace_id: Some("T1".into()),
            error_data: None,
        }
    }

    #[test]
    fn refresh_when_less_than_ten_days_are_left() {
        let now = 1_000_000_000;
        assert!(refresh_due(Some(now + 9 * 24 * 3600), now));
        assert!(refresh_due(Some(now - 5), now));
        assert!(!refresh_due(Some(now + 11 * 24 * 3600), now));
        assert!(!refresh_due(None, now));
    }

    #[test]
    fn error_190_and_friends_mean_reconnect() {
        assert!(token_refused(&meta(190, None)));
        assert!(token_refused(&meta(102, None)));
        assert!(token_refused(&meta(1, Some(463))));
        assert!(!token_refused(&meta(2, None)));
        assert!(!token_refused(&meta(100, None)));
        let reason = reason_from_meta(&meta(190, Some(460)));
        assert!(reason.contains("190") && reason.contains("460") && reason.contains("T1"));
    }

    #[test]
    fn verdicts_change_the_account() {
        let mut a: Account = serde_json::from_value(json!({
            "id": "acc", "name": "Shop", "wabaIds": ["W"], "businessAccountId": "W",
            "accessToken": "old", "tokenExpiresAt": 5, "metaUserId": "u",
            "apiKeyHash": "h", "createdAt": 1
        }))
        .unwrap();
        assert_eq!(a.status, AccountStatus::Ok, "old records read as ok");
        let refreshed = Verdict::Refreshed {
            token: "new".into(),
            expires_at: Some(99),
        };
        apply(&mut a, &refreshed, 7);
        assert_eq!(
            (a.access_token.as_str(), a.token_expires_at),
            ("new", Some(99))
        );
        assert_eq!(a.token_checked_at, Some(7));
        apply(&mut a, &Verdict::Unknown("down".into()), 8);
        assert_eq!(a.token_checked_at, Some(7));
        apply(&mut a, &Verdict::Refused("190".into()), 9);
        assert_eq!(a.status, AccountStatus::NeedsReconnect);
        assert_eq!(a.status_reason.as_deref(), Some("190"));
    }

    #[test]
    fn debug_token_verdicts() {
        let dead: DebugToken = serde_json::from_value(json!({
            "is_valid": false, "error": {"code": 190, "message": "Session has expired"}
        }))
        .unwrap();
        assert!(refusal_in(&dead).unwrap().contains("Session has expired"));
        let no_scopes: DebugToken =
            serde_json::from_value(json!({"is_valid": true, "scopes": ["public_profile"]}))
                .unwrap();
        assert!(refusal_in(&no_scopes).unwrap().contains("permissions"));
        let fine: DebugToken = serde_json::from_value(
            json!({"is_valid": true, "scopes": REQUIRED_SCOPES, "expires_at": 0}),
        )
        .unwrap();
        assert_eq!(refusal_in(&fine), None);
        assert_eq!(expiry_of(&fine), None);
    }
}
