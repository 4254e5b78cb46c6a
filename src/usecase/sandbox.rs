//! The sandbox account: made without Meta, answered by wabridge (see
//! `domain::sandbox`), fed events by `wabridge simulate` with its API key,
//! and given back `sent`, `delivered` and `read` for each message it sends,
//! through the same pipeline as Meta's webhooks.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use serde_json::Value;

use super::accounts::{new_account, ApiKey, Granted};
use super::ingest::{Intake, Received};
use super::Services;
use crate::domain::model::Account;
use crate::domain::sandbox::SandboxNumber;
use crate::domain::time::now_ms;
use crate::domain::webhook;
use crate::error::Error;
use crate::meta::samples::{status_body, SampleContext, SampleKind};

/// How long after a send, and after each other, its statuses come.
const STATUS_STEP: Duration = Duration::from_millis(500);

/// What Meta reports of a message that was delivered and read, in order.
const FED_BACK: [SampleKind; 3] = [SampleKind::Sent, SampleKind::Delivered, SampleKind::Read];

/// A new sandbox account with its API key: no Meta token, no Meta App needed.
pub async fn create(app: &Services, name: Option<String>) -> Result<(Account, ApiKey), Error> {
    let number = SandboxNumber::new();
    let granted = Granted {
        name: Some(
            name.map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "Sandbox".into()),
        ),
        waba_ids: vec![number.waba_id.clone()],
        business_account_id: None,
        // Never sent anywhere: the sandbox's calls do not reach Meta.
        access_token: "sandbox".into(),
        token_expires_at: None,
        meta_user_id: None,
    };
    let (mut account, api_key) = new_account(granted, now_ms());
    let pair = (number.phone_number_id.clone(), number.waba_id.clone());
    account.sandbox = Some(number);
    app.store
        .insert_account(account.clone(), Vec::new())
        .await?;
    app.store.remember_phone_numbers(vec![pair]).await?;
    tracing::info!(account = %account.id, "sandbox account created");
    Ok((account, api_key))
}

/// Meta-format events posted with a sandbox account's key (`wabridge simulate
/// --sandbox-key`): stored as a verified webhook, when every entry is the
/// sandbox's own WABA.
pub async fn post_events(
    app: &Services,
    account: &Account,
    body: &[u8],
) -> Result<Received, Error> {
    let Some(number) = &account.sandbox else {
        return Err(not_a_sandbox());
    };
    // Judged by what the events would be, not by `entry.id` alone: a change
    // may name another WABA (`waba_info`), another account's number, or tie a
    // business portfolio to a WABA; none of that may come from a key holder.
    let now = now_ms();
    let events =
        webhook::parse(body, now).map_err(|webhook::Unusable(why)| Error::invalid("body", why))?;
    if let Some(foreign) = events.iter().find(|e| {
        e.waba_id != number.waba_id
            || !(e.phone_number_id.is_empty() || e.phone_number_id == number.phone_number_id)
            || webhook::business_link(e).is_some()
    }) {
        return Err(Error::Forbidden(format!(
            "an event for WABA {:?}, phone number {:?}: a sandbox may post events only for its own WABA {} and number {}",
            foreign.waba_id, foreign.phone_number_id, number.waba_id, number.phone_number_id
        )));
    }
    Intake::new(app).store_events(events, now).await
}

/// After a sandbox send, Meta's `sent`, `delivered` and `read` for it, a
/// moment apart, queued for the feed (see [`run_feed`]).
pub fn feed_back(app: &Services, number: &SandboxNumber, answer: &Value) {
    let text = |pointer: &str| {
        answer
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let message_id = text("/messages/0/id");
    if message_id.is_empty() {
        return;
    }
    let mut ctx = SampleContext {
        waba_id: number.waba_id.clone(),
        phone_number_id: number.phone_number_id.clone(),
        display_phone_number: number.display_phone_number.clone(),
        from: text("/contacts/0/wa_id"),
        user_id: text("/contacts/0/user_id"),
        name: String::new(),
        timestamp: 0,
    };
    let now = Instant::now();
    for (n, kind) in (1u32..).zip(FED_BACK) {
        let after = STATUS_STEP * n;
        ctx.timestamp = (now_ms() + after.as_millis() as u64) / 1000;
        let due = Due {
            at: now + after,
            body: status_body(&ctx, kind, &message_id),
        };
        if app.sandbox_feed.0.try_send(due).is_err() {
            tracing::warn!(message = %message_id, "the sandbox's status feed is full: statuses of this send are dropped");
            return;
        }
    }
}

/// Statuses the sandbox will report, in the order they fall due.
pub struct Feed(mpsc::Sender<Due>);

/// The receiving end of [`Feed`], for [`run_feed`].
pub struct FeedQueue(mpsc::Receiver<Due>);

pub struct Due {
    at: Instant,
    body: Vec<u8>,
}

/// Statuses waiting at most: a flow sending faster than the sandbox reports
/// loses statuses, never memory.
const FEED_QUEUE: usize = 4096;

impl Feed {
    pub fn new() -> (Feed, FeedQueue) {
        let (tx, rx) = mpsc::channel(FEED_QUEUE);
        (Feed(tx), FeedQueue(rx))
    }
}

/// Stores each queued status when it falls due, until `shutdown`.
pub async fn run_feed(mut queue: FeedQueue, intake: Intake, shutdown: CancellationToken) {
    loop {
        let due = tokio::select! {
            due = queue.0.recv() => due,
            _ = shutdown.cancelled() => None,
        };
        let Some(due) = due else { return };
        tokio::select! {
            _ = tokio::time::sleep_until(due.at) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = intake.store(&due.body).await {
            tracing::warn!(error = %e, "a sandbox status was not stored");
        }
    }
}

pub fn not_a_sandbox() -> Error {
    Error::Forbidden(
        "only a sandbox account's key may post events; a real account's come from Meta".into(),
    )
}
