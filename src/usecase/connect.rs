//! Connecting a customer's WhatsApp account (connector guide §1.3, §2.1):
//! connect links, starting a login (Embedded Signup or plain OAuth), and
//! finishing it with Meta when it comes back. Each step answers what
//! happened; the front-end decides how to show it.

use super::{access, blocking, Services};
use crate::domain::accounts::grant_from;
use crate::domain::coexistence;
use crate::domain::connect::{
    check_link, connect_url, default_waba, expiry, oauth_dialog_url, signup_url, usable_login,
    Unusable,
};
use crate::domain::ids::{new_token, token_hash};
use crate::domain::model::{ConnectFlow, ConnectLink, PendingLogin, Settings};
use crate::domain::paths;
use crate::domain::time::{now_ms, now_secs};
use crate::error::Error;
use crate::meta::{discovery, AccountToken, Graph, MetaError};
use crate::store::Connected;

use super::accounts::{new_account, ApiKey, Granted};

/// A connect link just made: its URL holds the secret, shown only once.
pub struct NewLink {
    pub id: String,
    pub url: String,
    pub expires_at: u64,
}

/// A connect link lasting `expires_in_hours`; with `coexistence`, its
/// Embedded Signup offers to connect a WhatsApp Business app number.
pub async fn mint_link(
    app: &Services,
    expires_in_hours: Option<u64>,
    coexistence: bool,
) -> Result<NewLink, Error> {
    let minted = app
        .store
        .mint_connect_link(now_ms(), expires_in_hours, coexistence)
        .await?;
    Ok(NewLink {
        id: minted.link.id,
        url: connect_url(&app.public_url, &minted.secret),
        expires_at: minted.link.expires_at,
    })
}

/// The links a customer could still use, newest first.
pub fn open_links(app: &Services) -> Result<Vec<ConnectLink>, Error> {
    app.store.open_connect_links(now_ms())
}

/// A link sent to the wrong person, or no longer wanted, stops working (a
/// login already started through it fails at the callback).
pub async fn revoke_link(app: &Services, id: &str) -> Result<(), Error> {
    if !app
        .store
        .revoke_connect_link(id.to_string(), now_ms())
        .await?
    {
        return Err(Error::NotFound("open connect link"));
    }
    tracing::info!(link = %id, "connect link revoked");
    Ok(())
}

/// Why a step of the login cannot go on, as the customer must be told.
#[derive(Debug)]
pub enum Stop {
    /// The connect link is unknown, expired or spent.
    Link(Unusable),
    /// The login's `state` is unknown, expired or spent.
    Login(Unusable),
    /// The admin has not set the Meta App (or, for the signup page, Embedded Signup).
    NotConfigured { embedded_signup: bool },
}

/// `/connect`: a usable link (or the admin, without one: `admin` is asked
/// only then) starts a login: Embedded Signup when `esConfigId` is set, plain
/// OAuth otherwise. Returns where the browser goes next.
pub async fn begin(
    app: &Services,
    link: Option<&str>,
    admin: impl FnOnce() -> bool,
) -> Result<Result<String, Stop>, Error> {
    let (link_hash, coexistence) = match link {
        Some(link) => {
            let hash = token_hash(link);
            let found = app.store.connect_link(&hash)?;
            if let Err(why) = check_link(found.as_ref(), now_ms()) {
                return Ok(Err(Stop::Link(why)));
            }
            (Some(hash), found.is_some_and(|l| l.coexistence))
        }
        None if admin() => (None, false),
        None => return Ok(Err(Stop::Link(Unusable::Unknown))),
    };
    let settings = app.settings();
    if !settings.is_configured() {
        return Ok(Err(Stop::NotConfigured {
            embedded_signup: false,
        }));
    }
    let flow = if settings.es_config_id.is_empty() {
        // Coexistence is an option of Meta's signup wizard: plain OAuth has none.
        if coexistence {
            return Ok(Err(Stop::NotConfigured {
                embedded_signup: true,
            }));
        }
        ConnectFlow::OAuth
    } else {
        ConnectFlow::EmbeddedSignup
    };
    start_login(app, &settings, link_hash, flow, coexistence)
        .await
        .map(Ok)
}

