//! The catalogue of what Meta sends (CONTRACT §5.1): each webhook `field`, the
//! lists in its value that hold one event per item, and the outbound `type`
//! each becomes. A field not listed here is still delivered, as `whatsapp.<field>`.

/// The outbound types the rest of wabridge names.
pub const MESSAGE_RECEIVED: &str = "whatsapp.message.received";
pub const MESSAGE_STATUS: &str = "whatsapp.message.status";
pub const MESSAGE_ERROR: &str = "whatsapp.message.error";
pub const MESSAGE_ECHO: &str = "whatsapp.message.echo";
pub const MESSAGE_STANDBY: &str = "whatsapp.message.standby";
pub const CALL: &str = "whatsapp.call";
pub const CALL_STATUS: &str = "whatsapp.call.status";
pub const ACCOUNT_UPDATE: &str = "whatsapp.account.update";

/// One of Meta's webhook fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// (list key in `value`, outbound type of each of its items).
    pub lists: &'static [(&'static str, &'static str)],
    /// The object inside `value` that holds the lists and their `contacts`
    /// (`standby` nests them under `value.standby`).
    pub nested: Option<&'static str>,
    /// The type of one event for the whole change: a field without lists, or
    /// a list field whose value came without any of its lists.
    pub whole: &'static str,
}

const fn whole(name: &'static str, whole: &'static str) -> Field {
    Field {
        name,
        lists: &[],
        nested: None,
        whole,
    }
}

const fn listed(
    name: &'static str,
    lists: &'static [(&'static str, &'static str)],
    whole: &'static str,
) -> Field {
    Field {
        name,
        lists,
        nested: None,
        whole,
    }
}

pub const FIELDS: &[Field] = &[
    listed(
        "messages",
        &[("messages", MESSAGE_RECEIVED), ("statuses", MESSAGE_STATUS)],
        MESSAGE_ERROR,
    ),
    listed(
        "smb_message_echoes",
        &[("message_echoes", MESSAGE_ECHO)],
        MESSAGE_ECHO,
    ),
    // Everything Meta copies while its business AI holds the chat is standby.
    Field {
        name: "standby",
        lists: &[
            ("messages", MESSAGE_STANDBY),
            ("message_echoes", MESSAGE_STANDBY),
            ("statuses", MESSAGE_STANDBY),
        ],
        nested: Some("standby"),
        whole: MESSAGE_STANDBY,
    },
    listed("calls", &[("calls", CALL), ("statuses", CALL_STATUS)], CALL),
    whole("message_template_status_update", "whatsapp.template.status"),
    whole(
        "message_template_quality_update",
        "whatsapp.template.quality",
    ),
    whole(
        "message_template_components_update",
        "whatsapp.template.components",
    ),
    whole("template_category_update", "whatsapp.template.category"),
    whole("account_update", ACCOUNT_UPDATE),
    whole("account_alerts", "whatsapp.account.alert"),
    whole("account_review_update", "whatsapp.account.review"),
    whole("business_capability_update", "whatsapp.business.capability"),
    whole("phone_number_name_update", "whatsapp.phone_number.name"),
    whole(
        "phone_number_quality_update",
        "whatsapp.phone_number.quality",
    ),
    whole("security", "whatsapp.security"),
    listed(
        "user_preferences",
        &[("user_preferences", "whatsapp.user.preference")],
        "whatsapp.user.preference",
    ),
    whole("flows", "whatsapp.flow"),
    listed(
        "history",
        &[("history", "whatsapp.history")],
        "whatsapp.history",
    ),
    listed(
        "smb_app_state_sync",
        &[("state_sync", "whatsapp.contact.sync")],
        "whatsapp.contact.sync",
    ),
    listed(
        "group_lifecycle_update",
        &[("groups", "whatsapp.group.lifecycle")],
        "whatsapp.group.lifecycle",
    ),
    listed(
        "group_participants_update",
        &[("groups", "whatsapp.group.participants")],
        "whatsapp.group.participants",
    ),
    listed(
        "group_settings_update",
        &[("groups", "whatsapp.group.settings")],
        "whatsapp.group.settings",
    ),
    listed(
        "group_status_update",
        &[("groups", "whatsapp.group.status")],
        "whatsapp.group.status",
    ),
    whole("messaging_handovers", "whatsapp.handover"),
    whole(
        "payment_configuration_update",
        "whatsapp.payment.configuration",
    ),
    listed(
        "automatic_events",
        &[("automatic_events", "whatsapp.automatic_event")],
        "whatsapp.automatic_event",
    ),
];

