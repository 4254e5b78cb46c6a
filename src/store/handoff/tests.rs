use super::*;
use crate::domain::delivery::Next;
use crate::domain::model::InboundEvent;
use crate::domain::test_event::test_event;
use crate::store::key::tests::{listener, LISTENER_SECRET};
use crate::store::Outcome;

fn event(n: u64) -> InboundEvent {
    let l = listener();
    let mut event = test_event(&l.events, &l.waba_id, n).unwrap();
    event.dedupe_key = format!("key-{n}");
    event
}

async fn store_with_listener() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_beside(&dir.path().join("wabridge.redb")).unwrap();
    store.insert_listener(listener()).await.unwrap();
    // What a start leaves to the outbox read is not the subject here.
    assert!(
        store.outbox_unread(Lane::Normal),
        "a start reads the outbox"
    );
    assert!(!store.outbox_unread(Lane::Normal), "once");
    (dir, store)
}

fn handed(store: &Store, in_flight: &HashSet<u64>) -> Vec<Due> {
    let version = store.listeners_version();
    store
        .handed_over(Lane::Normal, 100, version, in_flight)
        .unwrap()
}

#[tokio::test]
async fn an_ingested_delivery_is_handed_over_once_with_its_secret_open_and_its_body() {
    let (_dir, store) = store_with_listener().await;
    let ingested = event(1);
    store.ingest(vec![ingested.clone()], 1).await.unwrap();

    let due = handed(&store, &HashSet::new());
    assert_eq!(due.len(), 1);
    let listener = due[0].listener.as_ref().unwrap();
    assert_eq!(listener.secret, LISTENER_SECRET, "opened, not sealed");
    assert_eq!(due[0].body, ingested.body);
    assert_eq!(due[0].delivery.attempts, 0);
    // The same row, read from the outbox, is the same delivery.
    let read = store.due(Lane::Normal, 1, 10, &HashSet::new()).unwrap();
    assert_eq!(read[0].delivery.id, due[0].delivery.id);
    assert_eq!(read[0].body, due[0].body);
    assert!(handed(&store, &HashSet::new()).is_empty(), "taken once");
    assert!(!store.outbox_unread(Lane::Normal), "nothing left unread");
    store.close();
}

#[tokio::test]
async fn one_read_from_the_outbox_meanwhile_or_already_recorded_is_not_handed_over() {
    let (_dir, store) = store_with_listener().await;
    store.ingest(vec![event(1), event(2)], 1).await.unwrap();
    let read = store.due(Lane::Normal, 1, 10, &HashSet::new()).unwrap();
    let (first, second) = (read[0].delivery.id, read[1].delivery.id);
    // The first is in flight; the second was sent and recorded already.
    store
        .record_outcomes(vec![Outcome {
            delivery_id: second,
            at_ms: 2,
            status_code: Some(200),
            error: None,
            next: Next::Done,
        }])
        .await
        .unwrap();
    assert!(handed(&store, &HashSet::from([first])).is_empty());
    store.close();
}

#[tokio::test]
async fn a_listener_changed_after_the_ingest_leaves_its_deliveries_to_the_outbox_read() {
    let (_dir, store) = store_with_listener().await;
    store.ingest(vec![event(1)], 1).await.unwrap();
    let routed = store.listeners_version();
    store
        .set_listener_paused("lst_1".into(), true)
        .await
        .unwrap();
    assert_ne!(store.listeners_version(), routed);

    assert!(handed(&store, &HashSet::new()).is_empty());
    assert!(store.outbox_unread(Lane::Normal), "read it from the outbox");
    let read = store.due(Lane::Normal, 1, 10, &HashSet::new()).unwrap();
    assert!(read[0].listener.as_ref().unwrap().paused, "as it is now");
    store.close();
}

#[tokio::test]
async fn what_the_queue_cannot_hold_is_left_to_the_outbox_read() {
    let (_dir, store) = store_with_listener().await;
    let events: Vec<_> = (0..CAP as u64 + 3).map(event).collect();
    store.ingest(events, 1).await.unwrap();
    assert!(store.outbox_unread(Lane::Normal));
    let version = store.listeners_version();
    let due = store
        .handed_over(Lane::Normal, usize::MAX, version, &HashSet::new())
        .unwrap();
    assert_eq!(due.len(), CAP, "no more than the cap waits in memory");
    let read = store
        .due(
            Lane::Normal,
            1,
            10,
            &due.iter().map(|d| d.delivery.id).collect(),
        )
        .unwrap();
    assert_eq!(read.len(), 3, "the rest come from the outbox");
    store.close();
}

#[tokio::test]
async fn redeliveries_and_test_events_are_left_to_the_outbox_read() {
    let (_dir, store) = store_with_listener().await;
    let l = listener();
    let delivery = store
        .queue_test_event(event(1), l.clone(), 1)
        .await
        .unwrap();
    assert!(store.outbox_unread(Lane::Normal));
    assert!(handed(&store, &HashSet::new()).is_empty());
    store
        .record_outcomes(vec![Outcome {
            delivery_id: delivery.id,
            at_ms: 2,
            status_code: None,
            error: Some("refused".into()),
            next: Next::GiveUp,
        }])
        .await
        .unwrap();
    store.redeliver(delivery.id, 3).await.unwrap();
    assert!(store.outbox_unread(Lane::Normal));
    store.close();
}
