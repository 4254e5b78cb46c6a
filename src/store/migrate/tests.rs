use super::*;
use crate::domain::model::{ConnectLink, InboundEvent, InboundSender, StatusRecord};
use crate::store::Store;
use redb::ReadableDatabase;

fn sealer() -> Sealer {
    Sealer::new(&crate::store::SecretKey::from_bytes([3; 32]))
}

fn roomy() -> Disk<'static> {
    Disk {
        dir: std::path::Path::new("/data"),
        free: &|| Ok(u64::MAX),
    }
}

fn version_of(db: &Database) -> u64 {
    db.begin_read()
        .unwrap()
        .open_table(META)
        .unwrap()
        .get(SCHEMA_VERSION_KEY)
        .unwrap()
        .unwrap()
        .value()
}

#[test]
fn a_version_1_database_gets_the_connect_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    tx.open_table(META)
        .unwrap()
        .insert(SCHEMA_VERSION_KEY, 1)
        .unwrap();
    tx.open_table(ACCOUNTS).unwrap();
    tx.commit().unwrap();

    run(&db, &sealer(), &roomy()).unwrap();
    let read = db.begin_read().unwrap();
    assert!(read.open_table(CONNECT_LINKS).is_ok());
    assert!(read.open_table(PENDING_LOGINS).is_ok());
    // The later steps ran too, on a history that was not there.
    assert!(read.open_table(STATUS_RECIPIENTS).is_ok());
    assert!(read.open_table(AWAITING_DELIVERY).is_ok());
    assert!(read.open_table(WINDOWS).is_ok());
    drop(read);
    assert_eq!(version_of(&db), SCHEMA_VERSION);
}

#[test]
fn a_version_3_database_gains_the_window_and_directory_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("v3.redb")).unwrap();
    {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, 3)
            .unwrap();
        tx.open_table(EVENTS).unwrap();
        tx.open_table(STATUS_RECIPIENTS).unwrap();
        tx.open_table(AWAITING_DELIVERY).unwrap();
        tx.commit().unwrap();
    }
    run(&db, &sealer(), &roomy()).unwrap();
    assert_eq!(version_of(&db), SCHEMA_VERSION);
    let tx = db.begin_read().unwrap();
    assert!(tx.open_table(WINDOWS).is_ok());
    assert!(tx.open_table(USER_LINKS_SEEN).is_ok());
    assert!(
        tx.open_multimap_table(USER_LINKS_V4).is_err(),
        "the old links table is gone"
    );
    assert!(tx.open_table(PHONE_NUMBERS).is_ok());
    assert!(tx.open_table(MEDIA).is_ok());
    drop(tx);
    run(&db, &sealer(), &roomy()).unwrap();
}

#[tokio::test]
async fn a_version_5_listener_is_routed_by_the_type_its_event_stood_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.redb");
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        create_tables(&tx).unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, 5)
            .unwrap();
        // A listener as version 5 wrote it: `event`, no `events`, routed by kind.
        let old = serde_json::json!({"id": "lst_old", "accountId": "acc", "wabaId": "W1",
            "event": "statuses", "url": "http://127.0.0.1:9/h", "secret": "whsec_AAAA", "createdAt": 1});
        tx.open_table(LISTENERS)
            .unwrap()
            .insert("lst_old", serde_json::to_vec(&old).unwrap().as_slice())
            .unwrap();
        tx.open_table(LISTENER_ROUTES)
            .unwrap()
            .insert(("W1", "statuses", "lst_old"), ())
            .unwrap();
        tx.commit().unwrap();
    }
    let store = Store::open_beside(&path).unwrap();
    let listener = store.listener("lst_old").unwrap().unwrap();
    assert_eq!(listener.events, ["whatsapp.message.status"]);
    let mut event = status("wamid.M5", "delivered", 10);
    event.waba_id = "W1".into();
    let report = store.ingest(vec![event], 10).await.unwrap();
    assert_eq!(
        report.deliveries, 1,
        "the old listener still gets its statuses"
    );
    let mut message = inbound("after", 11);
    message.waba_id = "W1".into();
    let report = store.ingest(vec![message], 11).await.unwrap();
    assert_eq!(report.deliveries, 0, "and nothing else");
    store.close();
}

