//! Listeners and their deliveries: success rate, last error, redelivery, pause.

use std::collections::HashMap;

use askama::Template;
use hyper::StatusCode;
use serde_json::Value;

use super::chart::{Chart, Svg};
use super::views::{stamp, Chrome, Stamp};
use super::{html, Ctx, Done, Form, LISTENERS};
use crate::domain::ids::ListenerId;
use crate::domain::model::{Delivery, DeliveryState, Listener};
use crate::domain::sandbox::is_sandbox_id;
use crate::domain::subscription::Requested;
use crate::domain::subscription::{Filters, Format};
use crate::error::Error;
use crate::http::response::Resp;
use crate::http::session::Flash;
use crate::usecase::listeners::{self, NewListener};

/// How many recent deliveries the success rate and the detail page look at.
const RECENT: usize = 200;

pub struct ListenerRow {
    pub id: String,
    pub account: String,
    pub waba_id: String,
    /// A listener of a sandbox WABA.
    pub sandbox: bool,
    /// The subscribed types and patterns, comma-separated.
    pub kind: String,
    /// The filters in words, or empty.
    pub filters: String,
    /// standard or meta.
    pub format: &'static str,
    pub url: String,
    /// active, paused or stopped.
    pub state: &'static str,
    pub stopped_reason: String,
    /// "98 %" or "–" before the first finished delivery.
    pub rate: String,
    /// ok, warn, bad or muted.
    pub rate_state: &'static str,
    pub last_error: String,
    pub failed: usize,
}

pub struct DeliveryRow {
    pub id: u64,
    pub webhook_id: String,
    pub state: &'static str,
    pub pill: &'static str,
    pub attempts: u32,
    pub next_attempt: Option<Stamp>,
    pub last_attempt: Option<Stamp>,
    pub status_code: String,
    pub error: String,
    pub created: Stamp,
    pub redeliverable: bool,
}

