//! What a Meta token must carry before an account is worth connecting.

use crate::error::Error;
use crate::meta::DebugToken;

pub const REQUIRED_SCOPES: [&str; 2] = [
    "whatsapp_business_messaging",
    "whatsapp_business_management",
];

/// The connector guide's causes and fixes for a token without WhatsApp scopes.
pub const MISSING_SCOPES_HINT: &str = "Typical causes: (1) the permissions were declined during login: reconnect and approve them; \
(2) Meta silently reused a stale Business Integration: remove it at facebook.com → Settings → Business integrations, then reconnect; \
(3) the app is Live with standard access and the user has no role on it: ask the admin about App Review or app roles; \
(4) the Meta account has no WhatsApp Business Account: create one in Business Manager → Accounts → WhatsApp Accounts, then reconnect.";

/// The same causes and fixes as steps, for the page a failed login shows.
pub const MISSING_SCOPES_FIXES: [&str; 4] = [
    "The permissions were declined during login: open the connect link again and approve whatsapp_business_messaging and whatsapp_business_management.",
    "Meta silently reused an older, stale grant (a Business Integration): remove it at facebook.com → Settings & privacy → Settings → Business integrations, then open the connect link again for a completely fresh grant.",
    "The Meta App is Live with standard access only and your Facebook account has no role on it: ask the gateway's administrator about App Review or an app role.",
    "Your Meta account has no WhatsApp Business Account: create one in Meta Business Manager → Settings → Accounts → WhatsApp Accounts → Add, add and verify a phone number, then open the connect link again.",
];

/// What a valid token grants us.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub waba_ids: Vec<String>,
    pub expires_at: Option<u64>,
    pub user_id: Option<String>,
}

/// Checks `/debug_token`'s verdict and collects the WABAs the token may act on,
/// from `granular_scopes[].target_ids` and any the caller named.
pub fn grant_from(token: &DebugToken, requested_wabas: &[String]) -> Result<Grant, Error> {
    if !token.is_valid {
        let why = token
            .error
            .as_ref()
            .and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("Meta says the token is not valid");
        return Err(Error::invalid(
            "accessToken",
            format!("{why}; issue a new token"),
        ));
    }
    let missing: Vec<String> = REQUIRED_SCOPES
        .iter()
        .filter(|s| !token.scopes.iter().any(|have| have == *s))
        .map(|s| s.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingScopes(missing));
    }
    let mut waba_ids: Vec<String> = Vec::new();
    let granted = token
        .granular_scopes
        .iter()
        .filter(|g| REQUIRED_SCOPES.contains(&g.scope.as_str()))
        .flat_map(|g| g.target_ids.iter());
    for id in granted.chain(requested_wabas) {
        if !waba_ids.contains(id) {
            waba_ids.push(id.clone());
        }
    }
    Ok(Grant {
        waba_ids,
        expires_at: (token.expires_at > 0).then_some(token.expires_at as u64),
        user_id: token.user_id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::DebugToken;

    fn token(scopes: &[&str], targets: &[&str]) -> DebugToken {
        serde_json::from_value(serde_json::json!({
            "is_valid": true,
            "scopes": scopes,
            "user_id": "u1",
            "expires_at": 0,
            "granular_scopes": [{"scope": "whatsapp_business_management", "target_ids": targets}],
        }))
        .unwrap()
    }

    #[test]
    fn wabas_come_from_target_ids_and_the_request() {
        let t = token(&REQUIRED_SCOPES, &["W1", "W2"]);
        let g = grant_from(&t, &["W2".into(), "W3".into()]).unwrap();
        assert_eq!(g.waba_ids, ["W1", "W2", "W3"]);
        assert_eq!(g.expires_at, None);
    }

    #[test]
    fn a_token_without_whatsapp_scopes_is_refused() {
        let t = token(&["whatsapp_business_messaging", "public_profile"], &[]);
        match grant_from(&t, &[]) {
            Err(Error::MissingScopes(m)) => assert_eq!(m, ["whatsapp_business_management"]),
            other => panic!("expected MissingScopes, got {other:?}"),
        }
    }

    #[test]
    fn an_invalid_token_is_refused() {
        let t = DebugToken::default();
        assert!(matches!(grant_from(&t, &[]), Err(Error::Invalid { .. })));
    }
}
