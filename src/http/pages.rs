//! The HTML pages a customer sees while connecting, rendered with askama from
//! `templates/`, each with a strict Content-Security-Policy and a fresh nonce.

use askama::Template;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;
use serde_json::json;

use super::response::{self, Resp};
use crate::domain::connect::script_json;
use crate::domain::ids::random_bytes;
use crate::meta::MetaError;

/// The pages' stylesheet, compiled into the binary.
pub const CSS: &str = include_str!("../../static/wabridge.css");
/// The tab icon of every page (the backoffice's logo), a data URI: each
/// page's Content-Security-Policy allows `img-src data:` and nothing else in
/// common, and no request is spent on it.
pub const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='32' height='32' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='8' fill='%2325d0a6'/%3E%3Ctext x='16' y='21.5' font-family='sans-serif' font-size='15' font-weight='800' text-anchor='middle' fill='%2307302a'%3Ewb%3C/text%3E%3C/svg%3E";
/// The Embedded Signup script, inlined with the page's nonce.
pub const SIGNUP_JS: &str = include_str!("../../static/signup.js");
/// Meta's JS SDK: the one outside script any page loads (Embedded Signup needs it).
pub const FB_SDK: &str = "https://connect.facebook.net/en_US/sdk.js";
const FB_SDK_ORIGIN: &str = "https://connect.facebook.net";
/// The version of the session info Meta's wizard posts back (waba_id, phone_number_id).
const SESSION_INFO_VERSION: &str = "3";

/// A link on a page, e.g. "Try again".
pub struct Action {
    pub label: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "notice.html")]
struct Notice<'a> {
    nonce: &'a str,
    title: &'a str,
    message: &'a str,
    steps: &'a [String],
    action: Option<Action>,
}

#[derive(Template)]
#[template(path = "failed.html")]
struct Failed<'a> {
    nonce: &'a str,
    title: &'a str,
    message: &'a str,
    missing: &'a [String],
    meta: Option<&'a MetaError>,
    steps: &'a [String],
}

#[derive(Template)]
#[template(path = "connected.html")]
struct Connected<'a> {
    nonce: &'a str,
    name: &'a str,
    account_id: &'a str,
    api_key: Option<&'a str>,
    waba_ids: &'a [String],
    business_account_id: Option<&'a String>,
    token_note: &'a str,
    public_url: &'a str,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct Signup<'a> {
    nonce: &'a str,
    state: &'a str,
    action: &'a str,
    config_json: String,
}

/// A page that tells what happened and what to do: not configured, cancelled,
/// a link that no longer works.
pub fn notice(
    status: StatusCode,
    title: &str,
    message: &str,
    steps: &[String],
    action: Option<Action>,
) -> Resp {
    let nonce = new_nonce();
    let page = Notice {
        nonce: &nonce,
        title,
        message,
        steps,
        action,
    };
    html(status, page.render(), &plain_policy(&nonce))
}

/// What a failed connection shows: Meta's error whole, and the guide's fixes.
pub struct Failure {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub missing: Vec<String>,
    pub meta: Option<MetaError>,
    pub steps: Vec<String>,
}

impl Failure {
    /// A failure without Meta's error, missing permissions or steps; add them with `..`.
    pub fn new(status: StatusCode, title: &str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            title: title.into(),
            message: message.into(),
            missing: Vec::new(),
            meta: None,
            steps: Vec::new(),
        }
    }
}

pub fn failed(f: &Failure) -> Resp {
    let nonce = new_nonce();
    let page = Failed {
        nonce: &nonce,
        title: &f.title,
        message: &f.message,
        missing: &f.missing,
        meta: f.meta.as_ref(),
        steps: &f.steps,
    };
    html(f.status, page.render(), &plain_policy(&nonce))
}

/// What the success page shows; `api_key` only for a new account.
pub struct Success<'a> {
    pub name: &'a str,
    pub account_id: &'a str,
    pub api_key: Option<&'a str>,
    pub waba_ids: &'a [String],
    pub business_account_id: Option<&'a String>,
    pub token_note: &'a str,
    pub public_url: &'a str,
}

