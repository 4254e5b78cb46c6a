//! The backoffice's CSS and JS, compiled into the binary: nothing is fetched at
//! run time, and the files always match the pages.

use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use hyper::StatusCode;

use crate::domain::ids::token_hash;
use crate::http::response::{self, Resp};

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../static/admin/admin.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../static/admin/admin.js"),
    ),
];

pub fn serve(name: &str, headers: &HeaderMap) -> Resp {
    let Some((_, content_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return response::text(StatusCode::NOT_FOUND, "no such file");
    };
    // Browsers revalidate (no-cache) and get a 304 while the binary is the same.
    let etag = format!("\"{}\"", &token_hash(&String::from_utf8_lossy(body))[..16]);
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut resp = if fresh {
        response::empty(StatusCode::NOT_MODIFIED)
    } else {
        response::with_type(StatusCode::OK, content_type, *body)
    };
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    resp
}