/// The catalogue entry of a field, if wabridge knows it.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Every type a listener can name exactly.
pub fn known_types() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for f in FIELDS {
        for t in f.lists.iter().map(|(_, t)| *t).chain([f.whole]) {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// The type of a field wabridge does not know yet: Meta's name, kept readable
/// and short (Meta's are under 40 characters; a type is counted, stored and
/// drawn in the backoffice's charts).
pub fn unknown_field_type(field: &str) -> String {
    let clean: String = field
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("whatsapp.{clean}")
}

/// Whether a listener subscribed to `pattern` gets events of `event_type`:
/// the type itself, a `prefix.*` above it, or `*`. Routing asks this of every
/// route of the event's WABA (a handful), so it allocates nothing.
pub fn covers(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" || pattern == event_type {
        return true;
    }
    pattern.strip_suffix('*').is_some_and(|prefix| {
        prefix.ends_with('.') && event_type.starts_with(prefix) && event_type.len() > prefix.len()
    })
}

/// Whether `pattern` is something a listener may subscribe to: `*`, a known
/// type, or a prefix (`whatsapp.template.*`) that covers at least one known
/// type (`whatsapp.*` also covers the fields Meta adds later).
pub fn valid_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let known = known_types();
    match pattern.strip_suffix(".*") {
        Some(prefix) => known
            .iter()
            .any(|t| t.starts_with(prefix) && t[prefix.len()..].starts_with('.')),
        None => known.contains(&pattern),
    }
}

/// Events that go out ahead of everything queued: Meta gives a business less
/// than a minute to pick up a call.
pub fn is_urgent(event_type: &str) -> bool {
    event_type == CALL || event_type.starts_with("whatsapp.call.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_is_covered_by_itself_its_prefixes_and_the_wildcard() {
        for pattern in [
            "whatsapp.template.status",
            "whatsapp.template.*",
            "whatsapp.*",
            "*",
        ] {
            assert!(covers(pattern, "whatsapp.template.status"), "{pattern}");
        }
        for pattern in [
            "whatsapp.template",
            "whatsapp.templ*",
            "whatsapp.template.status.*",
            "whatsapp.call.*",
            "whatsapp.template.statuses",
        ] {
            assert!(!covers(pattern, "whatsapp.template.status"), "{pattern}");
        }
        assert!(covers("whatsapp.call", "whatsapp.call"));
        assert!(!covers("whatsapp.call.*", "whatsapp.call"));
    }

    #[test]
    fn patterns_must_name_something_wabridge_sends() {
        for ok in [
            "*",
            "whatsapp.*",
            "whatsapp.template.*",
            "whatsapp.call",
            "whatsapp.call.*",
            MESSAGE_STANDBY,
            "whatsapp.group.participants",
        ] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "whatsapp",
            "whatsapp.messages",
            "whatsapp.templ.*",
            "whatsapp.template",
            "messages",
            "*.status",
            "whatsapp.message.received.*",
        ] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn a_new_meta_field_gets_a_type_of_its_own_name() {
        assert_eq!(
            unknown_field_type("partner_solutions"),
            "whatsapp.partner_solutions"
        );
        assert_eq!(unknown_field_type("Odd Name!"), "whatsapp.odd_name_");
        assert!(field("partner_solutions").is_none());
        assert_eq!(field("standby").unwrap().nested, Some("standby"));
    }

    #[test]
    fn calls_are_urgent_and_nothing_else_is() {
        assert!(is_urgent(CALL) && is_urgent(CALL_STATUS));
        assert!(!is_urgent(MESSAGE_RECEIVED) && !is_urgent("whatsapp.callback"));
    }
}
