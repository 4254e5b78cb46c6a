//! The backoffice's traffic counts (`domain::traffic`): the minutes the
//! counters changed, written together about once a minute, and the last 24
//! hours read back at start.

use std::ops::Bound;

use super::tables::TRAFFIC;
use super::Store;
use crate::domain::traffic::{Kind, Row};
use crate::error::Error;

impl Store {
    /// Every stored minute from `from` on (a row of an unknown kind, which a
    /// newer wabridge could have written, is skipped).
    pub fn traffic_since(&self, from: u64) -> Result<Vec<Row>, Error> {
        self.read(|tx| {
            let t = tx.open_table(TRAFFIC)?;
            let mut rows = Vec::new();
            for row in t.range((from, "", "")..)? {
                let (k, v) = row?;
                let (minute, kind, name) = k.value();
                let (a, b) = v.value();
                if let Some(kind) = Kind::parse(kind) {
                    rows.push(Row {
                        minute,
                        kind,
                        name: name.to_string(),
                        counts: [a, b],
                    });
                }
            }
            Ok(rows)
        })
    }

    /// Writes `rows` (each the whole count of its minute, so writing one
    /// twice is harmless) and removes the minutes before `keep_from`, in one
    /// short commit.
    pub async fn put_traffic(&self, rows: Vec<Row>, keep_from: u64) -> Result<(), Error> {
        self.write(move |tx| {
            let mut t = tx.open_table(TRAFFIC)?;
            for r in &rows {
                t.insert(
                    (r.minute, r.kind.as_str(), r.name.as_str()),
                    (r.counts[0], r.counts[1]),
                )?;
            }
            t.retain_in::<(u64, &str, &str), _>(
                (Bound::Unbounded, Bound::Excluded((keep_from, "", ""))),
                |_, _| false,
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(minute: u64, kind: Kind, name: &str, counts: [u32; 2]) -> Row {
        Row {
            minute,
            kind,
            name: name.into(),
            counts,
        }
    }

    #[tokio::test]
    async fn minutes_are_overwritten_and_the_old_ones_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        let first = vec![
            row(10, Kind::Webhooks, "", [3, 1]),
            row(11, Kind::Events, "whatsapp.message.received", [2, 0]),
            row(12, Kind::Deliveries, "lst_a", [1, 1]),
        ];
        store.put_traffic(first, 0).await.unwrap();
        assert_eq!(store.traffic_since(11).unwrap().len(), 2);
        // The open minute was written again with more; minute 10 left the window.
        let again = vec![row(12, Kind::Deliveries, "lst_a", [4, 1])];
        store.put_traffic(again, 11).await.unwrap();
        assert_eq!(
            store.traffic_since(0).unwrap(),
            [
                row(11, Kind::Events, "whatsapp.message.received", [2, 0]),
                row(12, Kind::Deliveries, "lst_a", [4, 1]),
            ]
        );
    }
}
