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
    store.handed_over(Lane::Normal, 100, in_flight).unwrap()
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
async fn a_handed_delivery_carries_its_listener_as_it_is_when_taken() {
    let (_dir, store) = store_with_listener().await;
    store.ingest(vec![event(1), event(2)], 1).await.unwrap();
    // The receiver answered 410 to an earlier delivery: the listener is
    // stopped in the same commit as that outcome, before its version moves.
    let older = store.due(Lane::Normal, 1, 1, &HashSet::new()).unwrap();
    store
        .record_outcomes(vec![Outcome {
            delivery_id: older[0].delivery.id,
            at_ms: 2,
            status_code: Some(410),
            error: Some("gone".into()),
            next: Next::StopListener,
        }])
        .await
        .unwrap();

    let due = handed(&store, &HashSet::new());
    assert_eq!(due.len(), 1, "the first is recorded, the second waits");
    let listener = due[0].listener.as_ref().unwrap();
    assert!(
        listener.stopped_reason.is_some(),
        "sent nothing: {listener:?}"
    );
    store.close();
}

#[tokio::test]
async fn a_removed_listeners_handed_delivery_is_not_sent() {
    let (_dir, store) = store_with_listener().await;
    store.ingest(vec![event(1)], 1).await.unwrap();
    store.delete_listener("lst_1".into()).await.unwrap();
    assert!(
        handed(&store, &HashSet::new()).is_empty(),
        "its rows went with it"
    );
    store.close();
}

#[tokio::test]
async fn what_the_queue_cannot_hold_is_left_to_the_outbox_read() {
    let (_dir, store) = store_with_listener().await;
    let events: Vec<_> = (0..CAP as u64 + 3).map(event).collect();
    store.ingest(events, 1).await.unwrap();
    assert!(store.outbox_unread(Lane::Normal));
    let due = store
        .handed_over(Lane::Normal, usize::MAX, &HashSet::new())
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

#[tokio::test]
async fn bodies_past_the_byte_cap_are_left_to_the_outbox_read() {
    let (_dir, store) = store_with_listener().await;
    let big: Vec<_> = (0..3)
        .map(|n| {
            let mut e = event(n);
            e.body = vec![b' '; CAP_BYTES / 2];
            e
        })
        .collect();
    store.ingest(big, 1).await.unwrap();
    assert!(store.outbox_unread(Lane::Normal), "the third did not fit");
    assert_eq!(handed(&store, &HashSet::new()).len(), 2);
    store.close();
}

#[test]
fn a_handover_given_up_flags_its_lanes_for_the_outbox_read() {
    let handoff = Arc::new(Handoff::default());
    for lane in [Lane::Urgent, Lane::Normal] {
        handoff.unread[slot(lane)].store(false, Ordering::Release);
    }
    let fresh = |lane| Fresh {
        due: Due {
            delivery: crate::domain::model::Delivery {
                id: 1,
                webhook_id: "msg_1".into(),
                listener_id: "lst_1".into(),
                event_id: 1,
                state: crate::domain::model::DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: Some(1),
                last_attempt_at: None,
                last_status_code: None,
                last_error: None,
                created_at: 1,
            },
            listener: None,
            body: Vec::new(),
        },
        lane,
    };
    drop(Handover::new(handoff.clone(), vec![fresh(Lane::Urgent)]));
    assert!(handoff.unread[slot(Lane::Urgent)].load(Ordering::Acquire));
    assert!(!handoff.unread[slot(Lane::Normal)].load(Ordering::Acquire));
    Handover::new(handoff.clone(), vec![fresh(Lane::Normal)]).hand_over();
    assert!(!handoff.unread[slot(Lane::Normal)].load(Ordering::Acquire));
    assert_eq!(handoff.waiting(Lane::Normal).items.len(), 1);
}
