//! Building responses, and mapping `Error` to a status and `{error: {code, message, hint}}`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Held, StorageFault};
use crate::meta::MetaError;

pub type Resp = Response<Full<Bytes>>;

/// Attached to a response (as an extension) by a handler whose answer is a
/// file: the server streams it as the body instead of the (empty) `Full`.
/// The file is usually already unlinked, so it vanishes once sent.
#[derive(Clone)]
pub struct SendFile(std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>);

impl SendFile {
    pub fn new(file: std::fs::File) -> Self {
        SendFile(std::sync::Arc::new(std::sync::Mutex::new(Some(file))))
    }

    pub fn take(&self) -> Option<std::fs::File> {
        self.0.lock().ok().and_then(|mut f| f.take())
    }
}

/// A `200` whose body is `file`, `len` bytes, streamed by the server.
pub fn file(content_type: &str, file: std::fs::File, len: u64) -> Resp {
    let mut r = with_dynamic_type(StatusCode::OK, content_type, Bytes::new());
    r.headers_mut()
        .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
    r.extensions_mut().insert(SendFile::new(file));
    r
}

/// JSON answers carry API keys, listener secrets and customer data: never
/// kept by a cache, never sniffed into something a browser would run.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, body),
        // Our views are plain structs and maps: a failure is a bug, told as one.
        Err(e) => {
            tracing::error!(error = %e, "an answer could not be encoded as JSON");
            (StatusCode::INTERNAL_SERVER_ERROR, UNENCODABLE.to_vec())
        }
    };
    let mut r = with_type(status, "application/json", body);
    let h = r.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

