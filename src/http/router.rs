//! Finding a request's route in the table (`routes::ROUTES`), answering what
//! is not there (`404`, `405` with `Allow`), and one log line per request.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use hyper::{Method, Request, StatusCode};
use percent_encoding::percent_decode_str;

use super::pages;
use super::request::{Body, Params, Req};
use super::response::{self, Resp};
use super::routes::{backoffice, Audience, Route, ROUTES};
use super::AppState;
use crate::error::Error;
use crate::metrics::Metrics;

/// The routes of one path, by method.
struct Path {
    routes: Vec<&'static Route>,
    /// The parameters' names in the pattern, in order.
    names: Vec<&'static str>,
}

/// Builds the table now rather than at the first request: a pattern matchit
/// refuses stops the start, not a request.
pub fn check_routes() {
    LazyLock::force(&TABLE);
}

static TABLE: LazyLock<matchit::Router<Path>> = LazyLock::new(|| {
    let mut paths: Vec<(&str, Path)> = Vec::new();
    for route in ROUTES {
        match paths.iter_mut().find(|(p, _)| *p == route.path) {
            Some((_, path)) => path.routes.push(route),
            None => paths.push((
                route.path,
                Path {
                    routes: vec![route],
                    names: names_in(route.path),
                },
            )),
        }
    }
    let mut table = matchit::Router::new();
    for (pattern, path) in paths {
        // The table is ours and fixed: a pattern matchit refuses is a bug its tests show.
        table
            .insert(pattern, path)
            .unwrap_or_else(|e| panic!("route {pattern}: {e}"));
    }
    table
});

fn names_in(pattern: &'static str) -> Vec<&'static str> {
    pattern
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// What a request asks for.
pub enum Resolved {
    Found(&'static Route, Params),
    /// The path exists, with other methods: for whom it is, and the `Allow` value.
    WrongMethod(Audience, String),
    NotFound,
}

/// `/admin/` is `/admin`, as `//api/v1/me` is `/api/v1/me`.
fn normalize(path: &str) -> Cow<'_, str> {
    let trimmed = path.trim_matches('/');
    if trimmed.len() + 1 == path.len() && path.starts_with('/') {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("/{trimmed}"))
    }
}

pub fn resolve(method: &Method, path: &str) -> Resolved {
    let path = normalize(path);
    let Ok(matched) = TABLE.at(&path) else {
        return Resolved::NotFound;
    };
    let entry = matched.value;
    let Some(route) = entry.routes.iter().find(|r| r.method == method) else {
        let allow: Vec<&str> = entry.routes.iter().map(|r| r.method.as_str()).collect();
        return Resolved::WrongMethod(entry.routes[0].audience, allow.join(", "));
    };
    let params = entry
        .names
        .iter()
        .map(|name| {
            let raw = matched.params.get(name).unwrap_or_default();
            (
                *name,
                percent_decode_str(raw).decode_utf8_lossy().into_owned(),
            )
        })
        .collect();
    Resolved::Found(route, Params::new(params))
}

/// Whether a path is the backoffice's, whose misses are its own pages;
/// written with extra slashes too, as `resolve` reads it.
fn in_backoffice(path: &str) -> bool {
    let path = path.trim_matches('/');
    path == "admin" || path.starts_with("admin/")
}

pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    // Only the path is logged: query strings carry tokens (hub.verify_token).
    let path = req.uri().path().to_string();
    let mut resp = match route(&state, req, &method, &path).await {
        Ok(resp) => resp,
        Err(err) => {
            match err {
                Error::Storage { .. } | Error::Internal { .. } => {
                    tracing::error!(error = %err, "request failed")
                }
                Error::BodyTimeout { .. } => {
                    Metrics::add(&state.metrics.request_bodies_timed_out_total, 1)
                }
                Error::Busy { .. } => Metrics::add(&state.metrics.requests_busy_total, 1),
                _ => {}
            }
            response::error(&err)
        }
    };
    // Every answer under /admin, however the path was written.
    if in_backoffice(&path) {
        backoffice::harden(resp.headers_mut());
    }
    tracing::info!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        ms = %format_args!("{:.2}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    resp
}

async fn route(
    state: &AppState,
    req: Request<Body>,
    method: &Method,
    path: &str,
) -> Result<Resp, Error> {
    match resolve(method, path) {
        Resolved::Found(route, params) => (route.handler)(state, Req::new(req, params)).await,
        Resolved::WrongMethod(audience, allow) => {
            let mut resp = wrong_method(audience, method, path);
            // RFC 9110: a 405 names the methods the resource does take.
            if let Ok(value) = hyper::header::HeaderValue::from_str(&allow) {
                resp.headers_mut().insert(hyper::header::ALLOW, value);
            }
            Ok(resp)
        }
        // The backoffice answers its own misses: the login for a visitor, a page
        // in its layout for the admin.
        Resolved::NotFound if in_backoffice(path) => {
            Ok(backoffice::unknown(state, Req::new(req, Params::default())))
        }
        Resolved::NotFound => Ok(response::json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": {"code": "not_found", "message": format!("no route for {method} {path}")}}),
        )),
    }
}

fn wrong_method(audience: Audience, method: &Method, path: &str) -> Resp {
    match audience {
        Audience::Browser if in_backoffice(path) => backoffice::method_not_allowed(),
        Audience::Browser => pages::notice(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not here",
            "This address is a page for your browser; open it as a link.",
            &[],
            None,
        ),
        Audience::Api => response::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": {"code": "method_not_allowed", "message": format!("{path} does not take {method}; see /api/openapi.json")}}),
        ),
    }
}

#[cfg(test)]
mod tests;
