//! The sandbox's own endpoint: Meta-format events posted with a sandbox
//! account's key (what `wabridge simulate --sandbox-key` sends).

use hyper::StatusCode;

use crate::error::Error;
use crate::http::body::read_limited;
use crate::http::guards::Caller;
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::sandbox;

/// `POST /api/v1/sandbox/events`: stored like Meta's webhook, for the
/// sandbox's own WABA and number only.
pub async fn events(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    // Refused before its body is read; a key holder's body is an API body,
    // not one of Meta's on their budget.
    if account.sandbox.is_none() {
        return Err(sandbox::not_a_sandbox());
    }
    let body = read_limited(req.body, state.max_body_bytes).await?;
    let received = sandbox::post_events(state, &account, &body).await?;
    Ok(response::json(StatusCode::OK, &received))
}
