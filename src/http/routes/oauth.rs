//! The customer's side of connecting (connector guide §1.3, §2.1): `/connect`,
//! the Embedded Signup page and the OAuth callback. Every answer is a page for a
//! person in a browser; none of them redirects anywhere but to Meta or to us.

use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, Request, StatusCode};

use super::admin::{blocking, CALLBACK_PATH};
use super::backoffice;
use crate::domain::accounts::{grant_from, MISSING_SCOPES_FIXES};
use crate::domain::connect::{
    check_link, default_waba, expiry, oauth_dialog_url, signup_url, usable_login, Unusable,
};
use crate::domain::ids::{new_id, new_token, token_hash};
use crate::domain::model::{Account, AccountStatus, ConnectFlow, PendingLogin, Settings};
use crate::domain::time::{now_ms, now_secs, rfc3339_secs};
use crate::error::Error;
use crate::http::auth::require_admin;
use crate::http::body::read_form;
use crate::http::pages::{self, Action, Failure, SignupConfig, Success};
use crate::http::query::query_pairs;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::meta::{discovery, hint_for, AccountToken, Graph, MetaError};
use crate::store::Connected;

pub const SIGNUP_PATH: &str = "/plugins/appmixer/whatsapp/signup";

/// Query or form parameters; the first of a repeated name counts.
struct Params(Vec<(String, String)>);