#[tokio::test]
async fn version_6_plaintext_secrets_are_encrypted_and_leave_no_trace_in_the_file() {
    use crate::store::codec::enc;
    use crate::store::key::tests::{
        account, contains, listener, settings, APP_SECRET, LISTENER_SECRET, TOKEN,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wabridge.redb");
    {
        // As version 6 wrote them: the same JSON, secrets in plaintext.
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        create_tables(&tx).unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, 6)
            .unwrap();
        tx.open_table(SETTINGS)
            .unwrap()
            .insert("app", enc(&settings(), "settings").unwrap().as_slice())
            .unwrap();
        tx.open_table(ACCOUNTS)
            .unwrap()
            .insert("acc_1", enc(&account(), "account").unwrap().as_slice())
            .unwrap();
        tx.open_table(LISTENERS)
            .unwrap()
            .insert("lst_1", enc(&listener(), "listener").unwrap().as_slice())
            .unwrap();
        super::super::listeners::add_routes(&tx, &listener()).unwrap();
        tx.commit().unwrap();
    }
    let raw = std::fs::read(&path).unwrap();
    for secret in [APP_SECRET, TOKEN, LISTENER_SECRET] {
        assert!(contains(&raw, secret), "the old file holds {secret}");
    }
    let key = dir.path().join("secrets.key");
    assert!(!key.exists());

    let store = Store::open_beside(&path).unwrap();
    assert_eq!(store.settings().unwrap().client_secret, APP_SECRET);
    assert_eq!(store.account("acc_1").unwrap().unwrap().access_token, TOKEN);
    assert_eq!(
        store.listener("lst_1").unwrap().unwrap().secret,
        LISTENER_SECRET
    );
    store.close();
    drop(store);
    // Before any later write could reuse the pages the plaintext was in.
    let raw = std::fs::read(&path).unwrap();
    for secret in [APP_SECRET, TOKEN, LISTENER_SECRET] {
        assert!(!contains(&raw, secret), "{secret} left in the file");
    }
    assert_eq!(
        std::fs::read(&key).unwrap().len(),
        32,
        "made at the upgrade"
    );
    assert_eq!(version_of(&Database::open(&path).unwrap()), SCHEMA_VERSION);

    // Routing still finds the listener.
    let store = Store::open_beside(&path).unwrap();
    let mut message = inbound("after-7", 7);
    message.waba_id = "W1".into();
    assert_eq!(store.ingest(vec![message], 7).await.unwrap().deliveries, 1);
    store.close();
    drop(store);
    // From now on the key is needed.
    std::fs::remove_file(&key).unwrap();
    assert!(Store::open_beside(&path).is_err());
}

#[test]
fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("v9.redb")).unwrap();
    let tx = db.begin_write().unwrap();
    tx.open_table(META)
        .unwrap()
        .insert(SCHEMA_VERSION_KEY, 99)
        .unwrap();
    tx.commit().unwrap();
    assert!(matches!(
        run(&db, &sealer(), &roomy()),
        Err(Error::Startup(_))
    ));
}

