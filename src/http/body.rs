//! Reading request bodies with a size limit and a deadline, and JSON with a
//! readable error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde::de::DeserializeOwned;
use tokio::time::Sleep;

use super::limits::{body_timeout, BodyBudget};
use super::request::Body;
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

pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Error> {
    in_time(collect(body, limit, None)).await
}

/// The body, at most `limit` bytes; with a `budget`, its memory is drawn
/// from it as it arrives.
async fn collect(
    mut body: Body,
    limit: usize,
    budget: Option<&BodyBudget>,
) -> Result<Bytes, Error> {
    let mut draw = budget.map(BodyBudget::draw);
    if body.size_hint().lower() > limit as u64 {
        return Err(Error::TooLarge { limit });
    }
    let mut kept = Rope::expecting(body.size_hint().lower());
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| Error::invalid("body", format!("could not read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if kept.len + data.len() > limit {
            return Err(Error::TooLarge { limit });
        }
        if draw.as_mut().is_some_and(|d| !d.grow(data.len())) {
            return Err(busy());
        }
        kept.push(&data);
    }
    Ok(kept.into_bytes())
}

/// A body as it arrives, in pieces of at most one size: a buffer grown by
/// doubling left the allocator holding several times the budget under many
/// slow senders (each size freed in another thread's heap). Joined once, at
/// the end.
#[derive(Default)]
struct Rope {
    pieces: Vec<BytesMut>,
    len: usize,
    /// The length the sender announced (0 if none): what is left of it sizes
    /// the next piece, so a body of a few KiB (most of Meta's) holds a few
    /// KiB, not a whole piece, until it is answered.
    announced: usize,
}

impl Rope {
    const PIECE: usize = 64 * 1024;

    fn expecting(announced: u64) -> Rope {
        Rope {
            announced: usize::try_from(announced).unwrap_or(usize::MAX),
            ..Rope::default()
        }
    }

    fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let piece = match self.pieces.last_mut() {
                Some(p) if p.len() < p.capacity() => p,
                _ => {
                    let left = self.announced.saturating_sub(self.len);
                    let size = if left > 0 {
                        left.min(Self::PIECE)
                    } else {
                        Self::PIECE
                    };
                    self.pieces.push(BytesMut::with_capacity(size));
                    let last = self.pieces.len() - 1;
                    &mut self.pieces[last]
                }
            };
            let n = (piece.capacity() - piece.len()).min(data.len());
            piece.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.len += n;
        }
    }

    fn into_bytes(mut self) -> Bytes {
        if self.pieces.len() <= 1 {
            return self.pieces.pop().unwrap_or_default().freeze();
        }
        let mut whole = BytesMut::with_capacity(self.len);
        for piece in &self.pieces {
            whole.extend_from_slice(piece);
        }
        whole.freeze()
    }
}

fn busy() -> Error {
    Error::Busy {
        message: "too many request bodies are being received at once; retry shortly",
        retry_after: 1,
    }
}

/// Reads a body of at most `limit` bytes. A longer one is still read to its end
/// (up to `drain` bytes in all) and thrown away, so that a client that sends the
/// whole body before it listens sees the 413 instead of a reset connection.
/// An upload may take as long as it needs, but must keep moving (see `Paced`).
pub async fn read_or_drain(body: Body, limit: usize, drain: usize) -> Result<Bytes, Error> {
    let mut body = Paced::new(body);
    let mut kept = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| read_error(&*e))?;
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
pub async fn read_budgeted(body: Body, limit: usize, budget: &BodyBudget) -> Result<Bytes, Error> {
    in_time(collect(body, limit, Some(budget))).await
}

/// A request body that fails when it pauses for longer than the body
/// deadline: an upload of any size may take as long as it needs, but a
/// sender that stops holds its connection only that long.
pub struct Paced {
    body: Body,
    pause: Duration,
    sleep: Pin<Box<Sleep>>,
}

/// The error a `Paced` body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body paused for more than {0} s")]
pub struct Paused(u64);

impl Paced {
    pub fn new(body: Body) -> Paced {
        let pause = body_timeout();
        Paced {
            body,
            pause,
            sleep: Box::pin(tokio::time::sleep(pause)),
        }
    }
}

impl HttpBody for Paced {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.pause;
                self.sleep.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Paused(self.pause.as_secs()))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The error for a body that could not be read: 408 when it paused too long.
pub fn read_error(e: &(dyn std::error::Error + 'static)) -> Error {
    match e.downcast_ref::<Paused>() {
        Some(Paused(secs)) => Error::BodyTimeout { secs: *secs },
        None => Error::invalid("body", format!("could not read the request body: {e}")),
    }
}

pub async fn read_json<T: DeserializeOwned>(body: Body) -> Result<T, Error> {
    let bytes = read_limited(body, API_BODY_LIMIT).await?;
    if bytes.is_empty() {
        return Err(Error::invalid("body", "expected a JSON object"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid("body", format!("not the expected JSON: {e}")))
}

/// Like `read_json`, but an empty body means "all defaults".
pub async fn read_optional_json<T: DeserializeOwned + Default>(body: Body) -> Result<T, Error> {
    let bytes = read_limited(body, API_BODY_LIMIT).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid("body", format!("not the expected JSON: {e}")))
}

/// `application/x-www-form-urlencoded` pairs, e.g. the Embedded Signup page's
/// form, which anyone may post: drawn from `budget`.
pub async fn read_form(body: Body, budget: &BodyBudget) -> Result<Vec<(String, String)>, Error> {
    let bytes = read_budgeted(body, FORM_BODY_LIMIT, budget).await?;
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

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};

    use super::*;

    fn announced(len: usize) -> Body {
        Full::new(Bytes::from(vec![b' '; len]))
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    #[test]
    fn a_rope_keeps_every_byte_in_order_across_pieces() {
        let mut rope = Rope::default();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for part in data.chunks(7_777) {
            rope.push(part);
        }
        assert_eq!(rope.pieces.len(), 4);
        assert_eq!(&rope.into_bytes()[..], &data[..]);
        assert!(Rope::default().into_bytes().is_empty());
    }

    #[test]
    fn an_announced_body_is_kept_in_pieces_of_its_size() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut small = Rope::expecting(3_000);
        small.push(&data[..1_000]);
        small.push(&data[1_000..3_000]);
        assert_eq!(small.pieces.len(), 1);
        assert!(small.pieces[0].capacity() < Rope::PIECE);
        assert_eq!(&small.into_bytes()[..], &data[..3_000]);
        let mut large = Rope::expecting(70_000);
        for part in data.chunks(5_000) {
            large.push(part);
        }
        assert_eq!(large.pieces.len(), 2);
        assert!(large.pieces[1].capacity() < Rope::PIECE);
        assert_eq!(&large.into_bytes()[..], &data[..]);
    }

    #[tokio::test]
    async fn a_body_draws_its_size_once_and_gives_it_back() {
        let budget = BodyBudget::new(1024 * 1024);
        let body = read_budgeted(announced(1024 * 1024), 2 * 1024 * 1024, &budget).await;
        assert_eq!(body.unwrap().len(), 1024 * 1024);
        assert_eq!(budget.available(), 1024 * 1024);
    }
}
