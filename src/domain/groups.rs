//! WhatsApp groups as Meta's Groups API takes them (create, remove
//! participants) and a group id's shape, checked before Meta is asked. Only
//! rules Meta's Groups reference states are checked (docs/flow-api.md cites
//! it): a subject of at most 128 characters once trimmed, a description of
//! at most 2048, `auto_approve` or `approval_required`, at most 8
//! participants a group (so at most 8 to remove at once); join requests
//! are named by the ids Meta listed.

use serde::Deserialize;
use serde_json::{json, Value};

use super::recipient::{self, Recipient};
use crate::error::Error;

pub const SUBJECT_MAX: usize = 128;
pub const DESCRIPTION_MAX: usize = 2048;
/// A group holds at most 8 participants besides the business.
pub const PARTICIPANTS_MAX: usize = 8;
pub const JOIN_APPROVAL_MODES: &[&str] = &["auto_approve", "approval_required"];
/// Longer than any id Meta gives a group (they are ~60 characters).
const GROUP_ID_MAX: usize = 256;

/// CreateGroup's body, in Meta's names without `messaging_product`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    subject: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    join_approval_mode: Option<String>,
}

impl NewGroup {
    /// Meta's body for `POST /{phone-number-id}/groups`, once every rule holds.
    pub fn meta_body(self) -> Result<Value, Error> {
        let subject = self.subject.trim();
        if subject.is_empty() {
            return Err(Error::invalid("subject", "required: the group's name"));
        }
        at_most("subject", subject, SUBJECT_MAX)?;
        let mut body = json!({"messaging_product": "whatsapp", "subject": subject});
        if let Some(description) = self.description {
            at_most("description", &description, DESCRIPTION_MAX)?;
            body["description"] = json!(description);
        }
        if let Some(mode) = self.join_approval_mode {
            if !JOIN_APPROVAL_MODES.contains(&mode.as_str()) {
                return Err(Error::invalid(
                    "join_approval_mode",
                    format!("must be one of {}", JOIN_APPROVAL_MODES.join(", ")),
                ));
            }
            body["join_approval_mode"] = json!(mode);
        }
        Ok(body)
    }
}

/// RemoveGroupParticipants' body: `{participants: ["+420…", "US.…"]}`, phone
/// numbers (any common writing) or business-scoped user IDs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    participants: Vec<String>,
}

impl Removal {
    /// Meta's body for `DELETE /{group-id}/participants`: a phone number as
    /// `{user}`, a BSUID as `{user_id}`.
    pub fn meta_body(self) -> Result<Value, Error> {
        if self.participants.is_empty() || self.participants.len() > PARTICIPANTS_MAX {
            return Err(Error::invalid(
                "participants",
                format!("give 1 to {PARTICIPANTS_MAX} participants to remove (a group has at most {PARTICIPANTS_MAX})"),
            ));
        }
        let mut list = Vec::with_capacity(self.participants.len());
        for (i, who) in self.participants.iter().enumerate() {
            let field = format!("participants[{i}]");
            let entry = match recipient::user(&field, who)? {
                Recipient::UserId(id) => json!({"user_id": id}),
                phone => json!({"user": phone.key()}),
            };
            list.push(entry);
        }
        Ok(json!({"messaging_product": "whatsapp", "participants": list}))
    }
}

/// ApproveJoinRequests / RejectJoinRequests' body: `{join_requests: [id, …]}`,
/// the `join_request_id`s Meta listed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequests {
    join_requests: Vec<String>,
}

impl JoinRequests {
    /// Meta's body for `POST` (approve) or `DELETE` (reject)
    /// `/{group-id}/join_requests`.
    pub fn meta_body(self) -> Result<Value, Error> {
        if self.join_requests.is_empty() {
            return Err(Error::invalid(
                "join_requests",
                "give the join_request_id of at least one request (GET …/join-requests lists them)",
            ));
        }
        for (i, id) in self.join_requests.iter().enumerate() {
            if !is_group_id(id) {
                return Err(Error::invalid(
                    &format!("join_requests[{i}]"),
                    "a join_request_id as Meta listed it",
                ));
            }
        }
        Ok(json!({"messaging_product": "whatsapp", "join_requests": self.join_requests}))
    }
}

