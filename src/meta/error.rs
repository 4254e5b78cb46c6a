use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// An error as Meta's Graph API reports it, kept whole so a person can look it up.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetaError {
    /// HTTP status Meta answered with.
    pub http_status: u16,
    pub code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subcode: Option<i64>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub error_type: Option<String>,
    /// Named as Meta names it, the id Meta's support asks for.
    #[serde(skip_serializing_if = "Option::is_none", rename = "fbtrace_id")]
    pub fbtrace_id: Option<String>,
    /// Meta's `error_data` where it sent one, as it is: the details of a
    /// refusal (e.g. when the next business-initiated call is allowed).
    #[serde(skip_serializing_if = "Option::is_none", rename = "error_data")]
    pub error_data: Option<Box<serde_json::Value>>,
}

impl MetaError {
    /// Reads Meta's `{"error": {...}}` body; anything else becomes a generic error
    /// that still carries the status and the start of the body.
    pub fn from_body(http_status: u16, body: &str) -> Self {
        let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error"));
        match err {
            Some(e) => MetaError {
                http_status,
                code: e.get("code").and_then(|c| c.as_i64()).unwrap_or(0),
                subcode: e.get("error_subcode").and_then(|c| c.as_i64()),
                message: e
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("no message")
                    .to_string(),
                error_type: e.get("type").and_then(|t| t.as_str()).map(str::to_string),
                fbtrace_id: e
                    .get("fbtrace_id")
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                error_data: e
                    .get("error_data")
                    .filter(|d| !d.is_null())
                    .map(|d| Box::new(d.clone())),
            },
            None => MetaError {
                http_status,
                code: 0,
                subcode: None,
                message: format!(
                    "unexpected answer: {}",
                    body.chars().take(200).collect::<String>()
                ),
                error_type: None,
                fbtrace_id: None,
                error_data: None,
            },
        }
    }

    /// Meta's throttling: per app, per number, per recipient pair, or spam limits.
    pub fn is_rate_limit(&self) -> bool {
        self.http_status == 429
            || matches!(self.code, 4 | 613 | 80007 | 130429 | 131048 | 131056)
            || CALL_LIMITS.contains(&self.code)
    }

    /// Seconds a flow should wait before sending again after this refusal,
    /// where Meta's error says which limit was hit (Meta sends no
    /// `Retry-After`). Meta's throughput page
    /// (developers.facebook.com/documentation/business-messaging/whatsapp/throughput)
    /// and error codes page (…/whatsapp/support/error-codes):
    /// - `130429`, the number's throughput (80 or 1,000 messages a second)
    ///   reached: the limit is per second, so the next second may pass.
    /// - `131056`, the pair rate limit: one message every 6 seconds to the
    ///   same user (after a short burst); other users can be sent to at once.
    /// - `138012`, business-initiated calls to one user in 24 hours: Meta's
    ///   `error_data` says when the next call is allowed (see [`next_call_wait`]).
    pub fn retry_after(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.retry_after_at(now)
    }

    /// [`retry_after`](Self::retry_after) at `now` (unix seconds).
    pub fn retry_after_at(&self, now: u64) -> Option<u64> {
        match self.code {
            130429 => Some(1),
            131056 => Some(6),
            138012 => next_call_wait(self.error_data.as_deref()?, now),
            _ => None,
        }
    }

    /// The connector guide's advice for this error, where it has one.
    pub fn hint(&self) -> Option<&'static str> {
        hint_for(self.code, &self.message)
    }
}

/// Meta's Groups API refusals name the group (or groups) in their message:
/// eligibility (an Official Business Account, the number on the Cloud API),
/// and the limits its Groups overview states.
fn group_hint(code: i64, lower: &str) -> Option<&'static str> {
    if !lower.contains("group") {
        return None;
    }
    Some(match code {
        3 | 10 | 200..=299 => "Meta refused the group request for this number: the Groups API needs an Official Business Account (OBA), the number on the Cloud API (not the WhatsApp Business app), and the app subscribed to the group_* webhook fields.",
        _ => "Meta refused the group request: its message says why. A group holds at most 8 participants and a number creates at most 10,000 groups; a deleted or suspended group takes no changes or messages. GET /api/v1/phone-numbers/{phoneNumberId}/groups lists the number's active groups.",
    })
}

