//! What wabridge learns per WABA (`WabaFacts`): its Marketing Messages Lite
//! onboarding, recorded in the ingest transaction of Meta's `account_update`
//! webhook, and its coexistence and higher-throughput numbers, from the
//! listings of its numbers.

use redb::{ReadableTable, WriteTransaction};

use super::codec::{dec, enc};
use super::tables::WABA_FACTS;
use super::Store;
use crate::domain::marketing::MarketingState;
use crate::domain::model::{InboundEvent, WabaFacts};
use crate::domain::webhook::marketing_terms_signed;
use crate::error::Error;

impl Store {
    /// What wabridge knows of each of `wabas` (default facts for one it knows nothing of).
    pub fn waba_facts(&self, wabas: &[String]) -> Result<Vec<(String, WabaFacts)>, Error> {
        self.read(|tx| {
            let t = tx.open_table(WABA_FACTS)?;
            wabas
                .iter()
                .map(|w| {
                    let facts = match t.get(w.as_str())? {
                        Some(v) => dec(v.value(), "WABA facts")?,
                        None => WabaFacts::default(),
                    };
                    Ok((w.clone(), facts))
                })
                .collect()
        })
    }

    /// The facts of every WABA wabridge knows, to restore the numbers' send
    /// rates at start.
    pub fn every_waba_facts(&self) -> Result<Vec<WabaFacts>, Error> {
        self.read(|tx| {
            let t = tx.open_table(WABA_FACTS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (waba, value) = row?;
                // A rate hint is not worth refusing to start over: the
                // number's next listing learns it again.
                match dec::<WabaFacts>(value.value(), "WABA facts") {
                    Ok(facts) => out.push(facts),
                    Err(e) => {
                        tracing::warn!(waba = waba.value(), error = %e, "WABA facts unreadable; its numbers send at the default rate until listed again")
                    }
                }
            }
            Ok(out)
        })
    }

    /// Records which numbers of `waba` are coexistence numbers and which
    /// have the higher throughput (each sorted), as its latest listing says;
    /// writes only when that changed.
    pub async fn set_number_facts(
        &self,
        waba: String,
        coexistence: Vec<String>,
        high_throughput: Vec<String>,
    ) -> Result<(), Error> {
        let known = self.waba_facts(std::slice::from_ref(&waba))?;
        let unchanged = known.first().is_some_and(|(_, f)| {
            f.coexistence_numbers == coexistence && f.high_throughput_numbers == high_throughput
        });
        if unchanged {
            return Ok(());
        }
        self.write(move |tx| {
            update(tx, &waba, |facts| {
                facts.coexistence_numbers.clone_from(&coexistence);
                facts.high_throughput_numbers.clone_from(&high_throughput);
            })
        })
        .await
    }
}

/// Changes the facts of `waba` in `tx`.
fn update(
    tx: &WriteTransaction,
    waba: &str,
    change: impl FnOnce(&mut WabaFacts),
) -> Result<(), Error> {
    let mut t = tx.open_table(WABA_FACTS)?;
    let mut facts: WabaFacts = match t.get(waba)? {
        Some(v) => dec(v.value(), "WABA facts")?,
        None => WabaFacts::default(),
    };
    change(&mut facts);
    t.insert(waba, enc(&facts, "WABA facts")?.as_slice())?;
    Ok(())
}

/// Part of the ingest transaction: a WABA whose business accepted the MM
/// Lite terms is recorded as onboarded (the first time Meta said so is kept).
pub(super) fn learn_from(
    tx: &WriteTransaction,
    event: &InboundEvent,
    now_ms: u64,
) -> Result<(), Error> {
    let Some((waba, name)) = marketing_terms_signed(event) else {
        return Ok(());
    };
    update(tx, &waba, |facts| {
        if facts.marketing.is_none() {
            facts.marketing = Some(MarketingState {
                event: name,
                at: now_ms,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook::parse;
    use serde_json::json;

    #[tokio::test]
    async fn terms_signed_and_coexistence_numbers_are_kept_per_waba() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
        let body = serde_json::to_vec(&json!({"object": "whatsapp_business_account", "entry": [
            {"id": "BIZ", "changes": [{"field": "account_update", "value": {"event": "MM_LITE_TERMS_SIGNED",
                "waba_info": {"waba_id": "W1", "owner_business_id": "BIZ"}}}]}
        ]}))
        .unwrap();
        store.ingest(parse(&body, 5).unwrap(), 5).await.unwrap();
        store
            .set_number_facts("W2".into(), vec!["P1".into(), "P2".into()], vec![])
            .await
            .unwrap();
        store
            .set_number_facts("W3".into(), vec![], vec!["P9".into()])
            .await
            .unwrap();
        let facts = store
            .waba_facts(&["W1".into(), "W2".into(), "W3".into()])
            .unwrap();
        let signed = facts[0].1.marketing.clone().unwrap();
        assert_eq!(signed.event, "MM_LITE_TERMS_SIGNED");
        assert_eq!(facts[1].1.coexistence_numbers, ["P1", "P2"]);
        assert_eq!(facts[2].1.high_throughput_numbers, ["P9"]);
        let every = |pick: fn(WabaFacts) -> Vec<String>| -> Vec<String> {
            let all = store.every_waba_facts().unwrap();
            all.into_iter().flat_map(pick).collect()
        };
        assert_eq!(every(|f| f.coexistence_numbers), ["P1", "P2"]);
        assert_eq!(every(|f| f.high_throughput_numbers), ["P9"]);
        store
            .set_number_facts("W2".into(), vec![], vec![])
            .await
            .unwrap();
        assert!(every(|f| f.coexistence_numbers).is_empty());
        assert_eq!(every(|f| f.high_throughput_numbers), ["P9"]);
        let facts = store.waba_facts(&["W4".into()]).unwrap();
        assert_eq!(facts[0].1, WabaFacts::default());
        store.close();
    }
}
