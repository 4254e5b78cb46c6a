//! WhatsApp groups of one of the caller's phone numbers (issue 12): created,
//! listed, read, their invite link read and reset, their participants listed
//! and removed, their join requests listed, approved and rejected, deleted.
//! Meta's group object does not say which phone number created it, so a
//! group id is taken as the number's only when the number's own listing of
//! its active groups (`GET /{phone-number-id}/groups`) holds it: a key never
//! reads or changes a group of a number that is not its account's, even one
//! its token happens to reach, and Meta is asked nothing that changes state
//! until that is known.
//!
//! Creating a group, removing participants, deciding join requests and
//! deleting a group are asynchronous at Meta: it answers with a
//! `request_id`, and the outcome arrives as a `group_lifecycle_update` /
//! `group_participants_update` webhook event (`whatsapp.group.lifecycle`,
//! `.participants`), with the new group's id and invite link.

use serde_json::{json, Map, Value};

use super::access::{self, own_phone_number, Number, Page, Paging};
use super::Services;
use crate::domain::groups::{is_group_id, JoinRequests, NewGroup, Removal};
use crate::domain::model::Account;
use crate::error::Error;

/// What reading one group asks of Meta.
const FIELDS: &str =
    "subject,description,join_approval_mode,suspended,creation_timestamp,total_participant_count";
/// A number creates at most 10,000 groups (Meta's Groups overview): the
/// ownership check reads that far at most, a page of 100 at a time, and
/// stops at the group.
const MAX_GROUPS: usize = 10_000;
const GROUPS_PAGE: usize = 100;
/// Join requests read for one group, as far as Meta's paging is followed.
const MAX_JOIN_REQUESTS: usize = 5_000;

/// CreateGroup: checked, then Meta's `POST /{phone-number-id}/groups`. The
/// input is checked before the phone number (CONTRACT §4), as for a send.
pub async fn create(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    group: NewGroup,
) -> Result<Value, Error> {
    let body = group.meta_body()?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let answer = access::post(app, account, format!("{}/groups", number.id()), body).await?;
    let mut view = Map::new();
    view.insert("phoneNumberId".into(), json!(number.id()));
    copy(
        &answer,
        &mut view,
        &[
            ("request_id", "requestId"),
            ("id", "groupId"),
            ("invite_link", "inviteLink"),
        ],
    );
    Ok(Value::Object(view))
}

/// ListGroups: the number's active groups, Meta's paging followed up to
/// `paging.limit`.
pub async fn list(
    app: &Services,
    account: &Account,
    number: &Number,
    paging: Paging,
) -> Result<(Vec<Value>, Option<String>), Error> {
    let page = listing(app, account, number, paging).await?;
    let groups = renamed_each(
        &page.items,
        &[
            ("id", "groupId"),
            ("subject", "subject"),
            ("creation_timestamp", "creationTimestamp"),
            ("created_at", "creationTimestamp"),
        ],
    );
    Ok((groups, page.next_cursor))
}

/// GetGroup: subject, description, join approval mode, suspension, creation
/// time and participant count.
pub async fn get(
    app: &Services,
    account: &Account,
    number: &Number,
    group_id: &str,
) -> Result<Value, Error> {
    own_group(app, account, number, group_id).await?;
    let group = access::get(
        app,
        account,
        group_id.to_string(),
        vec![("fields", FIELDS.into())],
    )
    .await?;
    let mut view = base(number, group_id);
    copy(
        &group,
        &mut view,
        &[
            ("subject", "subject"),
            ("description", "description"),
            ("join_approval_mode", "joinApprovalMode"),
            ("suspended", "suspended"),
            ("creation_timestamp", "creationTimestamp"),
            ("total_participant_count", "totalParticipantCount"),
        ],
    );
    Ok(Value::Object(view))
}

/// GetGroupInviteLink (`reset: false`) or ResetGroupInviteLink (`reset:
/// true`: the old link stops working).
pub async fn invite_link(
    app: &Services,
    account: &Account,
    number: &Number,
    group_id: &str,
    reset: bool,
) -> Result<Value, Error> {
    own_group(app, account, number, group_id).await?;
    let path = format!("{group_id}/invite_link");
    let answer = if reset {
        access::post(app, account, path, json!({"messaging_product": "whatsapp"})).await?
    } else {
        access::get(app, account, path, Vec::new()).await?
    };
    let mut view = base(number, group_id);
    copy(&answer, &mut view, &[("invite_link", "inviteLink")]);
    Ok(Value::Object(view))
}

/// ListGroupParticipants: who is in the group besides the business.
pub async fn participants(
    app: &Services,
    account: &Account,
    number: &Number,
    group_id: &str,
) -> Result<Value, Error> {
    own_group(app, account, number, group_id).await?;
    let group = access::get(
        app,
        account,
        group_id.to_string(),
        vec![("fields", "participants,total_participant_count".into())],
    )
    .await?;
    let list = renamed_each(
        group
            .get("participants")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        &[
            ("wa_id", "waId"),
            ("user_id", "userId"),
            ("parent_user_id", "parentUserId"),
            ("username", "username"),
        ],
    );
    let mut view = base(number, group_id);
    view.insert("participants".into(), json!(list));
    copy(
        &group,
        &mut view,
        &[("total_participant_count", "totalParticipantCount")],
    );
    Ok(Value::Object(view))
}