/// The Calling API's limits (Meta's calling troubleshooting page): concurrent
/// calls (`138002`), calls started by the number (`138005`), permission
/// requests to one user (`138009`), business-initiated calls to one user in
/// 24 hours (`138012`), permission look-ups (`138013`).
const CALL_LIMITS: [i64; 5] = [138002, 138005, 138009, 138012, 138013];

/// The longest wait read from a `138012`'s `error_data`: the limit counts
/// calls over 24 hours, so a later time is a misreading, not a wait.
const MAX_CALL_WAIT: u64 = 24 * 60 * 60;
/// A number at least this large is a unix time in seconds (2001-09-09 on), …
const UNIX_SECONDS: u64 = 1_000_000_000;
/// … and at least this large, in milliseconds.
const UNIX_MILLIS: u64 = 1_000_000_000_000;

/// Seconds until the next business-initiated call is allowed, from a
/// `138012`'s `error_data`, between 1 and 24 hours. Meta's calling
/// troubleshooting page says the error's details say when the next call is
/// allowed but does not publish their shape, so the common forms are read:
/// the data itself or any of its values (e.g. `details`) being a number or
/// a numeric string — a unix time in seconds or milliseconds, or else
/// seconds to wait — or a text naming a unix time ("next call allowed at
/// 1767225600"). Other numbers in a text ("5 calls in 24 hours") are no
/// wait, and a time already past means at once (1 s). Anything else: `None`,
/// and the 429 goes without `Retry-After`, `error_data` still in the body.
fn next_call_wait(data: &Value, now: u64) -> Option<u64> {
    let values: Vec<&Value> = match data {
        Value::Object(m) => m.values().collect(),
        other => vec![other],
    };
    values
        .into_iter()
        .find_map(|v| wait_in(v, now))
        .map(|secs| secs.clamp(1, MAX_CALL_WAIT))
}

fn wait_in(v: &Value, now: u64) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| wait_for(n, now)),
        Value::String(s) => match s.trim().parse::<u64>() {
            Ok(n) => Some(wait_for(n, now)),
            Err(_) => s
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|d| d.parse::<u64>().ok())
                .find(|&n| n >= UNIX_SECONDS)
                .map(|n| wait_for(n, now)),
        },
        _ => None,
    }
}

/// `n` as seconds from `now`: a unix time (seconds or milliseconds) or a wait.
fn wait_for(n: u64, now: u64) -> u64 {
    if n >= UNIX_MILLIS {
        (n / 1000).saturating_sub(now)
    } else if n >= UNIX_SECONDS {
        n.saturating_sub(now)
    } else {
        n
    }
}

