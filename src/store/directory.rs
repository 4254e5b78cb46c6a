//! What wabridge learns about phone numbers, users and media: which WABA a
//! phone number belongs to, when each user last wrote to each number (the
//! 24-hour window), which ids name the same person, and whose inbound media
//! a media id is.

use redb::{ReadableTable, WriteTransaction};

use super::tables::{BUSINESS_WABAS, MEDIA, PHONE_NUMBERS, USER_LINKS_SEEN, WINDOWS};
use super::Store;
use crate::domain::model::InboundEvent;
use crate::domain::webhook::business_link;
use crate::error::Error;

/// Where an inbound media file came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOrigin {
    pub waba_id: String,
    pub phone_number_id: String,
}

impl Store {
    /// The WABA a phone number belongs to, if wabridge has learned it.
    pub fn phone_number_waba(&self, phone_number_id: &str) -> Result<Option<String>, Error> {
        self.read(|tx| {
            let t = tx.open_table(PHONE_NUMBERS)?;
            let v = t.get(phone_number_id)?;
            Ok(v.map(|v| v.value().to_string()))
        })
    }

    /// Records (phone number id, WABA id) pairs Meta listed.
    pub async fn remember_phone_numbers(&self, pairs: Vec<(String, String)>) -> Result<(), Error> {
        if pairs.is_empty() {
            return Ok(());
        }
        self.write(move |tx| {
            let mut t = tx.open_table(PHONE_NUMBERS)?;
            for (phone, waba) in &pairs {
                t.insert(phone.as_str(), waba.as_str())?;
            }
            Ok(())
        })
        .await
    }

    /// When the user known as `user_id` (or by an id linked to it) last wrote
    /// to this phone number, in unix ms.
    pub fn last_inbound(&self, phone_number_id: &str, user_id: &str) -> Result<Option<u64>, Error> {
        self.read(|tx| {
            let windows = tx.open_table(WINDOWS)?;
            let links = tx.open_table(USER_LINKS_SEEN)?;
            let mut ids = vec![user_id.to_string()];
            for row in links.range((user_id, "")..)? {
                let (key, _) = row?;
                let (user, other) = key.value();
                if user != user_id {
                    break;
                }
                ids.push(other.to_string());
            }
            let mut last = None;
            for id in &ids {
                if let Some(at) = windows.get((phone_number_id, id.as_str()))? {
                    last = last.max(Some(at.value()));
                }
            }
            Ok(last)
        })
    }

    /// Records that `ids` name one person, e.g. the number a flow sent to and
    /// the `wa_id` Meta answered with, so the window is found by either.
    pub async fn link_ids(&self, ids: Vec<String>, now_ms: u64) -> Result<(), Error> {
        if ids.len() < 2 {
            return Ok(());
        }
        self.write(move |tx| link_all(tx, &ids, now_ms)).await
    }

    /// The WABAs of a business portfolio, as Meta's `account_update` events
    /// taught them (see `domain::webhook::business_link`).
    pub fn business_wabas(&self, business_id: &str) -> Result<Vec<String>, Error> {
        self.read(|tx| {
            let t = tx.open_table(BUSINESS_WABAS)?;
            let mut out = Vec::new();
            for row in t.range((business_id, "")..)? {
                let (key, _) = row?;
                let (business, waba) = key.value();
                if business != business_id {
                    break;
                }
                out.push(waba.to_string());
            }
            Ok(out)
        })
    }

    pub fn media_origin(&self, media_id: &str) -> Result<Option<MediaOrigin>, Error> {
        self.read(|tx| {
            let t = tx.open_table(MEDIA)?;
            let v = t.get(media_id)?;
            Ok(v.map(|v| {
                let (waba, phone, _) = v.value();
                MediaOrigin {
                    waba_id: waba.to_string(),
                    phone_number_id: phone.to_string(),
                }
            }))
        })
    }
}

/// Records, both ways, that `ids` name one person, seen at `now_ms`.
fn link_all(tx: &WriteTransaction, ids: &[String], now_ms: u64) -> Result<(), Error> {
    let mut links = tx.open_table(USER_LINKS_SEEN)?;
    for id in ids {
        for other in ids.iter().filter(|o| *o != id) {
            links.insert((id.as_str(), other.as_str()), now_ms)?;
        }
    }
    Ok(())
}

