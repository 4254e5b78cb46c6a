//! The things wabridge keeps, in the connector guide's words.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sandbox::SandboxNumber;
use super::subscription::{Filters, Format};

/// What the admin enters once: the Meta App's credentials and the webhook verify token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    #[serde(default)]
    pub es_config_id: String,
    #[serde(default)]
    pub verify_token: String,
    /// Refuse free-form sends outside the 24-hour window unless a request says otherwise.
    #[serde(default)]
    pub require_open_window: bool,
}

impl Settings {
    /// The Meta App's id and secret are set: what checking a token, any
    /// login and the token keeper need.
    pub fn is_configured(&self) -> bool {
        !self.client_id.is_empty() && !self.client_secret.is_empty()
    }
}

/// A connected WhatsApp business: its Meta token and the WABAs it may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub name: String,
    pub waba_ids: Vec<String>,
    pub business_account_id: Option<String>,
    pub access_token: String,
    /// Unix seconds; `None` for tokens that do not expire (System User tokens).
    pub token_expires_at: Option<u64>,
    pub meta_user_id: Option<String>,
    pub api_key_hash: String,
    pub created_at: u64,
    /// Whether the token still works, as the token keeper last saw it.
    /// Accounts stored before this field existed read as `ok`.
    #[serde(default)]
    pub status: AccountStatus,
    /// Why the account needs a reconnect: Meta's error, in words a person can act on.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// Unix ms of the last health check or refresh of the token.
    #[serde(default)]
    pub token_checked_at: Option<u64>,
    /// A sandbox account: its number is made up and wabridge answers for Meta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxNumber>,
}

/// `needs_reconnect` means Meta refused the token: only a fresh login helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    #[default]
    Ok,
    NeedsReconnect,
}

/// Which login a customer goes through (connector guide §1.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectFlow {
    /// Meta's signup wizard through the JS SDK; chosen when `esConfigId` is set.
    EmbeddedSignup,
    /// Meta's OAuth dialog with a redirect back to the callback.
    OAuth,
}

/// A single-use link the admin hands to a customer (`/connect?link=`).
/// Stored under the SHA-256 of the link's secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectLink {
    pub id: String,
    pub created_at: u64,
    /// Unix ms.
    pub expires_at: u64,
    /// Set when a login through this link connected an account.
    #[serde(default)]
    pub used_at: Option<u64>,
    #[serde(default)]
    pub account_id: Option<String>,
    /// Embedded Signup offers to connect a WhatsApp Business app number
    /// (coexistence, `domain::coexistence`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub coexistence: bool,
}

/// What wabridge has learned about one WABA, kept per WABA: its Marketing
/// Messages Lite onboarding (from Meta's `account_update` webhook) and which
/// of its phone numbers are coexistence numbers (from the last listing of its
/// numbers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WabaFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketing: Option<crate::domain::marketing::MarketingState>,
    /// Sorted phone number ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coexistence_numbers: Vec<String>,
    /// Sorted ids of the numbers Meta upgraded to the higher throughput
    /// (`throughput.level: HIGH`). (Added with no schema change: absent reads as none.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub high_throughput_numbers: Vec<String>,
}

/// A login in progress: what an OAuth `state` stands for. Stored under the
/// SHA-256 of the state and removed the first time the callback sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingLogin {
    pub flow: ConnectFlow,
    /// Hash of the connect link the login started from; `None` when the admin started it.
    pub link_hash: Option<String>,
    /// Unix ms.
    pub expires_at: u64,
    /// The link asked for coexistence onboarding (Embedded Signup's
    /// `featureType: "whatsapp_business_app_onboarding"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub coexistence: bool,
}

/// The two kinds of events a listener could name before `events` existed
/// (`event: "messages" | "statuses"`); each stands for one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Messages,
    Statuses,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Messages => "messages",
            EventKind::Statuses => "statuses",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "messages" => Some(EventKind::Messages),
            "statuses" => Some(EventKind::Statuses),
            _ => None,
        }
    }

    /// The `type` of the outbound webhook body.
    pub fn webhook_type(self) -> &'static str {
        match self {
            EventKind::Messages => "whatsapp.message.received",
            EventKind::Statuses => "whatsapp.message.status",
        }
    }
}

/// A phone number's WhatsApp Flows data endpoint (CONTRACT §4.1): the flow
/// tool its Flows are sent to, and the number's key pair. The private key
/// never leaves wabridge; it and the secret are stored sealed (`store::secrets`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowsEndpoint {
    pub phone_number_id: String,
    pub account_id: String,
    pub waba_id: String,
    /// The flow tool's URL.
    pub url: String,
    /// Signs what the flow tool receives, as a listener's does (`whsec_…`).
    pub secret: String,
    /// PKCS#8 PEM.
    pub private_key: String,
    /// SubjectPublicKeyInfo PEM, as uploaded to Meta.
    pub public_key: String,
    /// Whether Meta took the public key at the last upload.
    pub key_uploaded: bool,
    pub created_at: u64,
}

