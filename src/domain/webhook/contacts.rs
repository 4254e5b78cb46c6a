//! A change's `contacts[]`: who the user of an item is.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::str_field;

/// A change's `contacts[]`, found by phone (`wa_id`) or BSUID (`user_id`).
/// Meta sends one or two; a body with thousands of items and thousands of
/// contacts is looked up through maps, so parsing stays linear in its size.
pub(super) struct Contacts<'a> {
    pub(super) list: &'a [Value],
    by_wa_id: HashMap<String, usize>,
    by_user_id: HashMap<String, usize>,
}

/// Up to this many entries a scan is cheaper than building maps.
const CONTACTS_SCANNED: usize = 8;

impl<'a> Contacts<'a> {
    pub(super) fn new(list: &'a [Value]) -> Contacts<'a> {
        let mut c = Contacts {
            list,
            by_wa_id: HashMap::new(),
            by_user_id: HashMap::new(),
        };
        if list.len() > CONTACTS_SCANNED {
            for (i, entry) in list.iter().enumerate() {
                if let Some(id) = str_field(entry, "wa_id") {
                    c.by_wa_id.entry(id).or_insert(i);
                }
                if let Some(id) = str_field(entry, "user_id") {
                    c.by_user_id.entry(id).or_insert(i);
                }
            }
        }
        c
    }

    pub(super) fn get(&self, i: usize) -> &'a Value {
        &self.list[i]
    }

    /// The first entry with this phone or this BSUID.
    pub(super) fn find(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<usize> {
        if self.list.len() > CONTACTS_SCANNED {
            let by_phone = wa_id.and_then(|w| self.by_wa_id.get(w));
            let by_user = user_id.and_then(|u| self.by_user_id.get(u));
            return by_phone.into_iter().chain(by_user).min().copied();
        }
        let matches = |c: &Value| {
            (wa_id.is_some() && str_field(c, "wa_id").as_deref() == wa_id)
                || (user_id.is_some() && str_field(c, "user_id").as_deref() == user_id)
        };
        self.list.iter().position(matches)
    }
}
