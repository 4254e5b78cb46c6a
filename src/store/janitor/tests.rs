use super::*;
use crate::domain::model::InboundEvent;

fn event(key: &str) -> InboundEvent {
    InboundEvent {
        event_type: crate::domain::events::MESSAGE_STATUS.into(),
        waba_id: "W".into(),
        phone_number_id: "P".into(),
        dedupe_key: key.into(),
        body: b"{}".to_vec(),
        status: Some(crate::domain::model::StatusRecord {
            message_id: key.into(),
            status: "sent".into(),
            timestamp: None,
            recipient_id: None,
            recipient_user_id: None,
            errors: None,
            conversation: None,
            pricing: None,
            waba_id: "W".into(),
            phone_number_id: "P".into(),
            received_at: 0,
            ..Default::default()
        }),
        sender: None,
        media_id: None,
        ..Default::default()
    }
}

#[tokio::test]
async fn old_rows_go_and_recent_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
    store
        .ingest(vec![event("old-1"), event("old-2")], 1_000)
        .await
        .unwrap();
    store.ingest(vec![event("new-1")], 5_000).await.unwrap();

    let threshold = store.first_event_at_or_after(2_000).unwrap();
    assert_eq!(threshold, 3);
    assert_eq!(store.prune_events(threshold).await.unwrap(), 2);
    assert_eq!(
        store.prune_dedupe(threshold, None).await.unwrap().removed,
        2
    );
    assert_eq!(
        store.prune_statuses(threshold, None).await.unwrap().removed,
        2
    );
    assert_eq!(store.prune_events(threshold).await.unwrap(), 0);

    assert!(store.status_history("old-1").unwrap().is_empty());
    assert_eq!(store.status_history("new-1").unwrap().len(), 1);
    // The recent event's dedupe key is still there: a redelivery stays a duplicate.
    let again = store.ingest(vec![event("new-1")], 6_000).await.unwrap();
    assert_eq!(again.duplicates, 1);

    store
        .quarantine("old".into(), b"x".to_vec(), 1_000)
        .await
        .unwrap();
    store
        .quarantine("new".into(), b"y".to_vec(), 5_000)
        .await
        .unwrap();
    assert_eq!(store.prune_quarantine(2_000).await.unwrap(), 1);
    let left = store.quarantined(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].reason, "new");
    store.close();
}

#[tokio::test]
async fn a_pass_goes_on_where_its_last_batch_stopped_and_misses_no_old_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
    // Old and new rows interleaved by key; more old ones than a batch takes.
    let n = BATCH + 500;
    let old = (0..n).map(|i| event(&format!("m{i:05}a"))).collect();
    store.ingest(old, 1_000).await.unwrap();
    let new = (0..n).map(|i| event(&format!("m{i:05}b"))).collect();
    store.ingest(new, 5_000).await.unwrap();
    let threshold = store.first_event_at_or_after(2_000).unwrap();

    let first = store.prune_statuses(threshold, None).await.unwrap();
    assert_eq!(first.removed, BATCH);
    let (message, _) = first.next.clone().unwrap();
    assert!(
        message.ends_with('a'),
        "stopped at the last old row it took"
    );
    let second = store.prune_statuses(threshold, first.next).await.unwrap();
    assert_eq!(
        second,
        Pruned {
            removed: 500,
            next: None
        }
    );
    assert!(store
        .status_history(&format!("m{:05}a", n - 1))
        .unwrap()
        .is_empty());
    assert_eq!(store.status_history("m00000b").unwrap().len(), 1);

    let mut dedupe = store.prune_dedupe(threshold, None).await.unwrap();
    let mut removed = dedupe.removed;
    while let Some(after) = dedupe.next {
        dedupe = store.prune_dedupe(threshold, Some(after)).await.unwrap();
        removed += dedupe.removed;
    }
    assert_eq!(removed, n);
    store.close();
}

#[tokio::test]
async fn a_templates_history_is_kept_per_waba_in_order_and_expires_with_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_beside(&dir.path().join("db.redb")).unwrap();
    let webhook = |waba: &str, field: &str, value: serde_json::Value| {
        let body = serde_json::json!({"object": "whatsapp_business_account",
            "entry": [{"id": waba, "changes": [{"field": field, "value": value}]}]});
        crate::domain::webhook::parse(&serde_json::to_vec(&body).unwrap(), 1_000).unwrap()
    };
    let approved = webhook(
        "W1",
        "message_template_status_update",
        serde_json::json!({"event": "APPROVED", "message_template_id": 77, "reason": "NONE"}),
    );
    store.ingest(approved.clone(), 1_000).await.unwrap();
    // Meta's redelivery adds nothing.
    store.ingest(approved, 1_500).await.unwrap();
    let paused = webhook(
        "W1",
        "message_template_status_update",
        serde_json::json!({"event": "PAUSED", "message_template_id": 77, "reason": "LOW_QUALITY"}),
    );
    let elsewhere = webhook(
        "W2",
        "message_template_quality_update",
        serde_json::json!({"new_quality_score": "RED", "message_template_id": 77}),
    );
    store
        .ingest([paused, elsewhere].concat(), 5_000)
        .await
        .unwrap();
    let history = store.template_history_in("77", "W1").unwrap();
    let statuses: Vec<_> = history.iter().map(|c| c.status.as_deref()).collect();
    assert_eq!(statuses, [Some("APPROVED"), Some("PAUSED")]);
    assert_eq!(store.template_history_in("77", "W2").unwrap().len(), 1);
    assert!(store.template_history_in("7", "W1").unwrap().is_empty());

    let threshold = store.first_event_at_or_after(2_000).unwrap();
    let pruned = store.prune_template_history(threshold, None).await.unwrap();
    assert_eq!((pruned.removed, pruned.next), (1, None));
    let history = store.template_history_in("77", "W1").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].reason.as_deref(), Some("LOW_QUALITY"));
    store.close();
}
