//! Reads that take their owner: what an account's key lists or opens is
//! chosen here, by the store, so a front-end cannot show another account's
//! rows by forgetting a filter.

use super::codec::dec;
use super::status_row;
use super::tables::{DELIVERIES, LISTENERS, STATUSES, TEMPLATE_HISTORY};
use super::Store;
use crate::domain::model::{Delivery, Listener, StatusRecord};
use crate::domain::template_history::TemplateChange;
use crate::error::Error;

impl Store {
    /// The listeners of one account; only theirs have their secrets opened.
    pub fn listeners_of(&self, account_id: &str) -> Result<Vec<Listener>, Error> {
        self.read(|tx| {
            super::listeners::sealed_of(&tx.open_table(LISTENERS)?, account_id)?
                .into_iter()
                .map(|l| self.sealer.open_sealed_listener(l))
                .collect()
        })
    }

    /// One delivery, if it is `listener_id`'s.
    pub fn delivery_of(&self, listener_id: &str, id: u64) -> Result<Option<Delivery>, Error> {
        self.read(|tx| {
            let t = tx.open_table(DELIVERIES)?;
            let v = t.get(id)?;
            let d: Option<Delivery> = v.map(|v| dec(v.value(), "delivery")).transpose()?;
            Ok(d.filter(|d| d.listener_id == listener_id))
        })
    }

    /// A message's status records that belong to one of `waba_ids`.
    pub fn status_history_in(
        &self,
        message_id: &str,
        waba_ids: &[String],
    ) -> Result<Vec<StatusRecord>, Error> {
        self.read(|tx| {
            let mut out = status_row::history(&tx.open_table(STATUSES)?, message_id)?;
            out.retain(|r| waba_ids.contains(&r.waba_id));
            Ok(out)
        })
    }

    /// What `waba_id`'s template webhooks said of `template_id`, oldest
    /// first; what another WABA's webhooks said of the same id is left out.
    pub fn template_history_in(
        &self,
        template_id: &str,
        waba_id: &str,
    ) -> Result<Vec<TemplateChange>, Error> {
        self.read(|tx| {
            let t = tx.open_table(TEMPLATE_HISTORY)?;
            let mut out = Vec::new();
            for row in t.range((template_id, 0)..=(template_id, u64::MAX))? {
                let change: TemplateChange = dec(row?.1.value(), "template history")?;
                if change.waba_id == waba_id {
                    out.push(change);
                }
            }
            Ok(out)
        })
    }
}