pub fn connected(s: &Success<'_>) -> Resp {
    let nonce = new_nonce();
    let page = Connected {
        nonce: &nonce,
        name: s.name,
        account_id: s.account_id,
        api_key: s.api_key,
        waba_ids: s.waba_ids,
        business_account_id: s.business_account_id,
        token_note: s.token_note,
        public_url: s.public_url,
    };
    html(StatusCode::OK, page.render(), &plain_policy(&nonce))
}

/// What the Embedded Signup page needs.
pub struct SignupConfig<'a> {
    pub app_id: &'a str,
    pub config_id: &'a str,
    pub graph_version: &'a str,
    pub state: &'a str,
    /// The callback the page's form posts to.
    pub callback_url: &'a str,
    /// `FB.login`'s `extras.featureType` (coexistence onboarding), or "".
    pub feature_type: &'a str,
}

pub fn signup(c: &SignupConfig<'_>) -> Resp {
    let nonce = new_nonce();
    let page = signup_page(&nonce, c);
    html(
        StatusCode::OK,
        page.render(),
        &signup_policy(&nonce, c.callback_url),
    )
}

/// Values reach the script only through the JSON island (escaped for a script
/// element) and the form through attributes (HTML-escaped by askama): nothing is
/// pasted into JavaScript source.
fn signup_page<'a>(nonce: &'a str, c: &SignupConfig<'a>) -> Signup<'a> {
    let config = json!({
        "appId": c.app_id,
        "configId": c.config_id,
        "graphVersion": c.graph_version,
        "sessionInfoVersion": SESSION_INFO_VERSION,
        "featureType": c.feature_type,
    });
    Signup {
        nonce,
        state: c.state,
        action: c.callback_url,
        config_json: script_json(&config),
    }
}

fn new_nonce() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(18))
}

/// Our own style and nothing else: no script, no frame, no form.
fn plain_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

/// The signup page also runs Meta's SDK, which loads more of itself from its
/// origin, frames facebook.com for the login, and injects its own styles (hence
/// inline styles here; scripts stay nonce-only). The form may post only to our callback.
fn signup_policy(nonce: &str, callback_url: &str) -> String {
    let form_origin = url::Url::parse(callback_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'self'".into());
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}' {FB_SDK_ORIGIN}; style-src 'unsafe-inline'; \
         img-src data: https://*.facebook.com https://*.fbcdn.net; \
         connect-src {FB_SDK_ORIGIN} https://*.facebook.com; frame-src https://*.facebook.com; \
         base-uri 'none'; form-action {form_origin}; frame-ancestors 'none'"
    )
}

fn html(status: StatusCode, rendered: askama::Result<String>, policy: &str) -> Resp {
    let body = match rendered {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            return response::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown",
            );
        }
    };
    let mut resp = response::with_type(status, "text/html; charset=utf-8", body);
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(policy) {
        headers.insert(HeaderName::from_static("content-security-policy"), v);
    }
    response::browser_headers(headers);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "</script><script>alert(\"x\")</script>'<b>&";

    #[test]
    fn hostile_values_stay_data_on_the_signup_page() {
        let c = SignupConfig {
            app_id: HOSTILE,
            config_id: HOSTILE,
            graph_version: "v25.0",
            state: HOSTILE,
            callback_url: "https://gw.example/auth/whatsapp/callback",
            feature_type: "",
        };
        let page = signup_page("N", &c).render().unwrap();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
        // Exactly our three script elements; the hostile ones never opened.
        assert_eq!(page.matches("<script").count(), 3, "{page}");
        assert!(page.contains("value=\"&#60;/script&#62;&#60;script&#62;alert(&#34;x&#34;)"));
        assert!(page.contains(r#""configId":"\u003c/script\u003e\u003cscript\u003ealert(\"x\")"#));
    }

    #[test]
    fn the_signup_script_cannot_end_its_own_element() {
        assert!(!SIGNUP_JS.contains("</"));
        assert!(!CSS.contains("</"));
    }

    #[test]
    fn the_signup_policy_lets_the_form_post_only_to_our_origin() {
        let p = signup_policy("abc", "https://gw.example:8443/x/auth/whatsapp/callback");
        assert!(p.contains("form-action https://gw.example:8443;"));
        assert!(p.contains("script-src 'nonce-abc' https://connect.facebook.net;"));
        assert!(p.contains("frame-ancestors 'none'"));
    }
}