impl Params {
    fn of_query(parts: &Parts) -> Params {
        Params(query_pairs(&parts.uri))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

fn callback_url(state: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", state.public_url)
}

fn configured(s: &Settings) -> bool {
    !s.client_id.is_empty() && !s.client_secret.is_empty()
}

/// `GET /connect?link=`: a usable connect link (or the admin: the admin token,
/// or a browser logged into the backoffice) starts a login: Embedded Signup when
/// `esConfigId` is set, plain OAuth otherwise.
pub async fn connect(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let admin_session = backoffice::admin_session(state, &req, now_ms());
    let (parts, _) = req.into_parts();
    let link_hash = match Params::of_query(&parts).get("link") {
        Some(link) => {
            let hash = token_hash(link);
            if let Err(why) = check_link(state.store.connect_link(&hash)?.as_ref(), now_ms()) {
                return Ok(link_refused(why));
            }
            Some(hash)
        }
        None if admin_session || require_admin(state, &parts).is_ok() => None,
        None => return Ok(link_refused(Unusable::Unknown)),
    };
    let settings = state.settings();
    if !configured(&settings) {
        return Ok(not_configured(false));
    }
    let flow = if settings.es_config_id.is_empty() {
        ConnectFlow::OAuth
    } else {
        ConnectFlow::EmbeddedSignup
    };
    let url = start_login(state, &settings, link_hash, flow).await?;
    response::redirect(&url)
}

/// Stores a new login under a fresh 256-bit `state` and returns where the browser goes next.
async fn start_login(
    state: &AppState,
    settings: &Settings,
    link_hash: Option<String>,
    flow: ConnectFlow,
) -> Result<String, Error> {
    let raw = new_token("st");
    let login = PendingLogin {
        flow,
        link_hash,
        expires_at: expiry(now_ms(), state.connect_state_ttl),
    };
    state
        .store
        .insert_pending_login(token_hash(&raw), login)
        .await?;
    let callback = callback_url(state);
    Ok(match flow {
        ConnectFlow::EmbeddedSignup => signup_url(
            &format!("{}{SIGNUP_PATH}", state.public_url),
            &raw,
            &callback,
        ),
        ConnectFlow::OAuth => oauth_dialog_url(
            &state.facebook_url,
            &state.graph_version,
            &settings.client_id,
            &callback,
            &raw,
        ),
    })
}

/// `GET /plugins/appmixer/whatsapp/signup?state=&redirect_uri=`: the Embedded
/// Signup page, for a login `/connect` started and nothing else.
pub fn signup(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let (parts, _) = req.into_parts();
    let params = Params::of_query(&parts);
    let callback = callback_url(state);
    let Some(raw) = params.get("state") else {
        return Ok(login_refused(Unusable::Unknown));
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
    let settings = state.settings();
    if !configured(&settings) || settings.es_config_id.is_empty() {
        return Ok(not_configured(true));
    }
    match usable_login(state.store.pending_login(&token_hash(raw))?, now_ms()) {
        Ok(login) if login.flow == ConnectFlow::EmbeddedSignup => {}
        Ok(_) => return Ok(login_refused(Unusable::Unknown)),
        Err(why) => return Ok(login_refused(why)),
    }
    Ok(pages::signup(&SignupConfig {
        app_id: &settings.client_id,
        config_id: &settings.es_config_id,
        graph_version: &state.graph_version,
        state: raw,
        callback_url: &callback,
    }))
}

/// `GET|POST /auth/whatsapp/callback`: Meta's redirect (plain OAuth) or the
/// signup page's form (Embedded Signup). The `state` is spent before anything else.
pub async fn callback(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    let params = if parts.method == Method::POST {
        Params(read_form(body, &state.form_budget).await?)
    } else {
        Params::of_query(&parts)
    };
    let Some(raw) = params.get("state") else {
        return Ok(login_refused(Unusable::Unknown));
    };
    let taken = state.store.take_pending_login(token_hash(raw)).await?;
    let login = match usable_login(taken, now_ms()) {
        Ok(login) => login,
        Err(why) => return Ok(login_refused(why)),
    };
    if let Some(error) = params.get("error") {
        return login_error(state, login, error, params.get("error_description")).await;
    }
    let Some(code) = params.get("code") else {
        return Ok(pages::failed(&Failure {
            steps: vec!["Open the connect link you were given again and finish the login.".into()],
            ..Failure::new(
                StatusCode::BAD_REQUEST,
                "Meta sent no login code",
                "The login came back without an authorization code, so there is nothing to connect.",
            )
        }));
    };
    if let Some(hash) = &login.link_hash {
        if let Err(why) = check_link(state.store.connect_link(hash)?.as_ref(), now_ms()) {
            return Ok(link_refused(why));
        }
    }
    let settings = state.settings();
    if !configured(&settings) {
        return Ok(not_configured(false));
    }
    let picked = params.get("waba_id").map(str::to_string);
    match finish_login(state, &settings, login, code.to_string(), picked).await {
        Ok((connected, api_key)) => Ok(success(state, &connected, &api_key)),
        Err(failure) => Ok(pages::failed(&failure)),
    }
}

/// Meta's `error=access_denied` (or the signup window closed): the cancelled page,
/// with a fresh login to try again while the link still works.
async fn login_error(
    state: &AppState,
    login: PendingLogin,
    error: &str,
    description: Option<&str>,
) -> Result<Resp, Error> {
    if error != "access_denied" {
        let said = description.unwrap_or(error);
        return Ok(pages::failed(&Failure {
            steps: hint_for(0, said).into_iter().map(str::to_string).collect(),
            ..Failure::new(
                StatusCode::BAD_REQUEST,
                "The login did not finish",
                format!("Meta reported: {said}"),
            )
        }));
    }
    let settings = state.settings();
    let link_ok = match &login.link_hash {
        Some(hash) => check_link(state.store.connect_link(hash)?.as_ref(), now_ms()).is_ok(),
        None => true,
    };
    let action = if link_ok && configured(&settings) {
        let href = start_login(state, &settings, login.link_hash, login.flow).await?;
        Some(Action {
            label: "Try again".into(),
            href,
        })
    } else {
        None
    };
    Ok(pages::notice(
        StatusCode::OK,
        "Login cancelled",
        "The Facebook login was cancelled before it finished, so nothing was connected and your connect link still works.",
        &["To connect, start again and approve the WhatsApp permissions; with Embedded Signup, pick or create your WhatsApp Business Account and phone number in Meta's wizard.".into()],
        action,
    ))
}

/// What Meta said about the login, gathered on the blocking pool.
struct MetaLogin {
    token: String,
    expires_at: Option<u64>,
    user_id: Option<String>,
    waba_ids: Vec<String>,
    name: Option<String>,
    /// Why `/me/businesses` could not list WABAs, when it was needed and failed.
    discovery_error: Option<MetaError>,
    /// (business portfolio, WABA): where Meta's business-level events go.
    owners: Vec<(String, String)>,
}

async fn finish_login(
    state: &AppState,
    settings: &Settings,
    login: PendingLogin,
    code: String,
    picked_waba: Option<String>,
) -> Result<(Connected, String), Failure> {
    let graph = state.graph.clone();
    let app = settings.clone();
    // Plain OAuth codes are bound to the redirect_uri of the dialog; the JS SDK's are not.
    let redirect_uri = (login.flow == ConnectFlow::OAuth).then(|| callback_url(state));
    let meta = blocking(move || meta_login(&graph, &app, &code, redirect_uri.as_deref()))
        .await
        .map_err(|e| failure_from(&e))?;
    if meta.waba_ids.is_empty() {
        return Err(no_waba(meta.discovery_error));
    }
    let api_key = new_token("wbk");
    let now = now_ms();
    let fresh = Account {
        id: new_id("acc"),
        name: meta.name.unwrap_or_else(|| "WhatsApp account".into()),
        business_account_id: default_waba(&meta.waba_ids, picked_waba.as_deref()),
        waba_ids: meta.waba_ids,
        access_token: meta.token,
        token_expires_at: meta.expires_at,
        meta_user_id: meta.user_id,
        api_key_hash: token_hash(&api_key),
        created_at: now,
        status: AccountStatus::Ok,
        status_reason: None,
        token_checked_at: Some(now),
    };
    let connected = state
        .store
        .save_connection(login.link_hash, fresh, meta.owners, now)
        .await
        .map_err(|e| failure_from(&e))?;
    tracing::info!(account = %connected.account.id, created = connected.created, wabas = connected.account.waba_ids.len(), "account connected through login");
    Ok((connected, api_key))
}

/// Code → token → `/debug_token` scope check → long-lived token → WABAs → name.
fn meta_login(
    graph: &Graph,
    app: &Settings,
    code: &str,
    redirect_uri: Option<&str>,
) -> Result<MetaLogin, Error> {
    let issued = graph.exchange_code(&app.client_id, &app.client_secret, code, redirect_uri)?;
    let debug = graph.debug_token(&issued.access_token, &app.client_id, &app.client_secret)?;
    let grant = grant_from(&debug, &[])?;
    let (token, expires_at) = long_lived(graph, app, issued.access_token, grant.expires_at)?;
    let as_account = AccountToken {
        token: &token,
        app_secret: Some(&app.client_secret),
    };
    let (waba_ids, mut owners, discovery_error) = if grant.waba_ids.is_empty() {
        discovery::businesses_wabas(graph, &as_account)
    } else {
        (grant.waba_ids, Vec::new(), None)
    };
    owners.extend(discovery::owners_of(graph, &as_account, &waba_ids, &owners));
    let name = graph
        .get("me", &as_account, &[("fields", "id,name")])
        .ok()
        .and_then(|me| me.get("name").and_then(|n| n.as_str()).map(str::to_string));
    Ok(MetaLogin {
        token,
        expires_at,
        user_id: grant.user_id,
        waba_ids,
        name,
        discovery_error,
        owners,
    })
}

/// A login's token lasts an hour or two; `fb_exchange_token` makes it last ≈60 days.
/// Tokens that never expire (System User tokens from Embedded Signup) stay as
/// they are, and one that already lasts days is kept if the exchange fails.
fn long_lived(
    graph: &Graph,
    app: &Settings,
    token: String,
    expires_at: Option<u64>,
) -> Result<(String, Option<u64>), Error> {
    let Some(expires_at) = expires_at else {
        return Ok((token, None));
    };
    match graph.exchange_long_lived(&app.client_id, &app.client_secret, &token) {
        Ok(issued) => {
            let at = issued
                .expires_in
                .map(|s| now_secs() + s)
                .unwrap_or(expires_at);
            Ok((issued.access_token, Some(at)))
        }
        Err(e) if expires_at > now_secs() + 24 * 3600 => {
            tracing::warn!(error = %e, "no long-lived token; keeping the issued one, which lasts more than a day");
            Ok((token, Some(expires_at)))
        }
        Err(e) => Err(e),
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