// The private key and the secret stay out of logs and test output.
impl std::fmt::Debug for FlowsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowsEndpoint")
            .field("phone_number_id", &self.phone_number_id)
            .field("account_id", &self.account_id)
            .field("url", &self.url)
            .field("key_uploaded", &self.key_uploaded)
            .finish_non_exhaustive()
    }
}

/// A flow webhook registered for one WABA and the event types it asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub id: String,
    pub account_id: String,
    pub waba_id: String,
    /// Set when the listener was registered with `event` (and for every
    /// listener stored before schema 6): shown back as it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventKind>,
    /// Types and `prefix.*` patterns (CONTRACT §5.1).
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default, skip_serializing_if = "Filters::is_empty")]
    pub filters: Filters,
    #[serde(default)]
    pub format: Format,
    pub url: String,
    pub secret: String,
    pub created_at: u64,
    /// Set when deliveries stop: the receiver answered 410 Gone.
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// Paused by the admin: new events are not queued for it (queued ones still go out).
    #[serde(default)]
    pub paused: bool,
}

impl Listener {
    /// The patterns this listener is routed by; a listener stored before
    /// `events` existed stands for the one type its `event` names.
    pub fn subscribed(&self) -> Vec<String> {
        match (&self.event, self.events.is_empty()) {
            (Some(kind), true) => vec![kind.webhook_type().to_string()],
            _ => self.events.clone(),
        }
    }
}

/// An event parsed from Meta's webhook, ready to store and fan out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InboundEvent {
    /// The outbound `type` (CONTRACT §5.1).
    pub event_type: String,
    pub waba_id: String,
    /// Empty for events that concern no phone number (templates, account).
    pub phone_number_id: String,
    /// Meta redelivers; this identifies the event across redeliveries.
    pub dedupe_key: String,
    /// The outbound webhook body, serialized once.
    pub body: Vec<u8>,
    /// For status events: the row of the message's status history.
    pub status: Option<StatusRecord>,
    /// For a user's message: who wrote, which opens their 24-hour window.
    pub sender: Option<InboundSender>,
    /// For an image, audio, video, document or sticker message: Meta's media id.
    pub media_id: Option<String>,
    /// For message events: Meta's message `type`; for status events: the status.
    /// What the listeners' filters look at.
    pub facet: Option<String>,
    /// What Meta sent, to rebuild its own envelope for `format: "meta"` listeners.
    pub source: MetaSource,
}

/// The change an event came from: the value is shared by every event of the change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaSource {
    pub field: String,
    pub value: Arc<Value>,
    /// The entry's `time`, which Meta sends with some fields.
    pub entry_time: Option<u64>,
    /// The list the event's item is in, and where; `None` for a whole change.
    pub item: Option<(&'static str, usize)>,
    /// The `contacts[]` entry matched to the event's user.
    pub contact: Option<usize>,
}

/// The author of an inbound message, by every identifier Meta gave.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundSender {
    /// `wa_id` (phone digits), BSUID and parent BSUID, as far as present.
    pub ids: Vec<String>,
    /// When the user wrote (unix ms, Meta's timestamp).
    pub at_ms: u64,
}

/// One status Meta reported for a message we sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRecord {
    pub message_id: String,
    pub status: String,
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Value>,
    /// Meta's `biz_opaque_callback_data`: what the sender attached to the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// `group` for a message sent to a group; its statuses then name the participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_participant_id: Option<String>,
    /// The participant's business-scoped user ID (Meta's
    /// `recipient_participant_user_id`), for a member who hides their number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_participant_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub waba_id: String,
    pub phone_number_id: String,
    /// Unix ms when wabridge received it.
    #[serde(default)]
    pub received_at: u64,
}

/// Where one event stands on its way to one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: u64,
    /// Standard Webhooks `webhook-id`, the same on every attempt.
    pub webhook_id: String,
    pub listener_id: String,
    pub event_id: u64,
    pub state: DeliveryState,
    pub attempts: u32,
    /// Unix ms of the next attempt while pending.
    pub next_attempt_at: Option<u64>,
    pub last_attempt_at: Option<u64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: u64,
}

/// A signed body we could not use: kept for the admin to inspect.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineItem {
    pub id: u64,
    pub received_at: u64,
    pub reason: String,
    pub body: String,
}
