use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::store::codec::enc;

/// Meta's statuses of every kind, as the gateway parses them.
fn fixture_records() -> Vec<StatusRecord> {
    let body = include_bytes!("../../../tests/fixtures/statuses/every_status.json");
    let events = crate::domain::webhook::parse(body, 1_764_000_100_123).unwrap();
    let records: Vec<StatusRecord> = events.into_iter().filter_map(|e| e.status).collect();
    assert_eq!(records.len(), 5);
    records
}

fn round_trip(record: &StatusRecord) -> StatusRecord {
    decode(&record.message_id, &encode(record)).unwrap()
}

#[test]
fn metas_statuses_read_back_as_they_were_and_take_far_less_room_than_json() {
    for record in fixture_records() {
        assert_eq!(round_trip(&record), record);
        let json = enc(&record, "status").unwrap().len();
        let binary = encode(&record).len();
        assert!(
            binary * 100 <= json * 45,
            "{} ({}): {binary} bytes against {json} in JSON",
            record.message_id,
            record.status
        );
    }
}

#[test]
fn every_field_set_reads_back() {
    let record = StatusRecord {
        message_id: "wamid.GROUP1".into(),
        status: "a status Meta adds later".into(),
        timestamp: Some("0017".into()),
        recipient_id: Some("120363025246125486@g.us".into()),
        recipient_user_id: Some("US.ENT.11815799212886844830".into()),
        errors: Some(json!([{"code": -1, "x": 1.5, "y": null, "z": [true, false, "ÿ ∑"]}])),
        conversation: Some(json!({"id": "ABCDEF", "n": u64::MAX, "m": i64::MIN})),
        pricing: Some(json!({"billable": false, "f": 0.25, "g": -0.0})),
        biz_opaque_callback_data: Some("order=42;ref=AB12".into()),
        recipient_type: Some("group".into()),
        recipient_participant_id: Some("420777123456".into()),
        recipient_participant_user_id: Some("CZ.7".into()),
        group_id: Some("".into()),
        waba_id: "".into(),
        phone_number_id: "PN1".into(),
        received_at: u64::MAX,
    };
    assert_eq!(round_trip(&record), record);
    let bare = StatusRecord {
        message_id: "m".into(),
        ..StatusRecord::default()
    };
    assert_eq!(round_trip(&bare), bare);
}

#[test]
fn a_row_without_a_participants_bsuid_is_the_layout_schema_10_wrote() {
    // A group receipt as schema 10 stored it: flags for timestamp, recipient,
    // type and participant only; it reads back, and is written the same today.
    let record = StatusRecord {
        message_id: "wamid.G".into(),
        status: "delivered".into(),
        timestamp: Some("1764000000".into()),
        recipient_id: Some("G1".into()),
        recipient_type: Some("group".into()),
        recipient_participant_id: Some("420777123456".into()),
        waba_id: "1".into(),
        phone_number_id: "2".into(),
        received_at: 5,
        ..StatusRecord::default()
    };
    // The whole row, byte for byte, as schema 10's encoder wrote it: version
    // 1, flags 1 | 1 << 1 | 1 << 7 | 1 << 8 as a varint, then the fields.
    let schema_10: &[u8] = &[
        1, 131, 3, 18, 1, 1, 1, 2, 5, 1, 128, 130, 146, 201, 6, 3, 1, 71, 1, 28, 1, 128, 189, 149,
        194, 159, 12,
    ];
    assert_eq!(decode("wamid.G", schema_10).unwrap(), record);
    assert_eq!(encode(&record), schema_10);
    let mut with_user = record.clone();
    with_user.recipient_participant_user_id = Some("CZ.1".into());
    assert_eq!(round_trip(&with_user), with_user);
}

#[test]
fn texts_take_their_shortest_form_and_read_back_exactly() {
    for text in [
        "0",
        "00",
        "007",
        "18446744073709551616",
        "340282366920938463463374607431768211455",
        "340282366920938463463374607431768211456",
        "+5",
        "6ceb9d929c8e3b7e1a2d0d4a3b1f6e21",
        "6CEB",
        "abc",
        "US.13491208655302741918",
        "US.0134",
        "x1",
        "sent",
        "Sent",
        "",
    ] {
        let mut out = Vec::new();
        wire::put_text(&mut out, text);
        let mut r = Reader::new(&out);
        assert_eq!(get_text(&mut r).unwrap(), text);
        r.end().unwrap();
        assert!(out.len() <= text.len() + 2, "{text:?} took {}", out.len());
    }
}

