//! Property tests of the webhook parser: whatever a signed body holds, parsing
//! it and building what is delivered from it never panics. The inputs are
//! random bytes, and Meta's own samples of every field with any part replaced
//! by any JSON value. Bounded (`PROPTEST_CASES`, default 256 per property) so
//! the suite stays quick; raise it to search longer.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::fields::items_root;
use super::meta_body::{copied_per_event, json_size};
use super::{business_link, meta_body, parse, parse_with};
use crate::domain::model::InboundEvent;
use crate::meta::field_samples::{field_sample, FIELD_SAMPLES};

/// Any JSON value, including the awkward ones: huge and negative numbers,
/// timestamps past the year 9999, empty and odd strings, deep nesting.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!("253402300800")),
        Just(json!("18446744073709551616")),
        Just(json!("")),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer of `v` (objects' keys and arrays' indices).
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{here}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{here}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

/// Parses `body` and builds every event's Meta-shaped body and business
/// link; each Meta body is no larger than the parser counted it.
fn parse_and_render(body: &[u8]) {
    let businesses = |_: &str| vec!["W1".to_string(), "W2".to_string()];
    if let Ok(events) = parse_with(body, 1_700_000_000_000, &businesses) {
        for e in &events {
            let built = meta_body(e).unwrap().len();
            assert!(built <= counted(e), "{built} > {}", counted(e));
            let _ = business_link(e);
        }
    }
}

/// What the parser's bound allows `e`'s Meta body: the copies it counted,
/// the item itself and the envelope around them.
fn counted(e: &InboundEvent) -> usize {
    let src = &e.source;
    let envelope = 256 + e.waba_id.len() + src.field.len();
    envelope
        + match src.item {
            Some((list, i)) => {
                let root = items_root(&src.field, &src.value);
                let item = root.get(list).and_then(|l| l.get(i));
                copied_per_event(&src.field, &src.value) + item.map_or(0, json_size)
            }
            None => json_size(&src.value),
        }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&body, 0);
    }

    #[test]
    fn metas_samples_with_any_part_replaced_never_panic(
        sample in 0..FIELD_SAMPLES.len(),
        at in any::<prop::sample::Index>(),
        replacement in any_json(),
    ) {
        let (name, _) = FIELD_SAMPLES[sample];
        let body = field_sample(name, "W1", "P", 1_700_000_000).unwrap();
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        let target = &all[at.index(all.len())];
        if let Some(slot) = v.pointer_mut(target) {
            *slot = replacement;
        }
        parse_and_render(&serde_json::to_vec(&v).unwrap());
    }
}