/// The connector guide's advice for the error codes our users meet most; also
/// used for the `errors[]` of a failed status.
pub fn hint_for(code: i64, message: &str) -> Option<&'static str> {
    let lower = message.to_ascii_lowercase();
    if code == 133005 || lower.contains("pin mismatch") {
        return Some("The PIN does not match the number's two-step verification PIN. Reset it in WhatsApp Manager → phone number → Two-step verification PIN, then register again.");
    }
    if let Some(hint) = login_hint(code, &lower) {
        return Some(hint);
    }
    if let Some(hint) = marketing_hint(&lower) {
        return Some(hint);
    }
    if code == 100 && lower.contains("template") {
        return Some("Meta refused the template: its message says which part. A name already used in this language, or deleted less than 4 weeks ago, needs another name; GET /api/v1/business-accounts/{wabaId}/templates?name= shows what exists.");
    }
    if let Some(hint) = group_hint(code, &lower) {
        return Some(hint);
    }
    Some(match code {
        190 => "The account's Meta token expired or was revoked. Reconnect the account (a fresh login issues a new token).",
        133010 => "The sender phone number is not registered for the Cloud API. Call POST /api/v1/phone-numbers/{id}/ensure-registered once with its PIN.",
        131030 => "The Meta App is in Development mode and the recipient is not on its verified list. Add the recipient under WhatsApp → API Setup → Manage phone number list, or take the app Live.",
        132000 => "The template's components do not match its parameters. Compare them with the template in WhatsApp Manager → Message Templates.",
        131047 => "More than 24 hours have passed since the recipient last wrote: the customer-service window is closed. Send an approved template instead.",
        200 | 10 => "The token lacks a permission. Reconnect and approve whatsapp_business_messaging and whatsapp_business_management.",
        100 => "Meta refused a parameter. Check the IDs (WABA, phone number) belong to this account.",
        131026 => "Meta could not deliver to this recipient: the number may not be on WhatsApp, or the user has not accepted the latest terms. Check the number; use a template for first contact.",
        131051 => "Meta does not support this message type. Check `type` and its object.",
        130429 => "The number's throughput (80 messages per second by default) is reached. Wait a second and send slower.",
        131056 => "Too many messages to this recipient in a short time (Meta allows about one every 6 seconds). Wait before writing to this user again; other recipients can be sent to now.",
        131048 | 80007 | 613 | 4 => "Too many messages too fast (for this number, account or app). Slow down and retry later.",
        132001 => "No approved template with this name and language exists. Check the name and the language code in WhatsApp Manager → Message Templates.",
        133006 => "The phone number must be verified again before it can be registered. Verify it in WhatsApp Manager, then register.",
        368 | 131031 => "Meta has restricted this account or number for a policy violation. Check WhatsApp Manager → Account quality.",
        138000 => "Calling is not enabled on this phone number. Enable it with POST /api/v1/phone-numbers/{id}/call-settings {\"status\": \"ENABLED\"} (the number needs a messaging limit of 2,000 or more).",
        138001 => "The user cannot receive calls: not on WhatsApp, not on the latest terms, or on a client without calling (Android and iOS have it). Check with the user.",
        138002 => "The number has reached its limit of concurrent calls (1,000). End calls or try again later.",
        138003 => "A call with this user is already going on. Try again once it has ended.",
        138004 => "Meta could not connect the call. Check the SDP your WebRTC stack made (ICE, DTLS-SRTP, Opus) and try again.",
        138005 => "The number has started too many calls. Slow down and try again later.",
        138006 => "The user has not given this business permission to call. Send a call permission request (an interactive message of type call_permission_request, or a template with one) and wait for the user's accept; GET /api/v1/phone-numbers/{id}/call-permissions/{user} shows where it stands.",
        138007 => "The call timed out: the SDP from Meta was not applied, or the answer not sent, in time. Pre-accept and accept sooner after the call's connect event.",
        138009 => "Too many call permission requests to this user (Meta allows 1 in 24 hours and 2 in 7 days; a connected call resets it). Wait before asking again.",
        138012 => "The business has reached its limit of calls to this user in 24 hours; Meta's error_data says when the next call is allowed.",
        138013 => "Too many call permission look-ups. Slow down and try again later.",
        138018 => "Calling cannot be enabled yet: an app subscribed to this WABA must also subscribe to the calls webhook field (or SIP must be configured). Subscribe the calls field in the Meta App's webhook settings, then enable calling again.",
        _ => return None,
    })
}