const UNENCODABLE: &[u8] =
    br#"{"error":{"code":"internal_error","message":"the answer could not be encoded; the server log has the details"}}"#;

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    with_type(status, "text/plain; charset=utf-8", body)
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Headers for anything a browser shows during a login: nothing cached (pages
/// carry API keys and states), no Referer leaking `state` or `code` to the next
/// site, no framing, no MIME sniffing.
pub fn browser_headers(headers: &mut hyper::HeaderMap) {
    for (name, value) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// 303 See Other to `location`, with the browser headers.
pub fn redirect(location: &str) -> Result<Resp, Error> {
    let value = HeaderValue::from_str(location)
        .map_err(|e| Error::internal(format!("cannot redirect to {location:?}"), e))?;
    let mut r = empty(StatusCode::SEE_OTHER);
    r.headers_mut().insert(hyper::header::LOCATION, value);
    browser_headers(r.headers_mut());
    Ok(r)
}

/// A body whose type is only known at run time (e.g. a media file's MIME type).
pub fn with_dynamic_type(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = with_type(status, "application/octet-stream", body);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

pub fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::MissingScopes(_) => StatusCode::BAD_REQUEST,
        Error::Unauthorized | Error::BadSignature(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::NotYours { .. } => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::TooLarge { .. } | Error::TooLargeFor { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        Error::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Throttled { .. } | Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::WindowClosed(_) | Error::Sandbox(_) => StatusCode::CONFLICT,
        Error::NotConfigured(_) | Error::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Meta(e) => meta_status(e),
        Error::MetaUnreachable(_) | Error::FlowTool(_) => StatusCode::BAD_GATEWAY,
        Error::FlowSignature(_) => FLOW_SIGNATURE_STATUS,
        Error::FlowKey(_) => StatusCode::MISDIRECTED_REQUEST,
        Error::Storage { .. } | Error::Internal { .. } | Error::Startup(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Meta's code for a Flows request whose signature does not check
/// (CONTRACT §4.1); 421, Meta's code for a key that does not decrypt, is
/// HTTP's Misdirected Request.
const FLOW_SIGNATURE_STATUS: StatusCode = match StatusCode::from_u16(432) {
    Ok(status) => status,
    Err(_) => StatusCode::UNAUTHORIZED,
};

/// What the person reading the error can do about it, where we know.
pub fn hint(err: &Error) -> Option<String> {
    match err {
        Error::Unauthorized => Some("send `Authorization: Bearer <token>` with the admin token or an account API key".into()),
        Error::MissingScopes(_) => Some(crate::domain::accounts::MISSING_SCOPES_HINT.into()),
        Error::NotConfigured(_) => Some("set clientId and clientSecret with PUT /api/v1/admin/config (the Meta App's App ID and App Secret)".into()),
        Error::Meta(e) => e.hint().map(str::to_string),
        Error::RateLimited { .. } => Some("wait Retry-After seconds and send again; spread a campaign's sends over time (Meta allows a number 80 messages per second by default, 1,000 once upgraded, and a coexistence number, also used in the WhatsApp Business app, 20)".into()),
        Error::WindowClosed(_) => Some("send an approved template (type \"template\"), which Meta delivers at any time; once the user replies, free-form messages work for 24 hours".into()),
        Error::MetaUnreachable(_) => Some("check the server's outbound network and --graph-url".into()),
        Error::FlowKey(_) => Some("PUT /api/v1/phone-numbers/{phoneNumberId}/flows-endpoint uploads this number's public key to Meta again".into()),
        Error::FlowTool(_) => Some("the flow tool must answer the signed POST with 2xx JSON within 8 s".into()),
        Error::Sandbox(_) => Some("a sandbox account sends, marks read, lists its number and templates and takes uploads; for the rest connect a real WhatsApp Business Account (Embedded Signup or a System User token)".into()),
        Error::StorageUnavailable(f) => Some(fault_hint(f).into()),
        Error::NotYours { what: Held::Waba, .. } => {
            Some("the account's WABAs are listed by GET /api/v1/business-accounts".into())
        }
        Error::NotYours { what: Held::PhoneNumber, .. } => Some(
            "use a phone number ID from GET /api/v1/business-accounts/{wabaId}/phone-numbers".into(),
        ),
        _ => None,
    }
}

/// What the operator can do about a storage fault (the public is told less:
/// see `STORAGE_HINT`).
pub fn fault_hint(fault: &StorageFault) -> &'static str {
    match fault {
        StorageFault::LowSpace { .. } | StorageFault::NoSpace => {
            "free space on the disk that holds the data dir; wabridge accepts events again by itself, and Meta redelivers refused webhooks"
        }
        StorageFault::Io(_) => {
            "check the disk and the server log; wabridge reopens its database by itself once writes succeed again, and Meta redelivers refused webhooks"
        }
    }
}

/// Meta refusing a request is for the caller to fix (422) or to slow down for
/// (429), never worth an automatic retry; only Meta failing is a bad gateway (502).
fn meta_status(e: &MetaError) -> StatusCode {
    if e.is_rate_limit() {
        StatusCode::TOO_MANY_REQUESTS
    } else if (400..500).contains(&e.http_status) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_GATEWAY
    }
}

/// What anyone (the unauthenticated /healthz and webhook included) is told of
/// a storage fault: OS error text and byte counts stay in the log, the
/// backoffice and /metrics.
pub const STORAGE_UNAVAILABLE: &str =
    "storage unavailable: the disk is full or failing; retry later";
const STORAGE_HINT: &str = "the operator finds why in the server log and the backoffice; wabridge accepts events again by itself, and Meta redelivers refused webhooks";

pub fn error(err: &Error) -> Resp {
    let status = status_of(err);
    let (message, hint) = match err {
        Error::StorageUnavailable(_) => {
            (STORAGE_UNAVAILABLE.to_string(), Some(STORAGE_HINT.into()))
        }
        _ => (err.to_string(), hint(err)),
    };
    let mut body = json!({"error": {"code": err.code(), "message": message}});
    if let Some(hint) = hint {
        body["error"]["hint"] = json!(hint);
    }
    if let Error::Meta(meta) = err {
        body["error"]["meta"] = json!(meta);
    }
    if let Error::Invalid { field, .. } = err {
        body["error"]["field"] = json!(field);
    }
    let mut resp = json(status, &body);
    if let Some(secs) = err.retry_after() {
        resp.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if status == StatusCode::UNAUTHORIZED && matches!(err, Error::Unauthorized) {
        resp.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body(resp: Resp) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_storage_fault_is_a_503_to_retry_with_the_usual_body() {
        let resp = error(&Error::StorageUnavailable(StorageFault::LowSpace {
            free: 40 << 20,
            reserve: 64 << 20,
        }));
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[hyper::header::RETRY_AFTER], "60");
        let body = body(resp).await;
        assert_eq!(body["error"]["code"], "storage_unavailable");
        assert_eq!(body["error"]["message"], STORAGE_UNAVAILABLE);
        assert!(body["error"]["hint"].as_str().unwrap().contains("log"));
    }

    #[tokio::test]
    async fn a_storage_fault_shows_no_os_error_or_byte_count_to_the_public() {
        let resp = error(&Error::StorageUnavailable(StorageFault::Io(
            "Input/output error (os error 5) at /var/lib/wabridge/wabridge.redb".into(),
        )));
        let text = body(resp).await.to_string();
        assert!(!text.contains("os error"), "{text}");
        assert!(!text.contains("/var/lib"), "{text}");
        let resp = error(&Error::StorageUnavailable(StorageFault::LowSpace {
            free: 40 << 20,
            reserve: 64 << 20,
        }));
        let text = body(resp).await.to_string();
        assert!(!text.contains("MiB"), "{text}");
    }

    #[tokio::test]
    async fn a_send_over_the_numbers_rate_is_a_429_with_retry_after_and_a_hint() {
        let resp = error(&Error::RateLimited {
            phone_number_id: "3000000000001".into(),
            rate: 80,
            retry_after: 2,
        });
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[hyper::header::RETRY_AFTER], "2");
        let body = body(resp).await;
        assert_eq!(body["error"]["code"], "rate_limited");
        assert!(body["error"]["message"].as_str().unwrap().contains("80"));
        assert!(body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("Retry-After"));
    }

    #[tokio::test]
    async fn metas_throughput_and_pair_limits_are_429s_with_a_wait_and_metas_details() {
        for (code, wait) in [(130429, "1"), (131056, "6")] {
            let meta = MetaError::from_body(
                400,
                &format!(r#"{{"error":{{"code":{code},"message":"limit","fbtrace_id":"T"}}}}"#),
            );
            let resp = error(&Error::Meta(meta));
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(resp.headers()[hyper::header::RETRY_AFTER], wait);
            let body = body(resp).await;
            assert_eq!(body["error"]["meta"]["code"], code);
            assert_eq!(body["error"]["meta"]["fbtrace_id"], "T");
        }
        // Meta's app-wide limit names no wait: no header.
        let resp = error(&Error::Meta(MetaError::from_body(
            400,
            r#"{"error":{"code":4}}"#,
        )));
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(!resp.headers().contains_key(hyper::header::RETRY_AFTER));
    }

    #[test]
    fn any_other_storage_error_stays_a_500_without_retry_after() {
        let resp = error(&Error::storage("unreadable event record", "EOF"));
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!resp.headers().contains_key(hyper::header::RETRY_AFTER));
    }
}