/// Stores a new login under a fresh 256-bit `state` and returns where the browser goes next.
async fn start_login(
    app: &Services,
    settings: &Settings,
    link_hash: Option<String>,
    flow: ConnectFlow,
    coexistence: bool,
) -> Result<String, Error> {
    let raw = new_token("st");
    let login = PendingLogin {
        flow,
        link_hash,
        expires_at: expiry(now_ms(), app.connect_state_ttl),
        coexistence,
    };
    app.store
        .insert_pending_login(token_hash(&raw), login)
        .await?;
    let callback = callback_url(app);
    Ok(match flow {
        ConnectFlow::EmbeddedSignup => signup_url(
            &paths::public(&app.public_url, paths::SIGNUP),
            &raw,
            &callback,
        ),
        ConnectFlow::OAuth => oauth_dialog_url(
            &app.facebook_url,
            &app.graph_version,
            &settings.client_id,
            &callback,
            &raw,
        ),
    })
}

pub fn callback_url(app: &Services) -> String {
    paths::public(&app.public_url, paths::CALLBACK)
}

/// What the Embedded Signup page needs to draw Meta's wizard.
pub struct Signup {
    pub app_id: String,
    pub config_id: String,
    /// `extras.featureType` of `FB.login`: Meta's wizard's variant, empty
    /// for the ordinary one.
    pub feature_type: &'static str,
}

/// The signup page is for a login `/connect` started as Embedded Signup, and nothing else.
pub fn signup(app: &Services, state: &str) -> Result<Result<Signup, Stop>, Error> {
    let settings = app.settings();
    if !settings.is_configured() || settings.es_config_id.is_empty() {
        return Ok(Err(Stop::NotConfigured {
            embedded_signup: true,
        }));
    }
    match usable_login(app.store.pending_login(&token_hash(state))?, now_ms()) {
        Ok(login) if login.flow == ConnectFlow::EmbeddedSignup => Ok(Ok(Signup {
            app_id: settings.client_id,
            config_id: settings.es_config_id,
            feature_type: if login.coexistence {
                coexistence::FEATURE_TYPE
            } else {
                ""
            },
        })),
        Ok(_) => Ok(Err(Stop::Login(Unusable::Unknown))),
        Err(why) => Ok(Err(Stop::Login(why))),
    }
}

/// What came back to the callback.
pub struct Returned<'a> {
    pub state: &'a str,
    pub code: Option<&'a str>,
    /// Meta's `error` and `error_description`, when the login did not finish.
    pub error: Option<(&'a str, Option<&'a str>)>,
    /// The WABA the customer picked in the signup wizard.
    pub picked_waba: Option<&'a str>,
}

/// How a login ended.
pub enum Ended {
    Stopped(Stop),
    /// The customer cancelled; `retry` starts a fresh login while the link still works.
    Cancelled {
        retry: Option<String>,
    },
    /// Meta reported another error.
    MetaSaid(String),
    NoCode,
    /// Meta shows no WABA for the login (and why `/me/businesses` failed, if it did).
    NoWaba(Option<MetaError>),
    /// Meta or the store failed while finishing the login.
    Failed(Error),
    Connected(Box<Connected>, ApiKey),
}

