//! Flow webhooks (listeners) and their deliveries: registering one, what its
//! account may see and do with it, test events and redeliveries. Whatever
//! queues a delivery wakes the dispatcher itself.

use std::net::IpAddr;

use serde_json::Value;

use super::access::own_waba;
use super::subscriptions::subscribe;
use super::Services;
use crate::domain::ids::{new_id, new_webhook_secret, ListenerId};
use crate::domain::model::{Account, Delivery, DeliveryState, Listener};
use crate::domain::subscription::Requested;
use crate::domain::test_event::test_event;
use crate::domain::time::now_ms;
use crate::domain::urlguard::{parse_listener_url, UrlGuard};
use crate::error::Error;

/// A new listener as asked: for which WABA, which events, where.
pub struct NewListener<'a> {
    pub waba_id: &'a str,
    pub requested: &'a Requested,
    pub url: &'a str,
}

/// Checks and stores a listener of `account`: the WABA must be the account's,
/// the subscription valid, the URL one the guard permits; the WABA is
/// subscribed to the Meta App first. Returns the listener and Meta's answer
/// to the subscription.
pub async fn register(
    app: &Services,
    account: &Account,
    new: NewListener<'_>,
) -> Result<(Listener, Value), Error> {
    let waba = own_waba(account, new.waba_id.trim())?;
    let wanted = new.requested.check()?;
    let url = check_target(&app.guard, new.url.trim()).await?;
    let subscription = subscribe(app, account, &waba).await?;
    let listener = Listener {
        id: new_id("lst"),
        account_id: account.id.clone(),
        waba_id: waba.to_string(),
        event: wanted.event,
        events: wanted.events,
        filters: wanted.filters,
        format: wanted.format,
        url,
        secret: new_webhook_secret(),
        created_at: now_ms(),
        stopped_reason: None,
        paused: false,
    };
    app.store.insert_listener(listener.clone()).await?;
    tracing::info!(listener = %listener.id, account = %account.id, waba = %listener.waba_id, events = %listener.events.join(","), "listener registered");
    Ok((listener, subscription))
}

/// The admin registers a listener for a connected account's WABA (e.g. an
/// n8n webhook URL pasted into the backoffice), as that account would.
pub async fn register_for_admin(app: &Services, new: NewListener<'_>) -> Result<Listener, Error> {
    let account = app
        .store
        .account_with_waba(new.waba_id.trim())?
        .ok_or_else(|| Error::invalid("wabaId", "choose the WABA of a connected account"))?;
    Ok(register(app, &account, new).await?.0)
}

/// The URL must parse and its host must resolve to an address the guard permits.
pub(super) async fn check_target(guard: &UrlGuard, raw: &str) -> Result<String, Error> {
    let url = parse_listener_url(raw)?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Error::invalid("url", format!("cannot resolve {host}: {e}")))?
            .map(|a| a.ip())
            .collect(),
    };
    // Delivery connects only to permitted addresses (checked again at each attempt),
    // so one is enough here: `localhost` may also resolve to ::1 outside the allowed net.
    match addrs.iter().find(|ip| guard.permits(**ip)) {
        Some(_) => Ok(url.to_string()),
        None => Err(Error::invalid(
            "url",
            addrs
                .first()
                .map(|ip| guard.refusal(*ip))
                .unwrap_or_else(|| format!("{host} has no address")),
        )),
    }
}

/// The listener `id` if `account` owns it; another account's is "not found".
pub fn owned(app: &Services, account: &Account, id: &ListenerId) -> Result<Listener, Error> {
    match app.store.listener(id.as_str())? {
        Some(l) if l.account_id == account.id => Ok(l),
        _ => Err(Error::NotFound("listener")),
    }
}

/// Any listener, for the admin.
pub fn any(app: &Services, id: &ListenerId) -> Result<Listener, Error> {
    app.store
        .listener(id.as_str())?
        .ok_or(Error::NotFound("listener"))
}

pub fn of_account(app: &Services, account: &Account) -> Result<Vec<Listener>, Error> {
    app.store.listeners_of(&account.id)
}

pub async fn remove(app: &Services, listener: &Listener) -> Result<(), Error> {
    app.store.delete_listener(listener.id.clone()).await?;
    tracing::info!(listener = %listener.id, "listener removed");
    Ok(())
}

/// Pauses (no new events are queued for it) or resumes a listener.
pub async fn set_paused(app: &Services, id: &ListenerId, paused: bool) -> Result<(), Error> {
    if !app
        .store
        .set_listener_paused(id.to_string(), paused)
        .await?
    {
        return Err(Error::NotFound("listener"));
    }
    tracing::info!(listener = %id, paused, "listener paused or resumed");
    Ok(())
}

/// The newest `limit` deliveries of a listener, only those in `state` if given.
pub fn deliveries(
    app: &Services,
    listener: &Listener,
    state: Option<DeliveryState>,
    limit: usize,
) -> Result<Vec<Delivery>, Error> {
    let scanned = if state.is_some() { 100_000 } else { limit };
    Ok(app
        .store
        .deliveries_of(&listener.id, scanned)?
        .into_iter()
        .filter(|d| state.is_none_or(|w| d.state == w))
        .take(limit)
        .collect())
}

/// Queues one of the listener's deliveries again (it keeps its `webhook-id`).
/// `delivery` is the id as given: one that is not a number, or not this
/// listener's, is "not found".
pub async fn redeliver(
    app: &Services,
    listener: &Listener,
    delivery: &str,
) -> Result<Delivery, Error> {
    let id: u64 = delivery.parse().map_err(|_| Error::NotFound("delivery"))?;
    if app.store.delivery_of(&listener.id, id)?.is_none() {
        return Err(Error::NotFound("delivery"));
    }
    let d = app.store.redeliver(id, now_ms()).await?;
    app.queued();
    Ok(d)
}

/// Queues every failed delivery of the listener again; returns how many.
pub async fn redeliver_failed(app: &Services, listener: &Listener) -> Result<usize, Error> {
    let failed: Vec<u64> = app
        .store
        .deliveries_of(&listener.id, usize::MAX)?
        .iter()
        .filter(|d| d.state == DeliveryState::Failed)
        .map(|d| d.id)
        .collect();
    let now = now_ms();
    for delivery_id in &failed {
        app.store.redeliver(*delivery_id, now).await?;
    }
    app.queued();
    Ok(failed.len())
}

/// A sample event of the listener's kind for this listener alone, delivered
/// like any other (signed, retried, listed in its deliveries), its body marked
/// `"test": true`. A paused listener gets it (it was asked for); a stopped one
/// cannot.
pub async fn queue_test(app: &Services, listener: &Listener) -> Result<Delivery, Error> {
    if let Some(reason) = &listener.stopped_reason {
        return Err(Error::Conflict(format!(
            "the listener is stopped ({reason}): the flow tool must register it again"
        )));
    }
    let now = now_ms();
    let event = test_event(&listener.subscribed(), &listener.waba_id, now)?;
    let d = app
        .store
        .queue_test_event(event, listener.clone(), now)
        .await?;
    app.queued();
    tracing::info!(listener = %listener.id, delivery = d.id, "test event queued");
    Ok(d)
}
