//! The customer's side of connecting (connector guide §1.3, §2.1): `/connect`,
//! the Embedded Signup page and the OAuth callback. Every answer is a page for a
//! person in a browser; none of them redirects anywhere but to Meta or to us.
//! What happens is `usecase::connect`'s; this module draws it.

use hyper::{Method, StatusCode};

use crate::domain::accounts::MISSING_SCOPES_FIXES;
use crate::domain::connect::Unusable;
use crate::domain::time::rfc3339_secs;
use crate::error::Error;
use crate::http::body::read_form;
use crate::http::guards::{is_admin, is_admin_browser, Public};
use crate::http::pages::{self, Action, Failure, SignupConfig, Success};
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::meta::{hint_for, MetaError};
use crate::store::Connected;
use crate::usecase::connect::{self, Ended, Returned, Stop};

/// Query or form parameters; the first of a repeated name counts.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// `GET /connect?link=`: a usable connect link (or the admin: the admin token,
/// or a browser logged into the backoffice) starts a login.
pub async fn connect(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let params = Fields(req.query_pairs());
    let admin = || is_admin_browser(state, &req.parts) || is_admin(state, &req.parts).is_ok();
    match connect::begin(state, params.get("link"), admin).await? {
        Ok(next) => response::redirect(&next),
        Err(stop) => Ok(stopped(stop)),
    }
}

/// `GET /plugins/appmixer/whatsapp/signup?state=&redirect_uri=`: the Embedded
/// Signup page, for a login `/connect` started and nothing else.
pub async fn signup(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let params = Fields(req.query_pairs());
    let callback = connect::callback_url(state);
    let Some(raw) = params.get("state") else {
        return Ok(stopped(Stop::Login(Unusable::Unknown)));
    };
    // Only our own callback: the page must never become a way to send a login code elsewhere.
    if params.get("redirect_uri").is_some_and(|r| r != callback) {
        return Ok(pages::notice(
            StatusCode::BAD_REQUEST,
            "This sign-up link is not valid",
            "It would send your login somewhere other than this gateway, so it was stopped. Open the connect link you were given again.",
            &[],
            None,
        ));
    }
    Ok(match connect::signup(state, raw)? {
        Ok(signup) => pages::signup(&SignupConfig {
            app_id: &signup.app_id,
            config_id: &signup.config_id,
            graph_version: &state.graph_version,
            state: raw,
            callback_url: &callback,
            feature_type: signup.feature_type,
        }),
        Err(stop) => stopped(stop),
    })
}

/// `GET|POST /auth/whatsapp/callback`: Meta's redirect (plain OAuth) or the
/// signup page's form (Embedded Signup).
pub async fn callback(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let params = if req.parts.method == Method::POST {
        Fields(read_form(req.body, &state.form_budget).await?)
    } else {
        Fields(req.query_pairs())
    };
    let Some(raw) = params.get("state") else {
        return Ok(stopped(Stop::Login(Unusable::Unknown)));
    };
    let returned = Returned {
        state: raw,
        code: params.get("code"),
        error: params
            .get("error")
            .map(|e| (e, params.get("error_description"))),
        picked_waba: params.get("waba_id"),
    };
    Ok(match connect::finish(state, returned).await? {
        Ended::Stopped(stop) => stopped(stop),
        Ended::Cancelled { retry } => cancelled(retry),
        Ended::MetaSaid(said) => pages::failed(&Failure {
            steps: hint_for(0, &said).into_iter().map(str::to_string).collect(),
            ..Failure::new(
                StatusCode::BAD_REQUEST,
                "The login did not finish",
                format!("Meta reported: {said}"),
            )
        }),
        Ended::NoCode => pages::failed(&Failure {
            steps: vec!["Open the connect link you were given again and finish the login.".into()],
            ..Failure::new(
                StatusCode::BAD_REQUEST,
                "Meta sent no login code",
                "The login came back without an authorization code, so there is nothing to connect.",
            )
        }),
        Ended::NoWaba(discovery_error) => pages::failed(&no_waba(discovery_error)),
        Ended::Failed(e) => pages::failed(&failure_from(&e)),
        Ended::Connected(connected, api_key) => success(state, &connected, &api_key.0),
    })
}

fn cancelled(retry: Option<String>) -> Resp {
    pages::notice(
        StatusCode::OK,
        "Login cancelled",
        "The Facebook login was cancelled before it finished, so nothing was connected and your connect link still works.",
        &["To connect, start again and approve the WhatsApp permissions; with Embedded Signup, pick or create your WhatsApp Business Account and phone number in Meta's wizard.".into()],
        retry.map(|href| Action {
            label: "Try again".into(),
            href,
        }),
    )
}

fn stopped(stop: Stop) -> Resp {
    match stop {
        Stop::Link(why) => link_refused(why),
        Stop::Login(why) => login_refused(why),
        Stop::NotConfigured { embedded_signup } => not_configured(embedded_signup),
    }
}