fn status(message: &str, status: &str, at: u64) -> InboundEvent {
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
            recipient_id: Some("420111".into()),
            recipient_user_id: None,
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

/// The user 420111 writing to P at `at`, with an image.
fn inbound(key: &str, at: u64) -> InboundEvent {
    InboundEvent {
        event_type: crate::domain::events::MESSAGE_RECEIVED.into(),
        waba_id: "W".into(),
        phone_number_id: "P".into(),
        dedupe_key: format!("m:{key}"),
        body: b"{}".to_vec(),
        status: None,
        sender: Some(InboundSender {
            ids: vec!["420111".into()],
            at_ms: at,
        }),
        media_id: Some(format!("media-{key}")),
        ..Default::default()
    }
}

/// Turns a current database back into what `version` had: before 9 no
/// traffic table; at 4 the links
/// without a time; at 3 (the build with the backoffice) no window, link,
/// phone-number or media tables; at 2 (the build with customer connections)
/// no status indexes either; at 1 no connect tables.
fn downgrade_to(path: &std::path::Path, version: u64) {
    let db = Database::builder().create(path).unwrap();
    let tx = db.begin_write().unwrap();
    if version < 9 {
        tx.delete_table(TRAFFIC).unwrap();
    }
    if version < 8 {
        history_as_json(&tx);
    }
    if version == 4 {
        let seen = tx.open_table(USER_LINKS_SEEN).unwrap();
        let mut old = tx.open_multimap_table(USER_LINKS_V4).unwrap();
        for row in seen.iter().unwrap() {
            let (key, _) = row.unwrap();
            let (user, other) = key.value();
            old.insert(user, other).unwrap();
        }
    }
    if version < 5 {
        tx.delete_table(USER_LINKS_SEEN).unwrap();
    }
    if version < 4 {
        tx.delete_table(WINDOWS).unwrap();
        tx.delete_table(PHONE_NUMBERS).unwrap();
        tx.delete_table(MEDIA).unwrap();
    }
    if version < 3 {
        tx.delete_table(STATUS_RECIPIENTS).unwrap();
        tx.delete_table(AWAITING_DELIVERY).unwrap();
    }
    if version < 2 {
        tx.delete_table(CONNECT_LINKS).unwrap();
        tx.delete_table(PENDING_LOGINS).unwrap();
    }
    tx.open_table(META)
        .unwrap()
        .insert(SCHEMA_VERSION_KEY, version)
        .unwrap();
    tx.commit().unwrap();
}

/// Writes the status history back as JSON, as version 7 and earlier kept it.
fn history_as_json(tx: &redb::WriteTransaction) {
    let mut t = tx.open_table(STATUSES).unwrap();
    let rows: Vec<((String, u64), Vec<u8>)> = t
        .iter()
        .unwrap()
        .map(|row| {
            let (k, v) = row.unwrap();
            let (message, event) = k.value();
            let record = crate::store::status_row::decode(message, v.value()).unwrap();
            let json = crate::store::codec::enc(&record, "status").unwrap();
            ((message.to_string(), event), json)
        })
        .collect();
    for ((message, event), json) in rows {
        t.insert((message.as_str(), event), json.as_slice())
            .unwrap();
    }
}

/// A database at `version` with a status history, an inbound message (and,
/// from version 2 on, an open connect link) opens at the current version: its
/// status indexes built from the history, what it had kept, the tables of
/// version 4 empty and working.
async fn reopen_at(version: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let store = Store::open_beside(&path).unwrap();
    for (m, s, at) in [("m1", "sent", 1), ("m1", "delivered", 2), ("m2", "sent", 3)] {
        store.ingest(vec![status(m, s, at)], at).await.unwrap();
    }
    store.ingest(vec![inbound("1", 4)], 4).await.unwrap();
    // A message to 420333 reached the user known as US.9: one person.
    let mut linked = status("m9", "delivered", 4);
    if let Some(s) = linked.status.as_mut() {
        s.recipient_id = Some("420333".into());
        s.recipient_user_id = Some("US.9".into());
    }
    store.ingest(vec![linked], 4).await.unwrap();
    let link = ConnectLink {
        id: "lnk_1".into(),
        created_at: 0,
        expires_at: 1_000,
        used_at: None,
        account_id: None,
        coexistence: false,
    };
    store.insert_connect_link("L1".into(), link).await.unwrap();
    store.close();
    drop(store);
    downgrade_to(&path, version);

    let store = Store::open_beside(&path).unwrap();
    let waiting: Vec<_> = store
        .awaiting_delivery(10, 10)
        .unwrap()
        .into_iter()
        .map(|a| a.message_id)
        .collect();
    assert_eq!(waiting, ["m2"]);
    assert_eq!(store.messages_to("420111", 10).unwrap(), ["m2", "m1"]);
    // Version 2 had the link, and keeps it; version 1 gets the empty tables.
    let links = usize::from(version >= 2);
    assert_eq!(store.open_connect_links(0).unwrap().len(), links);
    assert_eq!(store.connect_link("L1").unwrap().is_some(), version >= 2);
    // Before version 4 nobody's window was recorded: "unknown", not open.
    let known = version >= 4;
    assert_eq!(store.last_inbound("P", "420111").unwrap().is_some(), known);
    assert_eq!(store.phone_number_waba("P").unwrap().is_some(), known);
    assert_eq!(store.media_origin("media-1").unwrap().is_some(), known);
    // US.9 writes: the link kept since version 4 opens the window of 420333 too.
    let mut from_bsuid = inbound("3", 6);
    from_bsuid.sender = Some(InboundSender {
        ids: vec!["US.9".into()],
        at_ms: 6,
    });
    store.ingest(vec![from_bsuid], 6).await.unwrap();
    let linked = store.last_inbound("P", "420333").unwrap();
    assert_eq!(linked, known.then_some(6), "links kept from version 4");
    // Kept links are dated by the migration, so the janitor can expire them.
    let kept = if known { 2 } else { 0 };
    assert_eq!(
        store
            .prune_user_links(u64::MAX, None)
            .await
            .unwrap()
            .removed,
        kept
    );
    // The new tables take what comes in next.
    store.ingest(vec![inbound("2", 5)], 5).await.unwrap();
    assert_eq!(store.last_inbound("P", "420111").unwrap(), Some(5));
    assert_eq!(store.phone_number_waba("P").unwrap().as_deref(), Some("W"));
    assert!(store.media_origin("media-2").unwrap().is_some());
    store.close();
    drop(store);
    assert_eq!(version_of(&Database::open(&path).unwrap()), SCHEMA_VERSION);
}

#[tokio::test]
async fn version_8_gains_the_traffic_table_and_keeps_the_rest() {
    reopen_at(8).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v8.redb");
    let store = Store::open_beside(&path).unwrap();
    store.close();
    drop(store);
    downgrade_to(&path, 8);
    assert!(Database::open(&path)
        .unwrap()
        .begin_read()
        .unwrap()
        .open_table(TRAFFIC)
        .is_err());
    let store = Store::open_beside(&path).unwrap();
    assert_eq!(store.traffic_since(0).unwrap(), []);
    let row = crate::domain::traffic::Row {
        minute: 5,
        kind: crate::domain::traffic::Kind::Webhooks,
        name: String::new(),
        counts: [1, 0],
    };
    store.put_traffic(vec![row.clone()], 0).await.unwrap();
    assert_eq!(store.traffic_since(0).unwrap(), [row]);
}

#[tokio::test]
async fn version_7_gets_its_json_status_history_re_encoded_and_reads_it_the_same() {
    reopen_at(7).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v7.redb");
    let body = include_bytes!("../../../tests/fixtures/statuses/every_status.json");
    let events = crate::domain::webhook::parse(body, 1_764_000_100_123).unwrap();
    let ids: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| e.status.as_ref().map(|s| s.message_id.clone()))
        .collect();
    let store = Store::open_beside(&path).unwrap();
    store.ingest(events, 1_764_000_100_123).await.unwrap();
    let mut sent = status("wamid.OURS", "sent", 5);
    sent.status.as_mut().unwrap().errors = Some(serde_json::Value::Null);
    store.ingest(vec![sent], 5).await.unwrap();
    let histories = |store: &Store| -> Vec<(Vec<StatusRecord>, Vec<StatusRecord>)> {
        ids.iter()
            .chain(["wamid.OURS".to_string()].iter())
            .map(|id| {
                let all = store.status_history(id).unwrap();
                let scoped = store
                    .status_history_in(id, &["102290129340398".into()])
                    .unwrap();
                (all, scoped)
            })
            .collect()
    };
    let before = histories(&store);
    assert_eq!(before.iter().map(|(all, _)| all.len()).sum::<usize>(), 6);
    store.close();
    drop(store);
    downgrade_to(&path, 7);
    let raw = std::fs::read(&path).unwrap();
    let json_rows = raw.windows(12).filter(|w| w == b"{\"messageId\"").count();
    assert!(json_rows >= 6, "the version-7 file holds JSON rows");

    let store = Store::open_beside(&path).unwrap();
    assert_eq!(histories(&store), before);
    // The indexes read the re-encoded rows: `read` settles the sent message.
    let waiting = store.awaiting_delivery(u64::MAX, 10).unwrap();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    store
        .ingest(vec![status("wamid.OURS", "read", 6)], 6)
        .await
        .unwrap();
    assert_eq!(store.awaiting_delivery(u64::MAX, 10).unwrap().len(), 1);
    assert_eq!(store.status_history("wamid.OURS").unwrap().len(), 2);
    store.close();
    drop(store);
    assert_eq!(version_of(&Database::open(&path).unwrap()), SCHEMA_VERSION);
}

