//! Every table of the database, and the schema version they make up.

use redb::{MultimapTableDefinition, TableDefinition};

/// Bumped by every change to a table's key or value layout; see `migrate`.
/// 2: connect_links, pending_logins. 3: status_recipients, awaiting_delivery.
/// 4: windows, user_links, phone_numbers, media. 5: user_links replaced by
/// user_links_seen, which says when each link was last seen so it can expire.
/// 6: listener routes by subscribed pattern; urgent_outbox, meta_bodies,
/// business_wabas (every field Meta sends, CONTRACT §5.1). 7: the app secret,
/// account tokens and listener secrets encrypted (see `secrets`), with the
/// key check in `settings`. 8: status-history rows in a binary layout
/// (`status_row`) instead of JSON. 9: traffic (the backoffice's charts).
/// 10: flows_endpoints. 11: status rows may hold a group participant's
/// BSUID (`status_row`'s flag 1 << 10). 12: waba_facts. 13: template_history.
pub const SCHEMA_VERSION: u64 = 13;

/// The key in `META` that holds the schema version.
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

/// Counters and the schema version.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Admin settings, the admin token hash and the secrets key check, by key.
pub const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
/// account id → Account JSON.
pub const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// SHA-256 of an API key → account id.
pub const API_KEYS: TableDefinition<&str, &str> = TableDefinition::new("api_keys");
/// listener id → Listener JSON.
pub const LISTENERS: TableDefinition<&str, &[u8]> = TableDefinition::new("listeners");
/// (WABA id, subscribed pattern, listener id): how an event finds its
/// listeners, those of its WABA whose pattern covers its type. Before version 6
/// the middle part was "messages" or "statuses".
pub const LISTENER_ROUTES: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("listener_routes");
/// event id → (kind, WABA id, phone number id, received at ms, outbound body).
pub const EVENTS: TableDefinition<u64, (&str, &str, &str, u64, &[u8])> =
    TableDefinition::new("events");
/// Meta's identity of an event → event id, so a redelivery is recognised.
pub const DEDUPE: TableDefinition<&str, u64> = TableDefinition::new("dedupe");
/// delivery id → Delivery JSON.
pub const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("deliveries");
/// (due at ms, delivery id): the queue the delivery workers take from.
pub const OUTBOX: TableDefinition<(u64, u64), ()> = TableDefinition::new("outbox");
/// (due at ms, delivery id): first attempts of call events, which the workers
/// take with permits of their own, ahead of everything in `outbox`. (Since 6.)
pub const URGENT_OUTBOX: TableDefinition<(u64, u64), ()> = TableDefinition::new("urgent_outbox");
/// event id → Meta's own envelope of that event, kept only for events a
/// `format: "meta"` listener receives. (Since version 6.)
pub const META_BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("meta_bodies");
/// (business portfolio id, WABA id): where events Meta sends at business level go.
/// (Since version 6.)
pub const BUSINESS_WABAS: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("business_wabas");
/// (listener id, delivery id): a listener's deliveries, newest last.
pub const LISTENER_DELIVERIES: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("listener_deliveries");
/// (message id, event id) → the StatusRecord, without its message id, in
/// `status_row`'s layout (JSON before version 8): the message-status history.
pub const STATUSES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("statuses");
/// Only inside the migration to version 8: the history re-encoded, before it
/// takes the place of `statuses` in the same transaction.
pub const STATUSES_REENCODED: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("statuses_reencoded");
/// id → QuarantineItem JSON: signed bodies we could not use.
pub const QUARANTINE: TableDefinition<u64, &[u8]> = TableDefinition::new("quarantine");
/// SHA-256 of a connect link's secret → ConnectLink JSON. (Since version 2.)
pub const CONNECT_LINKS: TableDefinition<&str, &[u8]> = TableDefinition::new("connect_links");
/// SHA-256 of an OAuth `state` → PendingLogin JSON. (Since version 2.)
pub const PENDING_LOGINS: TableDefinition<&str, &[u8]> = TableDefinition::new("pending_logins");
/// (recipient phone number or BSUID, message id) → the newest status event id:
/// finds the messages sent to a person. (Since version 3.)
pub const STATUS_RECIPIENTS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("status_recipients");
/// (ms when `sent` arrived, message id) → its event id, for messages that got
/// `sent` and nothing after it yet: the silent drops of the 24-hour window.
/// (Since version 3.)
pub const AWAITING_DELIVERY: TableDefinition<(u64, &str), u64> =
    TableDefinition::new("awaiting_delivery");
/// (phone number id, user id) → when that user last wrote to that number (unix ms).
/// A user id is a `wa_id` (phone digits), a BSUID or a parent BSUID. (Since version 4.)
pub const WINDOWS: TableDefinition<(&str, &str), u64> = TableDefinition::new("windows");
/// (user id, another id Meta gave for the same person: phone ↔ BSUID) → when
/// that was last seen (unix ms), so the janitor forgets links nobody used
/// within the retention period. (Since version 5.)
pub const USER_LINKS_SEEN: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("user_links_seen");
/// Versions 4 and earlier: the same links without a time. Read only by the
/// migration to version 5, which removes it.
pub const USER_LINKS_V4: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("user_links");
/// phone number id → its WABA id, learned from Meta and from signed webhooks.
/// (Since version 4.)
pub const PHONE_NUMBERS: TableDefinition<&str, &str> = TableDefinition::new("phone_numbers");
/// media id of an inbound message → (WABA id, phone number id, received at ms).
/// (Since version 4.)
pub const MEDIA: TableDefinition<&str, (&str, &str, u64)> = TableDefinition::new("media");
/// (minute since the epoch, kind, series name) → two counts of that minute:
/// the last 24 hours of the backoffice's traffic charts (`domain::traffic`),
/// written about once a minute from memory. (Since version 9.)
pub const TRAFFIC: TableDefinition<(u64, &str, &str), (u32, u32)> = TableDefinition::new("traffic");
/// phone number id → FlowsEndpoint JSON, its secret and private key sealed:
/// the number's WhatsApp Flows data endpoint. (Since version 10.)
pub const FLOWS_ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("flows_endpoints");
/// WABA id → WabaFacts JSON: what wabridge learned of the WABA (its Marketing
/// Messages Lite onboarding, its coexistence numbers). (Since version 12.)
pub const WABA_FACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("waba_facts");
/// (template id, event id) → TemplateChange JSON: what Meta's template
/// webhooks said of each template, oldest first (`domain::template_history`),
/// written in the ingest commit, expired with the events. (Since version 13.)
pub const TEMPLATE_HISTORY: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("template_history");