/// Whether `id` can be a group id Meta gave (letters, digits, `_`, `-`, `=`),
/// so nothing else reaches a Graph path.
pub fn is_group_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= GROUP_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'='))
}

/// A group id as a send's `to` (`recipient_type: "group"`).
pub fn check_group_id(field: &str, id: &str) -> Result<String, Error> {
    let id = id.trim();
    if is_group_id(id) {
        Ok(id.to_string())
    } else {
        Err(Error::invalid(
            field,
            "with recipient_type \"group\", `to` is the group's id as Meta gave it (GET /api/v1/phone-numbers/{phoneNumberId}/groups lists them)",
        ))
    }
}

fn at_most(field: &str, text: &str, max: usize) -> Result<(), Error> {
    let n = text.chars().count();
    if n > max {
        return Err(Error::invalid(
            field,
            format!("at most {max} characters (this one has {n})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(v: Value) -> Result<Value, Error> {
        serde_json::from_value::<NewGroup>(v).unwrap().meta_body()
    }

    fn field(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_group_is_created_in_metas_names_with_its_subject_trimmed() {
        let body = new(json!({"subject": "  Launch crew ", "description": "d", "join_approval_mode": "approval_required"})).unwrap();
        assert_eq!(
            body,
            json!({"messaging_product": "whatsapp", "subject": "Launch crew", "description": "d", "join_approval_mode": "approval_required"})
        );
        let plain = new(json!({"subject": "x"})).unwrap();
        assert_eq!(
            plain,
            json!({"messaging_product": "whatsapp", "subject": "x"})
        );
    }

    #[test]
    fn each_rule_is_refused_with_its_field() {
        for (v, named) in [
            (json!({"subject": "   "}), "subject"),
            (json!({"subject": "é".repeat(129)}), "subject"),
            (
                json!({"subject": "x", "description": "d".repeat(2049)}),
                "description",
            ),
            (
                json!({"subject": "x", "join_approval_mode": "manual"}),
                "join_approval_mode",
            ),
        ] {
            assert_eq!(field(new(v).unwrap_err()), named);
        }
        assert!(new(json!({"subject": "é".repeat(128)})).is_ok());
    }

    #[test]
    fn participants_are_named_by_phone_or_bsuid_and_at_most_eight() {
        let r: Removal = serde_json::from_value(
            json!({"participants": ["+420 777 123 456", "US.13491208655302741918"]}),
        )
        .unwrap();
        assert_eq!(
            r.meta_body().unwrap(),
            json!({"messaging_product": "whatsapp", "participants": [
                {"user": "420777123456"}, {"user_id": "US.13491208655302741918"}]})
        );
        let none: Removal = serde_json::from_value(json!({"participants": []})).unwrap();
        assert_eq!(field(none.meta_body().unwrap_err()), "participants");
        let nine: Removal =
            serde_json::from_value(json!({"participants": vec!["420777123456"; 9]})).unwrap();
        assert_eq!(field(nine.meta_body().unwrap_err()), "participants");
        let bad: Removal =
            serde_json::from_value(json!({"participants": ["420777123456", "jana"]})).unwrap();
        assert_eq!(field(bad.meta_body().unwrap_err()), "participants[1]");
    }

    #[test]
    fn join_requests_are_named_by_metas_ids() {
        let ok: JoinRequests =
            serde_json::from_value(json!({"join_requests": ["MTIzNDU2", "789"]})).unwrap();
        assert_eq!(
            ok.meta_body().unwrap(),
            json!({"messaging_product": "whatsapp", "join_requests": ["MTIzNDU2", "789"]})
        );
        let none: JoinRequests = serde_json::from_value(json!({"join_requests": []})).unwrap();
        assert_eq!(field(none.meta_body().unwrap_err()), "join_requests");
        let bad: JoinRequests =
            serde_json::from_value(json!({"join_requests": ["1", "../x"]})).unwrap();
        assert_eq!(field(bad.meta_body().unwrap_err()), "join_requests[1]");
    }

    #[test]
    fn a_group_id_is_metas_shape_only() {
        assert!(is_group_id(
            "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD"
        ));
        for bad in ["", "a/b", "a?b", "../x", &"x".repeat(257)] {
            assert!(!is_group_id(bad), "{bad}");
        }
        assert_eq!(field(check_group_id("to", "a b").unwrap_err()), "to");
    }
}
