//! The browser-facing facts of a request: the session cookie, the client's
//! address, and whether a form came from this gateway's own pages.

use std::net::{IpAddr, Ipv4Addr};

use hyper::header::{HeaderValue, COOKIE, HOST, ORIGIN, REFERER, SET_COOKIE};
use hyper::http::request::Parts;

use crate::domain::ids::constant_time_eq;
use crate::http::response::Resp;
use crate::http::server::ConnInfo;
use crate::http::session::SessionInfo;
use crate::http::AppState;

/// With `Secure` the browser also enforces the `__Host-` rules: Secure, Path=/, no Domain.
const SECURE_COOKIE: &str = "__Host-wabridge_admin";
/// Plain HTTP (a test, or a LAN without TLS): browsers refuse `Secure` there.
const PLAIN_COOKIE: &str = "wabridge_admin";

pub struct Web {
    /// The browser reached us over HTTPS (directly, or through the public URL's proxy).
    secure: bool,
    pub peer: IpAddr,
    /// Origins a form may come from: the public URL's and the one the browser used.
    origins: Vec<String>,
    origin: Option<String>,
    pub session: Option<SessionInfo>,
}

impl Web {
    /// `touch`: whether this request counts as the admin's activity (see `Sessions::get`).
    pub fn of(state: &AppState, req: &Parts, now: u64, touch: bool) -> Web {
        let conn = req.extensions.get::<ConnInfo>().copied();
        let tls = conn.is_some_and(|c| c.tls);
        let host = header(req, HOST).map(str::to_ascii_lowercase);
        let public = url::Url::parse(&state.public_url).ok();
        let public_origin = public.as_ref().map(|u| u.origin().ascii_serialization());
        let via_public = public
            .as_ref()
            .is_some_and(|u| u.scheme() == "https" && host.as_deref() == Some(&authority(u)));
        let secure = tls || via_public;
        let mut origins: Vec<String> = public_origin.into_iter().collect();
        if let Some(h) = &host {
            origins.push(format!("{}://{h}", if tls { "https" } else { "http" }));
        }
        let session = cookie(req, if secure { SECURE_COOKIE } else { PLAIN_COOKIE })
            .and_then(|id| state.backoffice.sessions.get(&id, now, touch));
        Web {
            secure,
            peer: conn.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.client),
            origins,
            origin: form_origin(req),
            session,
        }
    }

    /// A form must carry the session's token and come from one of our origins.
    pub fn check_csrf(&self, session: &SessionInfo, token: &str) -> Result<(), &'static str> {
        let Some(origin) = &self.origin else {
            return Err("the browser sent neither Origin nor Referer");
        };
        if !self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return Err("the form was sent from another site");
        }
        if token.is_empty() || !constant_time_eq(token.as_bytes(), session.csrf.as_bytes()) {
            return Err("the form's security token is missing or out of date");
        }
        Ok(())
    }

    /// `Set-Cookie` for a session: HttpOnly, SameSite=Strict, Secure over HTTPS.
    pub fn set_session_cookie(&self, resp: &mut Resp, id: &str) {
        self.put_cookie(resp, id, "");
    }

    pub fn clear_session_cookie(&self, resp: &mut Resp) {
        self.put_cookie(resp, "", "; Max-Age=0");
    }

    fn put_cookie(&self, resp: &mut Resp, value: &str, extra: &str) {
        let (name, secure) = if self.secure {
            (SECURE_COOKIE, "; Secure")
        } else {
            (PLAIN_COOKIE, "")
        };
        let line = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{extra}");
        if let Ok(v) = HeaderValue::from_str(&line) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
}

fn header(req: &Parts, name: hyper::header::HeaderName) -> Option<&str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `host[:port]` as a browser sends it in `Host` for this URL.
fn authority(u: &url::Url) -> String {
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

fn cookie(req: &Parts, name: &str) -> Option<String> {
    req.headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// Origin, or failing that the origin of the Referer.
fn form_origin(req: &Parts) -> Option<String> {
    if let Some(o) = header(req, ORIGIN) {
        return (o != "null").then(|| o.to_string());
    }
    let referer = url::Url::parse(header(req, REFERER)?).ok()?;
    Some(referer.origin().ascii_serialization())
}
