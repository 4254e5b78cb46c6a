//! What the gateway does, once for both front-ends of a running server: the
//! JSON API and the backoffice call these functions with the caller and plain
//! inputs, and get domain values or a typed [`Error`](crate::error::Error)
//! back. Nothing here knows HTTP; the front-ends only translate. (The CLI's
//! file commands run without a server and work on the store directly.)
//!
//! One module per family: `accounts`, `connect` (links and logins),
//! `settings`, `listeners` (and their deliveries), `messages` (sends, windows,
//! status history), `numbers` (WABAs, phone numbers, template listings,
//! profiles), `templates` (one template created, read, edited, deleted),
//! `groups` (a number's WhatsApp groups),
//! `media`, `ingest` (Meta's webhook), `sandbox` (an account without Meta),
//! `flows` (the WhatsApp Flows data endpoint), `calls` (Meta's Calling API
//! proxied: call actions, permissions, calling settings), `backup`. `access` holds what a key
//! may touch and the Graph calls made with an account's token.

pub mod access;
pub mod accounts;
pub mod backup;
pub mod calls;
pub mod connect;
pub mod flows;
pub mod groups;
pub mod ingest;
pub mod listeners;
pub mod media;
pub mod messages;
pub mod numbers;
pub mod sandbox;
pub mod settings;
pub mod subscriptions;
pub mod templates;

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::model::Settings;
use crate::domain::throughput::Throughput;
use crate::domain::traffic::Traffic;
use crate::domain::urlguard::UrlGuard;
use crate::domain::webhook_health::WebhookWatch;
use crate::error::Error;
use crate::meta::Graph;
use crate::metrics::Metrics;
use crate::store::Store;

/// What the use cases share: the store, Meta's Graph API, the admin's settings
/// and the delivery dispatcher's wake-up.
pub struct Services {
    pub store: Store,
    /// The admin settings, kept in memory so the webhook path reads no table for them.
    pub settings: RwLock<Settings>,
    pub graph: Graph,
    /// Which addresses a listener URL may point at.
    pub guard: UrlGuard,
    pub public_url: String,
    /// Host of Meta's OAuth dialog (`--facebook-url`).
    pub facebook_url: String,
    /// Graph API version, also used for the dialog and the JS SDK.
    pub graph_version: String,
    /// How long a login's `state` stays usable.
    pub connect_state_ttl: Duration,
    pub metrics: Arc<Metrics>,
    /// What the webhook has seen, for the setup checklist.
    pub watch: Arc<WebhookWatch>,
    /// Webhook POSTs and events per minute, for the backoffice's charts.
    pub traffic: Arc<Traffic>,
    pub wake: Wake,
    /// Statuses the sandbox accounts' sends will report.
    pub sandbox_feed: sandbox::Feed,
    /// POSTs Flows data requests to flow tools and waits for their answer.
    pub flow_tool: Arc<dyn flows::FlowTool>,
    /// Each phone number's send bucket (`--send-rate-per-number`), in
    /// memory: after a restart every number starts with a full bucket.
    pub send_rate: Mutex<Throughput>,
}

/// Wakes the delivery dispatcher when deliveries were queued. Only the use
/// cases that queue ring it: the front-ends cannot forget to.
#[derive(Clone)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn new(dispatcher: Arc<Notify>) -> Wake {
        Wake(dispatcher)
    }

    fn ring(&self) {
        self.0.notify_one();
    }
}

impl Services {
    pub fn settings(&self) -> Settings {
        // A writer that panicked left a whole value behind (it is replaced
        // in one assignment): read it rather than fall back to empty settings.
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Deliveries were queued: the dispatcher looks at the outbox now rather
    /// than at its next timer.
    fn queued(&self) {
        self.wake.ring();
    }
}

/// Runs blocking work (Graph calls with ureq, Argon2) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal("a blocking task did not finish", e))?
}