/// The callback: the `state` is spent before anything else, then the login is
/// finished with Meta and the account stored.
pub async fn finish(app: &Services, returned: Returned<'_>) -> Result<Ended, Error> {
    let taken = app
        .store
        .take_pending_login(token_hash(returned.state))
        .await?;
    let login = match usable_login(taken, now_ms()) {
        Ok(login) => login,
        Err(why) => return Ok(Ended::Stopped(Stop::Login(why))),
    };
    if let Some((error, description)) = returned.error {
        return cancelled(app, login, error, description).await;
    }
    let Some(code) = returned.code else {
        return Ok(Ended::NoCode);
    };
    if let Some(hash) = &login.link_hash {
        if let Err(why) = check_link(app.store.connect_link(hash)?.as_ref(), now_ms()) {
            return Ok(Ended::Stopped(Stop::Link(why)));
        }
    }
    let settings = app.settings();
    if !settings.is_configured() {
        return Ok(Ended::Stopped(Stop::NotConfigured {
            embedded_signup: false,
        }));
    }
    let picked = returned.picked_waba.map(str::to_string);
    Ok(connect(app, &settings, login, code.to_string(), picked).await)
}

/// Meta's `error=access_denied` (or the signup window closed) is a cancel,
/// with a fresh login to try again while the link still works.
async fn cancelled(
    app: &Services,
    login: PendingLogin,
    error: &str,
    description: Option<&str>,
) -> Result<Ended, Error> {
    if error != "access_denied" {
        return Ok(Ended::MetaSaid(description.unwrap_or(error).to_string()));
    }
    let settings = app.settings();
    let link_ok = match &login.link_hash {
        Some(hash) => check_link(app.store.connect_link(hash)?.as_ref(), now_ms()).is_ok(),
        None => true,
    };
    let retry = if link_ok && settings.is_configured() {
        Some(
            start_login(
                app,
                &settings,
                login.link_hash,
                login.flow,
                login.coexistence,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(Ended::Cancelled { retry })
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

async fn connect(
    app: &Services,
    settings: &Settings,
    login: PendingLogin,
    code: String,
    picked_waba: Option<String>,
) -> Ended {
    let graph = app.graph.clone();
    let meta_app = settings.clone();
    // Plain OAuth codes are bound to the redirect_uri of the dialog; the JS SDK's are not.
    let redirect_uri = (login.flow == ConnectFlow::OAuth).then(|| callback_url(app));
    let meta = match blocking(move || meta_login(&graph, &meta_app, &code, redirect_uri.as_deref()))
        .await
    {
        Ok(meta) => meta,
        Err(e) => return Ended::Failed(e),
    };
    if meta.waba_ids.is_empty() {
        return Ended::NoWaba(meta.discovery_error);
    }
    let now = now_ms();
    let granted = Granted {
        name: meta.name,
        business_account_id: default_waba(&meta.waba_ids, picked_waba.as_deref()),
        waba_ids: meta.waba_ids,
        access_token: meta.token,
        token_expires_at: meta.expires_at,
        meta_user_id: meta.user_id,
    };
    let (fresh, api_key) = new_account(granted, now);
    match app
        .store
        .save_connection(login.link_hash, fresh, meta.owners, now)
        .await
    {
        Ok(connected) => {
            tracing::info!(account = %connected.account.id, created = connected.created, wabas = connected.account.waba_ids.len(), "account connected through login");
            if login.coexistence {
                learn_numbers(app, &connected).await;
            }
            Ended::Connected(Box::new(connected), api_key)
        }
        Err(e) => Ended::Failed(e),
    }
}

/// After a coexistence login, the WABAs' numbers are listed once, so the
/// number that stays in the WhatsApp Business app is known (and sends at
/// 20 a second) from the first send on. The account is connected whatever
/// Meta answers: a failure only leaves it to the first listing.
async fn learn_numbers(app: &Services, connected: &Connected) {
    for waba in &connected.account.waba_ids {
        if let Err(e) = access::phone_numbers(app, &connected.account, waba).await {
            tracing::warn!(account = %connected.account.id, waba = %waba, error = %e, "could not list the numbers of a coexistence login's WABA");
        }
    }
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
                .map(|s| now_secs().saturating_add(s))
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