#[tokio::test]
async fn version_4_keeps_its_user_links_with_a_time() {
    reopen_at(4).await;
}

#[tokio::test]
async fn version_3_gets_the_window_and_directory_tables_and_keeps_the_rest() {
    reopen_at(3).await;
}

#[tokio::test]
async fn version_2_gets_its_status_indexes_built_from_the_history() {
    reopen_at(2).await;
}

#[tokio::test]
async fn version_1_takes_every_step_in_order_up_to_the_current_one() {
    reopen_at(1).await;
}

#[tokio::test]
async fn the_current_version_opens_as_it_is() {
    reopen_at(SCHEMA_VERSION).await;
}

#[tokio::test]
async fn an_upgrade_without_room_for_the_re_encoded_history_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.redb");
    let store = Store::open_beside(&path).unwrap();
    for (m, at) in [("m1", 1), ("m2", 2), ("m3", 3)] {
        store.ingest(vec![status(m, "sent", at)], at).await.unwrap();
    }
    store.close();
    drop(store);
    // From 6, the secrets step would commit before the history's: the
    // refusal must come before both.
    downgrade_to(&path, 6);

    let db = Database::open(&path).unwrap();
    let needed = 64 * 1024 * 1024 + 3 * 200;
    let tight = Disk {
        dir: dir.path(),
        free: &|| Ok(needed - 1024),
    };
    let Err(Error::Startup(why)) = run(&db, &sealer(), &tight) else {
        panic!("a migration without room must stop the start");
    };
    assert!(why.contains("3 status-history rows"), "{why}");
    assert!(why.contains("free at least 1 KiB more"), "{why}");
    assert!(why.contains(&dir.path().display().to_string()), "{why}");
    assert_eq!(version_of(&db), 6, "no step taken");
    // Free space that cannot be read does not hold the upgrade up.
    let unreadable = Disk {
        free: &|| Err(std::io::Error::other("stale NFS handle")),
        ..tight
    };
    run(&db, &sealer(), &unreadable).unwrap();
    assert_eq!(version_of(&db), SCHEMA_VERSION);
    assert_eq!(history_rows(&db).unwrap(), 3, "the history kept");
}

