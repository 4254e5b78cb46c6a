//! `POST /api/v1/admin/backup`: a consistent copy of the database while the
//! server runs, answered as one redb file (`application/octet-stream`).
//!
//! The copy is made inside one read transaction into a fresh file next to the
//! database (same filesystem, inside the service's sandbox), which is unlinked
//! as soon as it is open: it is streamed from the open handle and disappears
//! when sent, or when the client goes away.
//!
//! The secrets in the copy are encrypted: the `wabridge-secrets-key` header
//! names the key file that restoring it needs (`wabridge backup` says so).

use hyper::header::HeaderValue;

use crate::error::Error;
use crate::http::guards::Admin;
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::backup;

/// Names the key file the copy's secrets are encrypted with.
pub const SECRETS_KEY_HEADER: &str = "wabridge-secrets-key";

pub async fn backup(state: &AppState, _: Admin, _: Req) -> Result<Resp, Error> {
    let copy = backup::take(state).await?;
    let mut resp = response::file("application/octet-stream", copy.file, copy.len);
    // A path that is not a valid header value is left out; the docs say where the key is.
    if let Ok(value) = HeaderValue::from_str(&copy.key_path) {
        resp.headers_mut().insert(SECRETS_KEY_HEADER, value);
    }
    Ok(resp)
}
