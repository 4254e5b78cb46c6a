//! Flow webhooks (listeners), their routing index and their deliveries.

use redb::{ReadableTable, WriteTransaction};

use super::codec::{dec, enc};
use super::tables::{
    DELIVERIES, LISTENERS, LISTENER_DELIVERIES, LISTENER_ROUTES, OUTBOX, URGENT_OUTBOX,
};
use super::Store;
use crate::domain::model::{Delivery, DeliveryState, Listener};
use crate::error::Error;

impl Store {
    pub async fn insert_listener(&self, listener: Listener) -> Result<(), Error> {
        let sealed = self.sealer.seal_listener(&listener)?;
        self.write(move |tx| {
            tx.open_table(LISTENERS)?
                .insert(listener.id.as_str(), sealed.as_slice())?;
            add_routes(tx, &listener)
        })
        .await?;
        self.listeners_changed();
        Ok(())
    }

    pub fn listener(&self, id: &str) -> Result<Option<Listener>, Error> {
        self.read(|tx| {
            let t = tx.open_table(LISTENERS)?;
            let v = t.get(id)?;
            v.map(|v| self.sealer.open_listener(v.value())).transpose()
        })
    }

    /// Listeners by state for monitors: (active, paused, stopped). Decodes
    /// the records without opening their secrets: `/metrics` is
    /// unauthenticated and scraped often, and needs no secret.
    pub fn listener_counts(&self) -> Result<(u64, u64, u64), Error> {
        self.read(|tx| {
            let (mut active, mut paused, mut stopped) = (0, 0, 0);
            for row in tx.open_table(LISTENERS)?.iter()? {
                let l: Listener = super::codec::dec(row?.1.value(), "listener")?;
                match (&l.stopped_reason, l.paused) {
                    (Some(_), _) => stopped += 1,
                    (None, true) => paused += 1,
                    (None, false) => active += 1,
                }
            }
            Ok((active, paused, stopped))
        })
    }

    pub fn listeners(&self) -> Result<Vec<Listener>, Error> {
        self.read(|tx| {
            let t = tx.open_table(LISTENERS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                out.push(self.sealer.open_listener(row?.1.value())?);
            }
            Ok(out)
        })
    }

    /// Pauses (no new events are queued for it) or resumes a listener; its
    /// secret is written back sealed as it was read.
    pub async fn set_listener_paused(&self, id: String, paused: bool) -> Result<bool, Error> {
        let changed = self
            .write(move |tx| {
                let mut t = tx.open_table(LISTENERS)?;
                let found: Option<Listener> = match t.get(id.as_str())? {
                    Some(v) => Some(dec(v.value(), "listener")?),
                    None => None,
                };
                let Some(mut listener) = found else {
                    return Ok(false);
                };
                listener.paused = paused;
                t.insert(id.as_str(), enc(&listener, "listener")?.as_slice())?;
                Ok(true)
            })
            .await?;
        self.listeners_changed();
        Ok(changed)
    }

    /// Stops a listener: no new deliveries, pending ones cancelled.
    pub async fn delete_listener(&self, id: String) -> Result<bool, Error> {
        let removed = self
            .write(move |tx| {
                let listener: Option<Listener> = {
                    let t = tx.open_table(LISTENERS)?;
                    let v = t.get(id.as_str())?;
                    v.map(|v| dec(v.value(), "listener")).transpose()?
                };
                match listener {
                    Some(l) => remove_listener(tx, &l).map(|_| true),
                    None => Ok(false),
                }
            })
            .await?;
        self.listeners_changed();
        Ok(removed)
    }

    /// The newest `limit` deliveries of a listener, newest first.
    pub fn deliveries_of(&self, listener_id: &str, limit: usize) -> Result<Vec<Delivery>, Error> {
        self.read(|tx| {
            let index = tx.open_table(LISTENER_DELIVERIES)?;
            let deliveries = tx.open_table(DELIVERIES)?;
            let mut out = Vec::new();
            for row in index
                .range((listener_id, 0)..=(listener_id, u64::MAX))?
                .rev()
            {
                if out.len() >= limit {
                    break;
                }
                let (key, _) = row?;
                if let Some(v) = deliveries.get(key.value().1)? {
                    out.push(dec(v.value(), "delivery")?);
                }
            }
            Ok(out)
        })
    }
}

/// The listeners of one account as stored (secrets sealed); read or write
/// transaction alike.
pub(super) fn sealed_of(
    listeners: &impl ReadableTable<&'static str, &'static [u8]>,
    account_id: &str,
) -> Result<Vec<Listener>, Error> {
    let mut out = Vec::new();
    for row in listeners.iter()? {
        let l: Listener = dec(row?.1.value(), "listener")?;
        if l.account_id == account_id {
            out.push(l);
        }
    }
    Ok(out)
}

/// One route per subscribed pattern: see `LISTENER_ROUTES`.
pub(super) fn add_routes(tx: &WriteTransaction, listener: &Listener) -> Result<(), Error> {
    let mut routes = tx.open_table(LISTENER_ROUTES)?;
    for pattern in listener.subscribed() {
        routes.insert(
            (
                listener.waba_id.as_str(),
                pattern.as_str(),
                listener.id.as_str(),
            ),
            (),
        )?;
    }
    Ok(())
}

pub(super) fn remove_listener(tx: &WriteTransaction, listener: &Listener) -> Result<(), Error> {
    tx.open_table(LISTENERS)?.remove(listener.id.as_str())?;
    let mut routes = tx.open_table(LISTENER_ROUTES)?;
    for pattern in listener.subscribed() {
        routes.remove((
            listener.waba_id.as_str(),
            pattern.as_str(),
            listener.id.as_str(),
        ))?;
    }
    let mut index = tx.open_table(LISTENER_DELIVERIES)?;
    let mut deliveries = tx.open_table(DELIVERIES)?;
    let mut outbox = tx.open_table(OUTBOX)?;
    let mut urgent = tx.open_table(URGENT_OUTBOX)?;
    let lid = listener.id.as_str();
    let ids: Vec<u64> = index
        .range((lid, 0)..=(lid, u64::MAX))?
        .map(|row| row.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for id in ids {
        index.remove((lid, id))?;
        let removed = deliveries.remove(id)?;
        if let Some(v) = removed {
            let d: Delivery = dec(v.value(), "delivery")?;
            if let (DeliveryState::Pending, Some(due)) = (d.state, d.next_attempt_at) {
                outbox.remove((due, id))?;
                urgent.remove((due, id))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::key::tests::listener;
    use crate::store::Store;

    /// What the delivery queue relies on to drop what it read of a listener.
    #[tokio::test]
    async fn every_committed_listener_change_moves_the_version_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("wabridge.redb")).unwrap();
        let mut seen = store.listeners_version();
        let mut moved = |store: &Store, what: &str| {
            let now = store.listeners_version();
            assert!(now > seen, "{what} did not move the version");
            seen = now;
        };
        store.insert_listener(listener()).await.unwrap();
        moved(&store, "adding");
        store
            .set_listener_paused("lst_1".into(), true)
            .await
            .unwrap();
        moved(&store, "pausing");
        store.delete_listener("lst_1".into()).await.unwrap();
        moved(&store, "removing");
        store.close();
    }
}
