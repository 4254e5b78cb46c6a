//! Reading request bodies with a size limit and a deadline, and JSON with a
//! readable error.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use super::limits::{body_timeout, BodyBudget};
use crate::error::Error;

/// JSON bodies of the API are small; this keeps a client from filling memory.
pub const API_BODY_LIMIT: usize = 1024 * 1024;

/// Reads the body within the body deadline: a client trickling one in holds
/// its connection and memory only that long.
async fn in_time<T>(read: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let timeout = body_timeout();
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Error::BodyTimeout {
            secs: timeout.as_secs(),
        })?
}

pub async fn read_limited(body: Incoming, limit: usize) -> Result<Bytes, Error> {
    in_time(collect_limited(body, limit)).await
}

async fn collect_limited(body: Incoming, limit: usize) -> Result<Bytes, Error> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Error::TooLarge { limit })
        }
        Err(e) => Err(Error::invalid(
            "body",
            format!("could not read the request body: {e}"),
        )),
    }
}

/// Reads a body of at most `limit` bytes. A longer one is still read to its end
/// (up to `drain` bytes in all) and thrown away, so that a client that sends the
/// whole body before it listens sees the 413 instead of a reset connection.
pub async fn read_or_drain(body: Incoming, limit: usize, drain: usize) -> Result<Bytes, Error> {
    in_time(drain_beyond(body, limit, drain)).await
}

async fn drain_beyond(mut body: Incoming, limit: usize, drain: usize) -> Result<Bytes, Error> {
    let mut kept = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| Error::invalid("body", format!("could not read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > drain {
            break;
        }
    }
    if seen > limit {
        return Err(Error::TooLarge { limit });
    }
    Ok(kept.freeze())
}

/// Reads a body of at most `limit` bytes whose memory comes out of `budget`
/// as it arrives: unauthenticated bodies (Meta's webhook) from many slow
/// senders never add up to more than the budget.
pub async fn read_budgeted(
    body: Incoming,
    limit: usize,
    budget: &BodyBudget,
) -> Result<Bytes, Error> {
    in_time(collect_budgeted(body, limit, budget)).await
}

async fn collect_budgeted(
    mut body: Incoming,
    limit: usize,
    budget: &BodyBudget,
) -> Result<Bytes, Error> {
    let mut kept = BytesMut::new();
    let mut held = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| Error::invalid("body", format!("could not read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if kept.len() + data.len() > limit {
            return Err(Error::TooLarge { limit });
        }
        held.push(budget.take(data.len()).ok_or(Error::Busy {
            message: "too many webhook bodies are being received at once; retry shortly",
            retry_after: 1,
        })?);
        kept.extend_from_slice(&data);
    }
    Ok(kept.freeze())
}

pub async fn read_json<T: DeserializeOwned>(body: Incoming) -> Result<T, Error> {
    let bytes = read_limited(body, API_BODY_LIMIT).await?;
    if bytes.is_empty() {
        return Err(Error::invalid("body", "expected a JSON object"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid("body", format!("not the expected JSON: {e}")))
}

/// Like `read_json`, but an empty body means "all defaults".
pub async fn read_optional_json<T: DeserializeOwned + Default>(body: Incoming) -> Result<T, Error> {
    let bytes = read_limited(body, API_BODY_LIMIT).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid("body", format!("not the expected JSON: {e}")))
}

/// `application/x-www-form-urlencoded` pairs, e.g. the Embedded Signup page's form.
pub async fn read_form(body: Incoming) -> Result<Vec<(String, String)>, Error> {
    let bytes = read_limited(body, FORM_BODY_LIMIT).await?;
    Ok(url::form_urlencoded::parse(&bytes).into_owned().collect())
}

/// A `?limit=` of the list endpoints: 1 to 1000 items.
pub fn page_limit(raw: &str) -> Result<usize, Error> {
    raw.parse()
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| Error::invalid("limit", "must be a number from 1 to 1000"))
}

/// A login form carries a code, a state and two ids: a few hundred bytes.
const FORM_BODY_LIMIT: usize = 16 * 1024;