#[test]
fn a_version_8_database_gains_the_flows_endpoints_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("v8.redb")).unwrap();
    {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, 8)
            .unwrap();
        tx.commit().unwrap();
    }
    run(&db, &sealer(), &roomy()).unwrap();
    assert_eq!(version_of(&db), SCHEMA_VERSION);
    assert!(db.begin_read().unwrap().open_table(FLOWS_ENDPOINTS).is_ok());
}

#[test]
fn a_version_10_database_gains_the_waba_facts_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("v10.redb")).unwrap();
    {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, 10)
            .unwrap();
        tx.commit().unwrap();
    }
    run(&db, &sealer(), &roomy()).unwrap();
    assert_eq!(version_of(&db), SCHEMA_VERSION);
    assert!(db.begin_read().unwrap().open_table(WABA_FACTS).is_ok());
}

#[test]
fn a_version_12_database_gains_the_template_history_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("v12.redb")).unwrap();
    {
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, 12)
            .unwrap();
        tx.commit().unwrap();
    }
    run(&db, &sealer(), &roomy()).unwrap();
    assert_eq!(version_of(&db), SCHEMA_VERSION);
    assert!(db
        .begin_read()
        .unwrap()
        .open_table(TEMPLATE_HISTORY)
        .is_ok());
}
