//! Logging in with the admin token or the admin password, and out.

use askama::Template;
use hyper::StatusCode;

use super::{html, open_form, redirect, views, Form, FORM_LIMIT, HOME, LOGIN};
use crate::domain::ids::{constant_time_eq, token_hash};
use crate::domain::time::now_ms;
use crate::error::Error;
use crate::http::body::read_budgeted;
use crate::http::guards::Public;
use crate::http::request::Req;
use crate::http::response::Resp;
use crate::http::web::Web;
use crate::http::AppState;
use crate::metrics::Metrics;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    error: &'a str,
}

/// The login form, in an anonymous session so that it carries a CSRF token.
pub async fn page(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let now = now_ms();
    let web = Web::of(state, &req.parts, now, true);
    if web.session.as_ref().is_some_and(|s| s.admin) {
        return Ok(redirect(HOME));
    }
    Ok(form(state, &web, now, StatusCode::OK, ""))
}

fn form(state: &AppState, web: &Web, now: u64, status: StatusCode, error: &str) -> Resp {
    let session = match &web.session {
        Some(s) => s.clone(),
        None => state.backoffice.sessions.start_anonymous(now),
    };
    let mut resp = html(
        status,
        &LoginPage {
            csrf: &session.csrf,
            error,
        },
    );
    if web.session.is_none() {
        web.set_session_cookie(&mut resp, &session.id);
    }
    resp
}

pub async fn submit(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let now = now_ms();
    let web = Web::of(state, &req.parts, now, true);
    Ok(checked_login(state, &web, req, now).await)
}

async fn checked_login(state: &AppState, web: &Web, req: Req, now: u64) -> Resp {
    // Counted from here: simultaneous guesses cannot all be checked.
    let throttle = &state.backoffice.throttle;
    let attempt = match throttle.begin(web.peer, now) {
        Ok(attempt) => attempt,
        Err(secs) => {
            tracing::warn!(client = %web.peer, "backoffice login refused: too many failures");
            return form(
                state,
                web,
                now,
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "Too many failed logins from your address. Try again in {} min (at most {} failures per {} min).",
                    secs.div_ceil(60),
                    throttle.max_failures,
                    throttle.window.as_secs() / 60
                ),
            );
        }
    };
    let Some(anon) = web.session.clone() else {
        return form(
            state,
            web,
            now,
            StatusCode::FORBIDDEN,
            "The login page had expired. Please try again.",
        );
    };
    let fields = match read_budgeted(req.body, FORM_LIMIT, &state.form_budget).await {
        Ok(bytes) => Form::parse(&bytes),
        Err(e) => return views::notice(StatusCode::BAD_REQUEST, "Form refused", &e.to_string()),
    };
    if let Err(why) = web.check_csrf(&anon, fields.get("csrf")) {
        return views::csrf_refused(why);
    }
    match check_credential(state, fields.get("secret")).await {
        Ok(Verdict::Valid) => attempt.succeeded(),
        Err(e) => {
            attempt.withdrawn();
            tracing::error!(client = %web.peer, error = %e, "backoffice login not checked: the password could not be read");
            return form(
                state,
                web,
                now,
                StatusCode::SERVICE_UNAVAILABLE,
                "wabridge could not read its database to check the password; the server log has the details.",
            );
        }
        Ok(Verdict::Invalid) => {
            attempt.failed(now);
            tracing::warn!(client = %web.peer, "backoffice login failed");
            return form(
                state,
                web,
                now,
                StatusCode::UNAUTHORIZED,
                "That is neither the admin token nor the admin password.",
            );
        }
        Ok(Verdict::Busy) => {
            attempt.withdrawn();
            Metrics::add(&state.metrics.requests_busy_total, 1);
            tracing::warn!(client = %web.peer, "backoffice login not checked: every password check is taken");
            let mut resp = form(
                state,
                web,
                now,
                StatusCode::SERVICE_UNAVAILABLE,
                "Many logins are being checked right now. Please try again in a few seconds.",
            );
            resp.headers_mut()
                .insert("retry-after", hyper::header::HeaderValue::from_static("5"));
            return resp;
        }
    }
    let session = state.backoffice.sessions.login(Some(&anon.id), now);
    tracing::info!(client = %web.peer, "backoffice login");
    let mut resp = redirect(HOME);
    web.set_session_cookie(&mut resp, &session.id);
    resp
}

/// What a login's secret turned out to be.
pub(super) enum Verdict {
    Valid,
    Invalid,
    /// The password checks' queue was full: not checked at all.
    Busy,
}

/// The admin token (compared by hash, in constant time) or the Argon2id
/// password, checked on the capped password-check threads. Also what allows
/// setting a new password.
pub(super) async fn check_credential(state: &AppState, secret: &str) -> Result<Verdict, Error> {
    if secret.trim().is_empty() {
        return Ok(Verdict::Invalid);
    }
    if constant_time_eq(
        token_hash(secret.trim()).as_bytes(),
        state.admin_token_hash.as_bytes(),
    ) {
        return Ok(Verdict::Valid);
    }
    let Some(phc) = state.store.admin_password_hash()? else {
        return Ok(Verdict::Invalid);
    };
    Ok(
        match state
            .backoffice
            .password_checks
            .verify(secret.to_string(), phc)
            .await
        {
            Some(true) => Verdict::Valid,
            Some(false) => Verdict::Invalid,
            None => Verdict::Busy,
        },
    )
}

pub async fn logout(state: &AppState, _: Public, req: Req) -> Result<Resp, Error> {
    let (cx, _) = match open_form(state, req).await {
        Ok(opened) => opened,
        Err(refused) => return Ok(*refused),
    };
    state.backoffice.sessions.end(&cx.session.id);
    let mut resp = redirect(LOGIN);
    cx.web.clear_session_cookie(&mut resp);
    Ok(resp)
}