fn success(state: &AppState, connected: &Connected, api_key: &str) -> Resp {
    let account = &connected.account;
    let token_note = match account.token_expires_at {
        None => "Meta's token for this connection does not expire.".to_string(),
        Some(at) => format!(
            "Meta's token is valid until {}; wabridge refreshes it well before then. If the account ever shows “needs_reconnect”, ask for a new connect link.",
            rfc3339_secs(at)
        ),
    };
    pages::connected(&Success {
        name: &account.name,
        account_id: &account.id,
        api_key: connected.created.then_some(api_key),
        waba_ids: &account.waba_ids,
        business_account_id: account.business_account_id.as_ref(),
        token_note: &token_note,
        public_url: &state.public_url,
    })
}

/// The page for an error on the way: Meta's own words and the guide's advice.
fn failure_from(err: &Error) -> Failure {
    let hints = || crate::http::response::hint(err).into_iter().collect();
    match err {
        Error::MissingScopes(missing) => Failure {
            missing: missing.clone(),
            steps: MISSING_SCOPES_FIXES.map(String::from).to_vec(),
            ..Failure::new(
                StatusCode::BAD_REQUEST,
                "WhatsApp permissions missing",
                "The connected Facebook account did not grant the WhatsApp permissions, so nothing \
                 was connected: a token without them could not send or receive a single message.",
            )
        },
        // Meta's refusal is 422 (429 when it throttles), only Meta failing is 502,
        // as everywhere else.
        Error::Meta(e) => Failure {
            meta: Some(e.clone()),
            steps: hints(),
            ..Failure::new(
                response::status_of(err),
                "Meta refused the login",
                "Meta answered with an error while the login was being finished.",
            )
        },
        Error::Conflict(m) => Failure::new(
            StatusCode::GONE,
            "This connect link can no longer be used",
            m.as_str(),
        ),
        Error::MetaUnreachable(_) => Failure {
            steps: hints(),
            ..Failure::new(
                StatusCode::BAD_GATEWAY,
                "Meta could not be reached",
                err.to_string(),
            )
        },
        Error::Invalid { message, .. } => Failure::new(
            StatusCode::BAD_GATEWAY,
            "Meta issued an unusable token",
            message.as_str(),
        ),
        _ => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The gateway could not finish the connection",
            err.to_string(),
        ),
    }
}

fn no_waba(discovery_error: Option<MetaError>) -> Failure {
    let steps = [
        "With Meta's signup wizard: pick, or create, a WhatsApp Business Account and phone number before finishing.",
        "With the consent screen: select your WhatsApp Business Account when the asset picker appears. If it says “No WhatsApp Business Accounts available”, your Facebook account does not own or co-manage one: ask its owner for access.",
        "No WABA yet? Create one in Meta Business Manager → Settings → Accounts → WhatsApp Accounts → Add, add and verify a phone number, then open the connect link again.",
        "The administrator can also connect the account with a System User token and its WABA IDs (POST /api/v1/admin/accounts).",
    ];
    Failure {
        meta: discovery_error,
        steps: steps.map(String::from).to_vec(),
        ..Failure::new(
            StatusCode::BAD_REQUEST,
            "No WhatsApp Business Account found",
            "The login worked and carries the WhatsApp permissions, but Meta shows no WhatsApp \
             Business Account (WABA) for it, so there is nothing to connect.",
        )
    }
}

fn link_refused(why: Unusable) -> Resp {
    let (status, title, message) = match why {
        Unusable::Unknown => (
            StatusCode::FORBIDDEN,
            "This connect link is not valid",
            "Check that you opened the whole link. A link the gateway's administrator revoked no longer works either: ask them for a new one.",
        ),
        Unusable::Expired => (
            StatusCode::GONE,
            "This connect link has expired",
            "Connect links work for a limited time. Ask the gateway's administrator for a new one.",
        ),
        Unusable::Used => (
            StatusCode::GONE,
            "This connect link was already used",
            "It has connected a WhatsApp account already, and works only once. To connect another account, or to reconnect, ask the gateway's administrator for a new link.",
        ),
    };
    pages::notice(status, title, message, &[], None)
}

fn login_refused(why: Unusable) -> Resp {
    let (status, title, message) = match why {
        Unusable::Expired => (
            StatusCode::GONE,
            "This login took too long",
            "The login expired before it came back, so nothing was connected. Open the connect link you were given again to start a fresh one.",
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "This login is not valid",
            "It does not match a login this gateway started, or it was already finished, so nothing was connected. Open the connect link you were given again to start a fresh one.",
        ),
    };
    pages::notice(status, title, message, &[], None)
}

fn not_configured(embedded_signup: bool) -> Resp {
    let title = if embedded_signup {
        "WhatsApp Embedded Signup is not configured"
    } else {
        "WhatsApp connections are not configured"
    };
    pages::notice(
        StatusCode::SERVICE_UNAVAILABLE,
        title,
        "The gateway's administrator has not finished connecting it to the Meta App yet. Please let them know and try again later.",
        &["Administrator: set clientId and clientSecret (the Meta App's App ID and App Secret), and esConfigId for Embedded Signup, with PUT /api/v1/admin/config (connector guide §1.4).".into()],
        None,
    )
}