/// Refusals of the Marketing Messages Lite API (`/marketing_messages`),
/// recognised by their text: Meta answers a WABA that has not accepted the
/// MM Lite terms with "You must accept the Marketing Messages Lite API terms
/// to use the API" (code 131055 in partner docs; Meta's own error table uses
/// that code for other refusals too), and a message that is not a marketing
/// template with code 100 and "Message must be a template message".
fn marketing_hint(message: &str) -> Option<&'static str> {
    let marketing = message.contains("marketing messages") || message.contains("mm lite");
    Some(
        if marketing && (message.contains("terms") || message.contains("onboard")) {
            "The WABA's business has not accepted the Marketing Messages Lite API terms (MM Lite onboarding). An admin of the business portfolio accepts them in WhatsApp Manager (or through the partner's onboarding link); Meta then sends the account_update event MM_LITE_TERMS_SIGNED, and GET /api/v1/business-accounts shows marketingMessages.status \"onboarded\". Until then send with POST /api/v1/phone-numbers/{id}/messages."
        } else if message.contains("must be a template message")
            || (marketing && message.contains("template"))
        {
            "The Marketing Messages API sends approved MARKETING templates only. Send utility and authentication templates and every other message with POST /api/v1/phone-numbers/{id}/messages."
        } else {
            return None;
        },
    )
}

