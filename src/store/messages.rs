//! Indexes over the message-status history, kept in the ingest transaction:
//! messages by recipient, and messages that got `sent` but nothing after it.

use redb::{ReadableTable, Table, WriteTransaction};

use super::codec::dec;
use super::status_row;
use super::tables::{AWAITING_DELIVERY, STATUSES, STATUS_RECIPIENTS};
use super::Store;
use crate::domain::model::StatusRecord;
use crate::domain::statuses::settles;
use crate::error::Error;

/// A message still waiting for `delivered` (or `read`, or `failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaiting {
    pub sent_at_ms: u64,
    pub message_id: String,
}

pub(super) struct Indexes<'t> {
    pub recipients: Table<'t, (&'static str, &'static str), u64>,
    pub awaiting: Table<'t, (u64, &'static str), u64>,
}

impl<'t> Indexes<'t> {
    pub fn open(tx: &'t WriteTransaction) -> Result<Self, Error> {
        Ok(Indexes {
            recipients: tx.open_table(STATUS_RECIPIENTS)?,
            awaiting: tx.open_table(AWAITING_DELIVERY)?,
        })
    }

    /// Indexes a status before it joins the history in `statuses`.
    pub fn add(
        &mut self,
        statuses: &Table<'_, (&'static str, u64), &'static [u8]>,
        status: &StatusRecord,
        event_id: u64,
    ) -> Result<(), Error> {
        let message = status.message_id.as_str();
        for who in [&status.recipient_id, &status.recipient_user_id]
            .into_iter()
            .flatten()
        {
            self.recipients.insert((who.as_str(), message), event_id)?;
        }
        let earlier = status_row::history(statuses, message)?;
        if status.status == "sent" {
            if !earlier.iter().any(|r| settles(&r.status)) {
                self.awaiting
                    .insert((status.received_at, message), event_id)?;
            }
        } else if settles(&status.status) {
            for sent in earlier.iter().filter(|r| r.status == "sent") {
                self.awaiting.remove((sent.received_at, message))?;
            }
        }
        Ok(())
    }
}

/// Builds both indexes from the whole history (the migration to schema version 3).
/// The history is keyed by (message, event), so each message's rows come together.
/// Its rows are still JSON then: the binary layout came with version 8.
pub(super) fn backfill(tx: &WriteTransaction) -> Result<(), Error> {
    let mut by_message: Vec<(u64, StatusRecord)> = Vec::new();
    let statuses = tx.open_table(STATUSES)?;
    let mut indexes = Indexes::open(tx)?;
    for row in statuses.iter()? {
        let (key, value) = row?;
        let record: StatusRecord = dec(value.value(), "status")?;
        if by_message
            .first()
            .is_some_and(|(_, r)| r.message_id != record.message_id)
        {
            indexes.backfill_message(&by_message)?;
            by_message.clear();
        }
        by_message.push((key.value().1, record));
    }
    indexes.backfill_message(&by_message)
}

impl Indexes<'_> {
    fn backfill_message(&mut self, rows: &[(u64, StatusRecord)]) -> Result<(), Error> {
        let Some((newest, _)) = rows.last() else {
            return Ok(());
        };
        for (_, r) in rows {
            let message = r.message_id.as_str();
            for who in [&r.recipient_id, &r.recipient_user_id]
                .into_iter()
                .flatten()
            {
                self.recipients.insert((who.as_str(), message), *newest)?;
            }
        }
        let settled = rows.iter().any(|(_, r)| settles(&r.status));
        if let Some((event, sent)) = rows.iter().find(|(_, r)| r.status == "sent") {
            if !settled {
                self.awaiting
                    .insert((sent.received_at, sent.message_id.as_str()), *event)?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// Ids of the messages sent to a phone number or BSUID, newest first.
    pub fn messages_to(&self, recipient: &str, limit: usize) -> Result<Vec<String>, Error> {
        self.read(|tx| {
            let t = tx.open_table(STATUS_RECIPIENTS)?;
            let mut found: Vec<(u64, String)> = Vec::new();
            for row in t.range((recipient, "")..)? {
                let (key, event) = row?;
                let (who, message) = key.value();
                if who != recipient {
                    break;
                }
                found.push((event.value(), message.to_string()));
            }
            found.sort_by_key(|(event, _)| std::cmp::Reverse(*event));
            Ok(found.into_iter().take(limit).map(|(_, m)| m).collect())
        })
    }

    /// Messages that got `sent` before `sent_before_ms` and nothing after it, newest first.
    pub fn awaiting_delivery(
        &self,
        sent_before_ms: u64,
        limit: usize,
    ) -> Result<Vec<Awaiting>, Error> {
        self.read(|tx| {
            let t = tx.open_table(AWAITING_DELIVERY)?;
            let mut out = Vec::new();
            for row in t.range((0, "")..(sent_before_ms, ""))?.rev().take(limit) {
                let (key, _) = row?;
                let (sent_at_ms, message) = key.value();
                out.push(Awaiting {
                    sent_at_ms,
                    message_id: message.to_string(),
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::InboundEvent;

    fn status(message: &str, status: &str, to: &str, at: u64) -> InboundEvent {
        InboundEvent {
            event_type: crate::domain::events::MESSAGE_STATUS.into(),
            waba_id: "W".into(),
            phone_number_id: "P".into(),
            dedupe_key: format!("s:{message}:{status}"),
            body: b"{}".to_vec(),
            status: Some(StatusRecord {
                message_id: message.into(),
                status: status.into(),
                timestamp: None,
                recipient_id: Some(to.into()),
                recipient_user_id: Some(format!("US.{to}")),
                errors: None,
                conversation: None,
                pricing: None,
                waba_id: "W".into(),
                phone_number_id: "P".into(),
                received_at: at,
                ..Default::default()
            }),
            sender: None,
            media_id: None,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn sent_without_delivered_is_listed_until_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        store
            .ingest(vec![status("m1", "sent", "420111", 1_000)], 1_000)
            .await
            .unwrap();
        store
            .ingest(vec![status("m2", "sent", "420111", 2_000)], 2_000)
            .await
            .unwrap();
        // m3: delivered arrives before sent (Meta does not promise the order).
        store
            .ingest(vec![status("m3", "delivered", "420222", 3_000)], 3_000)
            .await
            .unwrap();
        store
            .ingest(vec![status("m3", "sent", "420222", 3_100)], 3_100)
            .await
            .unwrap();
        let ids = |v: Vec<Awaiting>| v.into_iter().map(|a| a.message_id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.awaiting_delivery(10_000, 10).unwrap()),
            ["m2", "m1"]
        );
        assert_eq!(ids(store.awaiting_delivery(1_500, 10).unwrap()), ["m1"]);

        store
            .ingest(vec![status("m1", "failed", "420111", 4_000)], 4_000)
            .await
            .unwrap();
        assert_eq!(ids(store.awaiting_delivery(10_000, 10).unwrap()), ["m2"]);

        assert_eq!(store.messages_to("420111", 10).unwrap(), ["m1", "m2"]);
        assert_eq!(store.messages_to("US.420222", 10).unwrap(), ["m3"]);
        assert!(store.messages_to("4201", 10).unwrap().is_empty());

        assert_eq!(store.prune_awaiting_delivery(2_500).await.unwrap(), 1);
        assert!(store.awaiting_delivery(10_000, 10).unwrap().is_empty());
        assert_eq!(
            store
                .prune_status_recipients(3, None)
                .await
                .unwrap()
                .removed,
            2
        );
        assert_eq!(store.messages_to("420111", 10).unwrap(), ["m1"]);
        store.close();
    }
}
