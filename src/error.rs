//! Typed errors of the library. Only `http::response` turns them into status codes.

use crate::domain::disk::human_bytes;
use crate::meta::MetaError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input a person can fix: names the field and what to do.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },

    #[error("missing or unknown credentials")]
    Unauthorized,

    #[error("{0}")]
    BadSignature(&'static str),

    /// A Flows data request without Meta's signature (`X-Hub-Signature-256`
    /// or `flow_token_signature` with the App Secret): Meta's code 432.
    #[error("{0}")]
    FlowSignature(&'static str),

    /// A Flows data request that does not decrypt with the number's private
    /// key: Meta's code 421, which makes WhatsApp fetch the public key again.
    #[error("{0}")]
    FlowKey(&'static str),

    /// The flow tool behind a Flows endpoint failed, answered no JSON or was
    /// too slow; Meta shows the user an error and may retry.
    #[error("the flow tool did not answer the Flows request: {0}")]
    FlowTool(String),

    #[error("{0}")]
    Forbidden(String),

    /// A WABA or phone number outside the caller's account (`wabas`).
    #[error("{} {id} is not {} this account's WhatsApp Business Accounts ({})", what.noun(), what.relation(), wabas.join(", "))]
    NotYours {
        what: Held,
        id: String,
        wabas: Vec<String>,
    },

    /// A Meta token without the WhatsApp permissions: useless, so refused.
    #[error("the token does not carry the WhatsApp permissions: missing {}", .0.join(", "))]
    MissingScopes(Vec<String>),

    #[error("{0} not found")]
    NotFound(&'static str),

    #[error("{0}")]
    Conflict(String),

    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },

    /// The body did not arrive in full before the body deadline.
    #[error("the request body did not arrive within {secs} s")]
    BodyTimeout { secs: u64 },

    /// Refused for now to protect the server (e.g. the webhook body budget
    /// is spent); the client should retry after `retry_after` seconds.
    #[error("{message}")]
    Busy {
        message: &'static str,
        retry_after: u64,
    },

    /// A send over the phone number's `--send-rate-per-number`, refused
    /// before Meta is asked (Meta would answer `130429`); retry after
    /// `retry_after` seconds.
    #[error("not sent: phone number {phone_number_id} is sending faster than {rate} messages per second (--send-rate-per-number, or the number's own rate: 20 for a coexistence number, up to 1,000 for one Meta upgraded); Meta would refuse the message")]
    RateLimited {
        phone_number_id: String,
        rate: u32,
        retry_after: u64,
    },

    /// Too many failed credentials from one address; retry after `retry_after` seconds.
    #[error("too many failed attempts from this address; try again in {retry_after} s")]
    Throttled { retry_after: u64 },

    /// A file over Meta's limit for its kind.
    #[error("{what} may be at most {limit} bytes (Meta's limit)")]
    TooLargeFor { what: String, limit: usize },

    /// A free-form send refused because the 24-hour window is not open.
    #[error("{0}")]
    WindowClosed(String),

    /// The admin has not finished setup yet (e.g. no app secret).
    #[error("{0}")]
    NotConfigured(&'static str),

    /// What a sandbox account cannot do (Meta's own surfaces), or what only
    /// a sandbox account may do.
    #[error("{0}")]
    Sandbox(String),

    #[error("Meta answered with error {}: {}", .0.code, .0.message)]
    Meta(MetaError),

    #[error("could not reach Meta: {0}")]
    MetaUnreachable(String),

    /// The database or a file of ours failed; `source` is what failed.
    #[error("storage: {context}: {source}")]
    Storage {
        context: String,
        #[source]
        source: BoxError,
    },

    /// A bug or a failure that is not the storage's: nothing the caller did.
    #[error("internal error: {context}{}", suffix(.source))]
    Internal {
        context: String,
        #[source]
        source: Option<BoxError>,
    },

    /// The database cannot take this write now (disk full or failing, or the
    /// reserve of free space reached). Nothing was stored; retrying later works.
    #[error("{0}")]
    StorageUnavailable(StorageFault),

    /// Start-up problems: bad certificate, busy port, locked data dir.
    #[error("{0}")]
    Startup(String),
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A failure of the database or of a file, keeping what failed.
    pub fn storage(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Storage {
            context: context.into(),
            source: source.into(),
        }
    }

    /// A bug or a non-storage failure, with the error that caused it.
    pub fn internal(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// Something that cannot happen unless the code is wrong; there is no
    /// error value to keep.
    pub fn bug(context: impl Into<String>) -> Self {
        Error::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// Stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_request",
            Error::Unauthorized => "unauthorized",
            Error::BadSignature(_) | Error::FlowSignature(_) => "invalid_signature",
            Error::FlowKey(_) => "flow_key_mismatch",
            Error::FlowTool(_) => "flow_tool_failed",
            Error::Forbidden(_) | Error::NotYours { .. } => "forbidden",
            Error::MissingScopes(_) => "missing_permissions",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::TooLarge { .. } | Error::TooLargeFor { .. } => "payload_too_large",
            Error::BodyTimeout { .. } => "request_timeout",
            Error::Busy { .. } => "busy",
            Error::Throttled { .. } => "too_many_attempts",
            Error::RateLimited { .. } => "rate_limited",
            Error::WindowClosed(_) => "window_closed",
            Error::NotConfigured(_) => "not_configured",
            Error::Sandbox(_) => "sandbox",
            Error::Meta(_) => "meta_error",
            Error::MetaUnreachable(_) => "meta_unreachable",
            Error::Storage { .. } => "storage_error",
            Error::Internal { .. } => "internal_error",
            Error::StorageUnavailable(_) => "storage_unavailable",
            Error::Startup(_) => "startup_error",
        }
    }

    /// Seconds after which a retry may succeed, for errors that pass by themselves.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Busy { retry_after, .. }
            | Error::Throttled { retry_after }
            | Error::RateLimited { retry_after, .. } => Some(*retry_after),
            Error::Meta(e) => e.retry_after(),
            Error::StorageUnavailable(_) => Some(STORAGE_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// Exit code of the process when this error ends `serve`.
    pub fn exit_code(&self) -> u8 {
        1
    }
}

/// The cause an error keeps: any error, or a message where there is no error
/// value (`"…".into()`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `: source` after an internal error's context, when it has one.
fn suffix(source: &Option<BoxError>) -> String {
    source
        .as_ref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default()
}

/// What an account holds through its WABAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Waba,
    PhoneNumber,
}

impl Held {
    fn noun(self) -> &'static str {
        match self {
            Held::Waba => "WABA",
            Held::PhoneNumber => "phone number",
        }
    }

    fn relation(self) -> &'static str {
        match self {
            Held::Waba => "one of",
            Held::PhoneNumber => "on one of",
        }
    }
}

/// Long enough for an admin to free space or for the store to be reopened;
/// Meta paces its own redeliveries anyway.
const STORAGE_RETRY_AFTER_SECS: u64 = 60;

/// Why the database refuses writes for now. Each passes without a restart:
/// space freed, or the store reopened once the disk answers again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageFault {
    /// The reserve of `--min-free-space` is reached: new events are refused
    /// before a write can fail half-way.
    #[error(
        "the data dir's disk has {} free, less than the {} kept in reserve (--min-free-space)",
        human_bytes(*.free),
        human_bytes(*.reserve)
    )]
    LowSpace { free: u64, reserve: u64 },

    #[error("the data dir's disk is full")]
    NoSpace,

    #[error("the database could not read or write its file: {0}")]
    Io(String),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_storage_error_says_what_failed_and_keeps_it_as_its_source() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::storage("reading the events", io);
        assert_eq!(e.to_string(), "storage: reading the events: disk on fire");
        assert_eq!(e.code(), "storage_error");
        let source = e.source().expect("the cause is kept");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn an_internal_error_names_its_cause_only_when_it_has_one() {
        let bad = serde_json::from_str::<u8>("x").unwrap_err();
        let e = Error::internal("the test event body", bad);
        assert!(e
            .to_string()
            .starts_with("internal error: the test event body: "));
        assert!(e.source().is_some());
        let e = Error::bug("no sample of x parsed");
        assert_eq!(e.to_string(), "internal error: no sample of x parsed");
        assert!(e.source().is_none());
        assert_eq!(e.code(), "internal_error");
    }
}