/// Errors of the login and the code exchange, recognised by their text because
/// Meta reuses codes 100 and 191 for many of them.
fn login_hint(code: i64, message: &str) -> Option<&'static str> {
    Some(if message.contains("onboard customers") {
        "The business portfolio that owns the Meta App has not passed Business Verification, or the app lacks Advanced Access for the whatsapp_* permissions. The administrator completes both in Meta Business Manager and App Review (connector guide §1.3.1, §1.7)."
    } else if message.contains("invalid scopes") {
        "The Meta App may only request the whatsapp_* permissions. wabridge asks for whatsapp_business_messaging and whatsapp_business_management only; check the app's Facebook Login for Business configuration and try again."
    } else if code == 191
        || message.contains("redirect_uri")
        || message.contains("domain of this url")
    {
        "Meta does not accept this gateway's callback. In the Meta App add <public-url>/auth/whatsapp/callback to Facebook Login for Business → Settings → Valid OAuth Redirect URIs and the gateway's domain to App settings → Basic → App Domains (connector guide §1.3)."
    } else if message.contains("authorization code") || message.contains("verification code") {
        "The login code expired or was already used. Open the connect link again to start a fresh login."
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marketing_messages_refusals_say_what_to_do() {
        let terms = hint_for(
            131055,
            "(#200) You must accept the Marketing Messages Lite API terms to use the API.",
        )
        .unwrap();
        assert!(terms.contains("MM_LITE_TERMS_SIGNED"), "{terms}");
        let not_template = hint_for(
            100,
            "(#100) Invalid parameter: Message must be a template message.",
        )
        .unwrap();
        assert!(
            not_template.contains("MARKETING templates only"),
            "{not_template}"
        );
        // Other refusals keep their own hints.
        assert!(hint_for(100, "Invalid parameter")
            .unwrap()
            .contains("Meta refused a parameter"));
    }

    #[test]
    fn reads_metas_error_body() {
        let e = MetaError::from_body(
            400,
            r#"{"error":{"message":"(#133010) Account not registered","type":"OAuthException","code":133010,"error_subcode":2494102,"fbtrace_id":"AbC"}}"#,
        );
        assert_eq!(e.code, 133010);
        assert_eq!(e.subcode, Some(2494102));
        assert_eq!(e.fbtrace_id.as_deref(), Some("AbC"));
        assert!(e.hint().unwrap().contains("ensure-registered"));
    }

    #[test]
    fn login_errors_get_the_guides_advice() {
        let used = hint_for(100, "This authorization code has been used.").unwrap();
        assert!(used.contains("connect link"));
        let redirect = hint_for(
            100,
            "Error validating verification code. Please make sure your redirect_uri is identical",
        )
        .unwrap();
        assert!(redirect.contains("Valid OAuth Redirect URIs"));
        assert!(hint_for(100, "Invalid Scopes: business_management")
            .unwrap()
            .contains("whatsapp_"));
        assert!(hint_for(100, "Invalid parameter").unwrap().contains("IDs"));
        assert!(hint_for(100, "Invalid group id")
            .unwrap()
            .contains("active groups"));
        assert!(
            hint_for(10, "Groups API is not available for this phone number")
                .unwrap()
                .contains("Official Business Account")
        );
        assert!(hint_for(100, "Message template name is being deleted")
            .unwrap()
            .contains("another name"));
    }

    #[test]
    fn the_guides_errors_have_hints() {
        assert!(hint_for(133005, "Two step verification PIN Mismatch")
            .unwrap()
            .contains("PIN"));
        assert!(hint_for(0, "Security PIN Mismatch: Wrong PIN used")
            .unwrap()
            .contains("PIN"));
        assert!(hint_for(131030, "").unwrap().contains("verified list"));
        assert!(hint_for(132000, "").unwrap().contains("components"));
        assert!(hint_for(131047, "").unwrap().contains("template"));
        assert!(hint_for(190, "").unwrap().contains("Reconnect"));
        assert!(hint_for(1, "").is_none());
        assert!(hint_for(138000, "").unwrap().contains("call-settings"));
        assert!(hint_for(138006, "")
            .unwrap()
            .contains("call_permission_request"));
    }

    #[test]
    fn the_calling_apis_limits_are_throttling() {
        let e = |code| MetaError::from_body(400, &format!(r#"{{"error":{{"code":{code}}}}}"#));
        for code in [138002, 138005, 138009, 138012, 138013] {
            assert!(e(code).is_rate_limit(), "{code}");
        }
        assert!(!e(138006).is_rate_limit());
    }

    #[test]
    fn throughput_and_pair_limits_say_how_long_to_wait() {
        let wait = |code| MetaError::from_body(400, &format!(r#"{{"error":{{"code":{code}}}}}"#));
        assert_eq!(wait(130429).retry_after(), Some(1));
        assert_eq!(wait(131056).retry_after(), Some(6));
        assert!(wait(131056).is_rate_limit());
        // Limits over hours or a day have no wait a flow could act on.
        assert_eq!(wait(80007).retry_after(), None);
        assert_eq!(wait(131048).retry_after(), None);
    }

    #[test]
    fn the_call_limit_says_when_the_next_call_is_allowed() {
        const NOW: u64 = 1_767_225_600;
        let limit = |data: &str| {
            MetaError::from_body(
                400,
                &format!(r#"{{"error":{{"code":138012,"message":"Business initiated calls limit reached","error_data":{data}}}}}"#),
            )
            .retry_after_at(NOW)
        };
        let hour = NOW + 3600;
        // A unix time in Meta's usual `details` text, as a number, or in ms.
        let details = format!(
            r#"{{"messaging_product":"whatsapp","details":"Limit of 5 calls in 24 hours reached. Next call allowed at {hour}"}}"#
        );
        assert_eq!(limit(&details), Some(3600));
        assert_eq!(
            limit(&format!(r#"{{"next_call_allowed_at":{hour}}}"#)),
            Some(3600)
        );
        assert_eq!(limit(&format!(r#""{}""#, hour * 1000)), Some(3600));
        // Seconds to wait.
        assert_eq!(limit(r#"{"details":"120"}"#), Some(120));
        // At least 1 s, at most 24 hours.
        assert_eq!(limit(&format!(r#"{{"details":"{}"}}"#, NOW - 60)), Some(1));
        assert_eq!(limit(r#"{"retry_after":0}"#), Some(1));
        assert_eq!(limit(&format!("{}", NOW + 7 * 86_400)), Some(86_400));
        // Nothing that names a time: no wait.
        assert_eq!(limit(r#"{"details":"5 calls in 24 hours"}"#), None);
        assert_eq!(limit("null"), None);
        assert_eq!(
            limit(r#"{"details":"Business initiated calls limit reached"}"#),
            None
        );
        // Another limit's error_data is not read.
        let other = MetaError::from_body(
            400,
            &format!(r#"{{"error":{{"code":138005,"error_data":{{"details":"{hour}"}}}}}}"#),
        );
        assert_eq!(other.retry_after_at(NOW), None);
    }

    #[test]
    fn keeps_a_non_json_answer_readable() {
        let e = MetaError::from_body(502, "<html>bad gateway</html>");
        assert_eq!(e.code, 0);
        assert!(e.message.contains("bad gateway"));
        assert!(e.hint().is_none());
    }
}