#[test]
fn a_damaged_row_is_an_error_that_names_the_message_not_a_panic() {
    let record = fixture_records().remove(0);
    let bytes = encode(&record);
    for cut in 0..bytes.len() {
        let err = decode(&record.message_id, &bytes[..cut]).unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err}");
        assert!(err.to_string().contains(&record.message_id), "{err}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode("m", &longer).is_err());
    let mut other_layout = bytes.clone();
    other_layout[0] = 2;
    assert!(decode("m", &other_layout).is_err());
    let json = enc(&record, "status").unwrap();
    assert!(
        decode("m", &json).is_err(),
        "JSON rows are migrated, not read"
    );
    // A count far beyond the row, and nesting deeper than JSON allows.
    assert!(decode("m", &[LAYOUT, 1 << 3, 17, 1, 0, 1, 0, 0, ARRAY, 0xff, 0x7f]).is_err());
    let mut deep = vec![LAYOUT, 1 << 3, 17, 1, 0, 1, 0, 0];
    deep.extend([ARRAY, 1].repeat(200));
    deep.push(NULL);
    assert!(decode("m", &deep).is_err());
}

#[test]
fn every_word_has_a_tag_of_its_own() {
    assert!(wire::WORDS.len() <= usize::from(u8::MAX - wire::FIRST_WORD) + 1);
    let mut seen = std::collections::HashSet::new();
    for word in wire::WORDS {
        assert!(seen.insert(word), "{word} twice");
        let mut out = Vec::new();
        wire::put_text(&mut out, word);
        assert_eq!(out.len(), 1, "{word}");
        assert_eq!(get_text(&mut Reader::new(&out)).unwrap(), *word);
    }
}

#[test]
fn json_rows_are_re_encoded_once_and_binary_ones_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("db.redb")).unwrap();
    let records = fixture_records();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(STATUSES).unwrap();
        for (i, r) in records.iter().enumerate() {
            // One row already in the new layout, as a second run would find it.
            let bytes = if i == 0 {
                encode(r)
            } else {
                enc(r, "status").unwrap()
            };
            t.insert((r.message_id.as_str(), i as u64), bytes.as_slice())
                .unwrap();
        }
    }
    assert_eq!(reencode_json_rows(&tx).unwrap(), 4);
    assert_eq!(reencode_json_rows(&tx).unwrap(), 0);
    let names: Vec<String> = tx
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_string())
        .collect();
    assert_eq!(names, ["statuses"], "the copy took the old table's place");
    let t = tx.open_table(STATUSES).unwrap();
    assert_eq!(redb::ReadableTableMetadata::len(&t).unwrap(), 5);
    for (i, r) in records.iter().enumerate() {
        let raw = t.get((r.message_id.as_str(), i as u64)).unwrap().unwrap();
        assert_eq!(decode(&r.message_id, raw.value()).unwrap(), *r);
    }
    drop(t);
    // A row that is neither stops the migration, which then changes nothing.
    tx.open_table(STATUSES)
        .unwrap()
        .insert(("m", 9), [7u8].as_slice())
        .unwrap();
    let err = reencode_json_rows(&tx).unwrap_err();
    assert!(err.to_string().contains("neither JSON nor layout"), "{err}");
}

/// Any JSON value, with the numbers and strings the layout treats apart.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(any_text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,41}",
        "[0-9a-f]{0,34}",
        "[A-Z]{0,3}\\.?[0-9]{0,24}",
        Just("delivered".to_string()),
        Just("pricing_model".to_string()),
        ".{0,12}",
    ]
}

prop_compose! {
    fn any_record()(
        message_id in any_text(),
        status in any_text(),
        texts in prop::collection::vec(prop::option::of(any_text()), 8),
        values in prop::collection::vec(prop::option::of(any_json()), 3),
        waba_id in any_text(),
        phone_number_id in any_text(),
        received_at in any::<u64>(),
    ) -> StatusRecord {
        StatusRecord {
            message_id,
            status,
            timestamp: texts[0].clone(),
            recipient_id: texts[1].clone(),
            recipient_user_id: texts[2].clone(),
            errors: values[0].clone(),
            conversation: values[1].clone(),
            pricing: values[2].clone(),
            biz_opaque_callback_data: texts[3].clone(),
            recipient_type: texts[4].clone(),
            recipient_participant_id: texts[5].clone(),
            group_id: texts[6].clone(),
            recipient_participant_user_id: texts[7].clone(),
            waba_id,
            phone_number_id,
            received_at,
        }
    }
}

proptest! {
    /// What the history gave when rows were JSON, it gives now.
    #[test]
    fn any_record_reads_back_as_its_json_did(record in any_record()) {
        let from_json: StatusRecord = crate::store::codec::dec(&enc(&record, "status").unwrap(), "status").unwrap();
        prop_assert_eq!(round_trip(&record), from_json);
    }

    #[test]
    fn random_bytes_are_refused_or_read_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut row = vec![LAYOUT];
        row.extend(bytes);
        let _ = decode("m", &row);
    }
}