/// RemoveGroupParticipants: checked, then Meta's `DELETE
/// /{group-id}/participants` with the participants in the body. The input is
/// checked before the phone number and the group (CONTRACT §4), as for
/// `create`.
pub async fn remove_participants(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    group_id: &str,
    removal: Removal,
) -> Result<Value, Error> {
    let body = removal.meta_body()?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    own_group(app, account, &number, group_id).await?;
    let answer =
        access::delete_json(app, account, format!("{group_id}/participants"), body).await?;
    Ok(outcome(&number, group_id, &answer))
}

/// ListJoinRequests: who asked to join an `approval_required` group.
pub async fn join_requests(
    app: &Services,
    account: &Account,
    number: &Number,
    group_id: &str,
) -> Result<Value, Error> {
    own_group(app, account, number, group_id).await?;
    let paging = Paging {
        limit: MAX_JOIN_REQUESTS,
        after: None,
    };
    let page = access::paged(
        app,
        account,
        format!("{group_id}/join_requests"),
        Vec::new(),
        paging,
    )
    .await?;
    let list = renamed_each(
        &page.items,
        &[
            ("join_request_id", "joinRequestId"),
            ("wa_id", "waId"),
            ("user_id", "userId"),
            ("creation_timestamp", "creationTimestamp"),
        ],
    );
    let mut view = base(number, group_id);
    view.insert("joinRequests".into(), json!(list));
    Ok(Value::Object(view))
}

/// ApproveJoinRequests (`approve: true`, Meta's `POST
/// /{group-id}/join_requests`) or RejectJoinRequests (`DELETE`). The input
/// is checked before the phone number and the group (CONTRACT §4).
pub async fn decide_join_requests(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    group_id: &str,
    requests: JoinRequests,
    approve: bool,
) -> Result<Value, Error> {
    let body = requests.meta_body()?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    own_group(app, account, &number, group_id).await?;
    let path = format!("{group_id}/join_requests");
    let answer = if approve {
        access::post(app, account, path, body).await?
    } else {
        access::delete_json(app, account, path, body).await?
    };
    Ok(outcome(&number, group_id, &answer))
}

/// DeleteGroup: every participant is removed and the group ends.
pub async fn delete(
    app: &Services,
    account: &Account,
    number: &Number,
    group_id: &str,
) -> Result<Value, Error> {
    own_group(app, account, number, group_id).await?;
    let answer = access::delete(app, account, group_id.to_string(), Vec::new()).await?;
    Ok(outcome(number, group_id, &answer))
}

/// The group `group_id`, if it is one of `number`'s active groups.
async fn own_group(
    app: &Services,
    account: &Account,
    number: &Number,
    group_id: &str,
) -> Result<(), Error> {
    if !is_group_id(group_id) {
        return Err(Error::NotFound("group"));
    }
    let mut after = None;
    for _ in 0..MAX_GROUPS / GROUPS_PAGE {
        let paging = Paging {
            limit: GROUPS_PAGE,
            after,
        };
        let page = listing(app, account, number, paging).await?;
        if page
            .items
            .iter()
            .any(|g| g.get("id").and_then(Value::as_str) == Some(group_id))
        {
            return Ok(());
        }
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    Err(Error::NotFound("group"))
}

/// The number's active groups as Meta lists them.
async fn listing(
    app: &Services,
    account: &Account,
    number: &Number,
    paging: Paging,
) -> Result<Page, Error> {
    access::paged(
        app,
        account,
        format!("{}/groups", number.id()),
        Vec::new(),
        paging,
    )
    .await
}

fn base(number: &Number, group_id: &str) -> Map<String, Value> {
    let mut view = Map::new();
    view.insert("phoneNumberId".into(), json!(number.id()));
    view.insert("groupId".into(), json!(group_id));
    view
}

/// Meta's answer to an asynchronous change: its `request_id` (the webhook
/// event that follows names it) and `success` where Meta gives one.
fn outcome(number: &Number, group_id: &str, answer: &Value) -> Value {
    let mut view = base(number, group_id);
    copy(
        answer,
        &mut view,
        &[("request_id", "requestId"), ("success", "success")],
    );
    Value::Object(view)
}

/// Meta's fields present in `from`, under wabridge's names; the first of
/// several sources for one name wins.
/// Each of Meta's items as a new object with only the `names` it has, renamed.
fn renamed_each(items: &[Value], names: &[(&str, &str)]) -> Vec<Value> {
    items
        .iter()
        .map(|item| {
            let mut view = Map::new();
            copy(item, &mut view, names);
            Value::Object(view)
        })
        .collect()
}

fn copy(from: &Value, to: &mut Map<String, Value>, names: &[(&str, &str)]) {
    for (meta, ours) in names {
        if let Some(v) = from.get(*meta).filter(|v| !v.is_null()) {
            to.entry(ours.to_string()).or_insert_with(|| v.clone());
        }
    }
}