/// Part of the ingest transaction: what one new event teaches.
pub(super) fn learn_from(
    tx: &WriteTransaction,
    event: &InboundEvent,
    now_ms: u64,
) -> Result<(), Error> {
    let phone = event.phone_number_id.as_str();
    if !phone.is_empty() {
        tx.open_table(PHONE_NUMBERS)?
            .insert(phone, event.waba_id.as_str())?;
    }
    if let Some((business, waba)) = business_link(event) {
        tx.open_table(BUSINESS_WABAS)?
            .insert((business.as_str(), waba.as_str()), ())?;
    }
    super::wabas::learn_from(tx, event, now_ms)?;
    if let Some(sender) = &event.sender {
        let mut windows = tx.open_table(WINDOWS)?;
        for id in &sender.ids {
            let known = windows.get((phone, id.as_str()))?.map(|v| v.value());
            // Meta may deliver an older message late; the window follows the newest.
            if known.is_none_or(|k| k < sender.at_ms) {
                windows.insert((phone, id.as_str()), sender.at_ms)?;
            }
        }
        link_all(tx, &sender.ids, now_ms)?;
    }
    // A status names the recipient by phone and BSUID: the same person, so one window.
    if let Some(status) = &event.status {
        if let (Some(phone_id), Some(user_id)) = (&status.recipient_id, &status.recipient_user_id) {
            link_all(tx, &[phone_id.clone(), user_id.clone()], now_ms)?;
        }
    }
    if let Some(media_id) = &event.media_id {
        tx.open_table(MEDIA)?
            .insert(media_id.as_str(), (event.waba_id.as_str(), phone, now_ms))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::InboundSender;

    fn message(key: &str, ids: &[&str], at_ms: u64) -> InboundEvent {
        InboundEvent {
            event_type: crate::domain::events::MESSAGE_RECEIVED.into(),
            waba_id: "W1".into(),
            phone_number_id: "PN1".into(),
            dedupe_key: key.into(),
            body: b"{}".to_vec(),
            status: None,
            sender: Some(InboundSender {
                ids: ids.iter().map(|s| s.to_string()).collect(),
                at_ms,
            }),
            media_id: Some(format!("media-{key}")),
            ..Default::default()
        }
    }

    /// A status of a message sent to `phone`, naming the recipient's BSUID too.
    fn link_status(phone: &str, bsuid: &str) -> InboundEvent {
        InboundEvent {
            event_type: crate::domain::events::MESSAGE_STATUS.into(),
            sender: None,
            media_id: None,
            status: Some(crate::domain::model::StatusRecord {
                message_id: format!("wamid.TO-{phone}"),
                status: "sent".into(),
                timestamp: None,
                recipient_id: Some(phone.into()),
                recipient_user_id: Some(bsuid.into()),
                errors: None,
                conversation: None,
                pricing: None,
                waba_id: "W1".into(),
                phone_number_id: "PN1".into(),
                received_at: 7,
                ..Default::default()
            }),
            ..message(&format!("s:{phone}"), &[], 0)
        }
    }

    #[tokio::test]
    async fn a_user_is_found_by_phone_or_by_bsuid() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        store
            .ingest(vec![message("m:1", &["420777123456", "CZ.1"], 1_000)], 5)
            .await
            .unwrap();
        // Later the user writes with the BSUID only: the phone's window moves too.
        store
            .ingest(vec![message("m:2", &["CZ.1"], 9_000)], 6)
            .await
            .unwrap();
        // And an older message delivered late moves nothing back.
        store
            .ingest(vec![message("m:3", &["420777123456"], 500)], 7)
            .await
            .unwrap();
        assert_eq!(
            store.last_inbound("PN1", "420777123456").unwrap(),
            Some(9_000)
        );
        assert_eq!(store.last_inbound("PN1", "CZ.1").unwrap(), Some(9_000));
        assert_eq!(store.last_inbound("PN2", "CZ.1").unwrap(), None);
        assert_eq!(
            store.phone_number_waba("PN1").unwrap().as_deref(),
            Some("W1")
        );
        assert_eq!(
            store.media_origin("media-m:1").unwrap(),
            Some(MediaOrigin {
                waba_id: "W1".into(),
                phone_number_id: "PN1".into()
            })
        );
        // A status linking a phone to a BSUID joins their windows.
        store
            .ingest(vec![link_status("420777999999", "CZ.1")], 7)
            .await
            .unwrap();
        assert_eq!(
            store.last_inbound("PN1", "420777999999").unwrap(),
            Some(9_000)
        );
        // Retention: rows older than the cutoff go, newer ones stay.
        assert_eq!(store.prune_media(6, None).await.unwrap().removed, 1);
        assert_eq!(store.prune_windows(6, None).await.unwrap().removed, 0);
        assert_eq!(store.media_origin("media-m:1").unwrap(), None);
        assert!(store.media_origin("media-m:3").unwrap().is_some());
        assert_eq!(store.last_inbound("PN1", "CZ.1").unwrap(), Some(9_000));
        assert_eq!(store.prune_media(9_001, None).await.unwrap().removed, 2);
        assert_eq!(store.prune_windows(9_001, None).await.unwrap().removed, 2);
        assert_eq!(store.last_inbound("PN1", "CZ.1").unwrap(), None);
        store.close();
    }

    #[tokio::test]
    async fn a_link_between_ids_expires_unless_seen_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        store
            .ingest(vec![message("m:1", &["CZ.1"], 1_000)], 50)
            .await
            .unwrap();
        // Seen at 100: our message to 420777999999 went to CZ.1.
        store
            .ingest(vec![link_status("420777999999", "CZ.1")], 100)
            .await
            .unwrap();
        // Seen at 300: another person, whose BSUID starts the same way.
        store
            .ingest(vec![message("m:2", &["420111", "CZ.10"], 2_000)], 300)
            .await
            .unwrap();
        assert_eq!(
            store.last_inbound("PN1", "420777999999").unwrap(),
            Some(1_000)
        );
        assert_eq!(store.last_inbound("PN1", "CZ.1").unwrap(), Some(1_000));

        assert_eq!(store.prune_user_links(200, None).await.unwrap().removed, 2);
        assert_eq!(store.prune_user_links(200, None).await.unwrap().removed, 0);
        assert_eq!(store.last_inbound("PN1", "420777999999").unwrap(), None);
        assert_eq!(store.last_inbound("PN1", "CZ.1").unwrap(), Some(1_000));
        store.close();
    }
}