#[derive(Template)]
#[template(path = "admin/listeners.html")]
struct ListenersPage {
    chrome: Chrome,
    listeners: Vec<ListenerRow>,
    /// (WABA id, account name) of every connected account, for the add form.
    wabas: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/listener.html")]
struct ListenerPage {
    chrome: Chrome,
    listener: ListenerRow,
    deliveries: Vec<DeliveryRow>,
    /// Delivered and failed attempts over the last 24 hours.
    traffic: Svg,
}

pub async fn page(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let names = account_names(cx)?;
    let mut listeners = Vec::new();
    for l in cx.state.store.listeners()? {
        let recent = cx.state.store.deliveries_of(&l.id, RECENT)?;
        listeners.push(listener_row(&l, &names, &recent));
    }
    listeners.sort_by(|a, b| (&a.account, &a.waba_id).cmp(&(&b.account, &b.waba_id)));
    let wabas = cx
        .state
        .store
        .accounts()?
        .into_iter()
        .flat_map(|a| a.waba_ids.into_iter().map(move |w| (w, a.name.clone())))
        .collect();
    let page = ListenersPage {
        chrome: cx.chrome("listeners"),
        listeners,
        wabas,
    };
    Ok(html(StatusCode::OK, &page))
}

pub async fn detail(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let id = listener_id(cx);
    let l = listeners::any(cx.state, &id)?;
    let recent = cx.state.store.deliveries_of(id.as_str(), RECENT)?;
    let page = ListenerPage {
        chrome: cx.chrome("listeners"),
        listener: listener_row(&l, &account_names(cx)?, &recent),
        deliveries: recent.iter().map(|d| delivery_row(d, cx.now)).collect(),
        traffic: Chart {
            id: "deliveries-chart",
            what: "Delivery attempts",
            series: &cx.state.traffic.deliveries(id.as_str(), cx.now),
        }
        .draw(),
    };
    Ok(html(StatusCode::OK, &page))
}

fn account_names(cx: &Ctx<'_>) -> Result<HashMap<String, String>, Error> {
    Ok(cx
        .state
        .store
        .accounts()?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect())
}

fn listener_row(l: &Listener, names: &HashMap<String, String>, recent: &[Delivery]) -> ListenerRow {
    let done = |s| recent.iter().filter(|d| d.state == s).count();
    let (ok, failed) = (done(DeliveryState::Succeeded), done(DeliveryState::Failed));
    let (rate, rate_state) = match ok + failed {
        0 => ("–".to_string(), "muted"),
        n => {
            let pct = ok * 100 / n;
            let state = match pct {
                95.. => "ok",
                70.. => "warn",
                _ => "bad",
            };
            (format!("{pct} %"), state)
        }
    };
    ListenerRow {
        id: l.id.clone(),
        account: names
            .get(&l.account_id)
            .cloned()
            .unwrap_or_else(|| l.account_id.clone()),
        waba_id: l.waba_id.clone(),
        sandbox: is_sandbox_id(&l.waba_id),
        kind: l.subscribed().join(", "),
        filters: filters_text(&l.filters),
        format: match l.format {
            Format::Standard => "standard",
            Format::Meta => "meta",
        },
        url: l.url.clone(),
        state: match (&l.stopped_reason, l.paused) {
            (Some(_), _) => "stopped",
            (None, true) => "paused",
            (None, false) => "active",
        },
        stopped_reason: l.stopped_reason.clone().unwrap_or_default(),
        rate,
        rate_state,
        last_error: recent
            .iter()
            .find_map(|d| d.last_error.clone())
            .unwrap_or_default(),
        failed,
    }
}

fn filters_text(f: &Filters) -> String {
    [
        ("phone numbers", &f.phone_number_ids),
        ("statuses", &f.statuses),
        ("message types", &f.message_types),
    ]
    .iter()
    .filter(|(_, list)| !list.is_empty())
    .map(|(name, list)| format!("{name}: {}", list.join(", ")))
    .collect::<Vec<_>>()
    .join("; ")
}

fn delivery_row(d: &Delivery, now: u64) -> DeliveryRow {
    let (state, pill) = match d.state {
        DeliveryState::Pending if d.attempts > 0 => ("retrying", "warn"),
        DeliveryState::Pending => ("pending", "muted"),
        DeliveryState::Succeeded => ("succeeded", "ok"),
        DeliveryState::Failed => ("failed", "bad"),
        DeliveryState::Cancelled => ("cancelled", "muted"),
    };
    DeliveryRow {
        id: d.id,
        webhook_id: d.webhook_id.clone(),
        state,
        pill,
        attempts: d.attempts,
        next_attempt: d.next_attempt_at.map(|t| stamp(t, now)),
        last_attempt: d.last_attempt_at.map(|t| stamp(t, now)),
        status_code: d
            .last_status_code
            .map(|c| c.to_string())
            .unwrap_or_default(),
        error: d.last_error.clone().unwrap_or_default(),
        created: stamp(d.created_at, now),
        redeliverable: matches!(d.state, DeliveryState::Failed | DeliveryState::Cancelled),
    }
}

/// The admin registers a listener for a connected account's WABA, e.g. an
/// n8n webhook URL pasted in: the same checks as the flow API's.
pub async fn add(cx: &Ctx<'_>, form: &Form) -> Result<Done, Error> {
    let waba_id = form.get("wabaId").trim();
    let requested = Requested {
        events: Some(Value::from(form.list("events"))),
        format: Some(form.get("format").to_string()).filter(|f| !f.is_empty()),
        ..Requested::default()
    };
    let asked = NewListener {
        waba_id,
        requested: &requested,
        url: form.get("url"),
    };
    let listener = listeners::register_for_admin(cx.state, asked).await?;
    Ok(Done::to(
        format!("{LISTENERS}/{}", listener.id),
        Flash::ok(format!(
            "Listener added for WABA {waba_id} ({}). Its signing secret is shown this once: copy it into the flow tool now.",
            listener.events.join(", ")
        ))
        .with_secret(listener.secret),
    ))
}

pub async fn pause(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    paused(cx, true).await
}

pub async fn resume(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    paused(cx, false).await
}

async fn paused(cx: &Ctx<'_>, paused: bool) -> Result<Done, Error> {
    let id = listener_id(cx);
    listeners::set_paused(cx.state, &id, paused).await?;
    Ok(Done::to(
        listener_page(id.as_str()),
        Flash::ok(if paused {
            "Listener paused: new events are not queued for it until you resume it."
        } else {
            "Listener resumed: new events are queued for it again."
        }),
    ))
}

pub async fn test(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    let listener = listeners::any(cx.state, &listener_id(cx))?;
    let d = listeners::queue_test(cx.state, &listener).await?;
    Ok(Done::to(
        listener_page(&listener.id),
        Flash::ok(format!(
            "Test event queued as delivery {}: a sample {} event marked \"test\": true, for this listener only.",
            d.id,
            listener.subscribed().join(", ")
        )),
    ))
}

pub async fn redeliver_failed(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    let listener = listeners::any(cx.state, &listener_id(cx))?;
    let flash = Flash::ok(
        match listeners::redeliver_failed(cx.state, &listener).await? {
            1 => "1 failed delivery queued again.".to_string(),
            n => format!("{n} failed deliveries queued again."),
        },
    );
    Ok(Done::to(listener_page(&listener.id), flash))
}

pub async fn redeliver(cx: &Ctx<'_>, _: &Form) -> Result<Done, Error> {
    let listener = listeners::any(cx.state, &listener_id(cx))?;
    let delivery = listeners::redeliver(cx.state, &listener, cx.param("deliveryId")).await?;
    Ok(Done::to(
        listener_page(&listener.id),
        Flash::ok(format!(
            "Delivery {} queued again (same webhook-id).",
            delivery.id
        )),
    ))
}

fn listener_id(cx: &Ctx<'_>) -> ListenerId {
    ListenerId::new(cx.param("listenerId"))
}

fn listener_page(id: &str) -> String {
    format!("{LISTENERS}/{id}")
}
