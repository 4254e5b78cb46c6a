//! WhatsApp groups of one of the caller's phone numbers: create, list, read,
//! invite link (read and reset), participants (list and remove), join
//! requests (list, approve, reject), delete.

use hyper::StatusCode;
use serde_json::json;

use crate::error::Error;
use crate::http::body::{page_limit, read_json};
use crate::http::guards::{Caller, OwnedNumber};
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::access::Paging;
use crate::usecase::groups;

/// CreateGroup: the body is checked before the number (CONTRACT §4). Meta
/// creates the group asynchronously: 202 with its `requestId`, the group's
/// id and invite link follow as a `whatsapp.group.lifecycle` event (201 when
/// Meta answers with the id at once).
pub async fn create(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId").to_string();
    let group = read_json(req.body).await?;
    let answer = groups::create(state, &account, &number, group).await?;
    let status = if answer.get("groupId").is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok(response::json(status, &answer))
}

/// ListGroups: the number's active groups, `?limit=` (default 100, at most
/// 1000) and `?after=` as for templates.
pub async fn list(state: &AppState, owned: OwnedNumber, req: Req) -> Result<Resp, Error> {
    let mut paging = Paging {
        limit: 100,
        after: None,
    };
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "limit" => paging.limit = page_limit(&v)?,
            "after" => paging.after = Some(v).filter(|c| !c.is_empty()),
            _ => {}
        }
    }
    let (list, next) = groups::list(state, &owned.account, &owned.number, paging).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"phoneNumberId": owned.number.id(), "groups": list, "nextCursor": next}),
    ))
}

/// GetGroup.
pub async fn get(state: &AppState, owned: OwnedNumber, req: Req) -> Result<Resp, Error> {
    let id = req.param("groupId");
    let answer = groups::get(state, &owned.account, &owned.number, id).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// GetGroupInviteLink.
pub async fn invite_link(state: &AppState, owned: OwnedNumber, req: Req) -> Result<Resp, Error> {
    let id = req.param("groupId");
    let answer = groups::invite_link(state, &owned.account, &owned.number, id, false).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// ResetGroupInviteLink: a new link, the old one stops working.
pub async fn reset_invite_link(
    state: &AppState,
    owned: OwnedNumber,
    req: Req,
) -> Result<Resp, Error> {
    let id = req.param("groupId");
    let answer = groups::invite_link(state, &owned.account, &owned.number, id, true).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// ListGroupParticipants.
pub async fn participants(state: &AppState, owned: OwnedNumber, req: Req) -> Result<Resp, Error> {
    let id = req.param("groupId");
    let answer = groups::participants(state, &owned.account, &owned.number, id).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// RemoveGroupParticipants: `{participants: [phone or BSUID, …]}`, checked
/// before the number (CONTRACT §4); 202, the outcome follows as a
/// `whatsapp.group.participants` event.
pub async fn remove_participants(
    state: &AppState,
    Caller(account): Caller,
    req: Req,
) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId").to_string();
    let id = req.param("groupId").to_string();
    let removal = read_json(req.body).await?;
    let answer = groups::remove_participants(state, &account, &number, &id, removal).await?;
    Ok(response::json(StatusCode::ACCEPTED, &answer))
}

/// DeleteGroup: 202, the outcome follows as a `whatsapp.group.lifecycle` event.
pub async fn delete(state: &AppState, owned: OwnedNumber, req: Req) -> Result<Resp, Error> {
    let id = req.param("groupId");
    let answer = groups::delete(state, &owned.account, &owned.number, id).await?;
    Ok(response::json(StatusCode::ACCEPTED, &answer))
}

/// ListJoinRequests.
pub async fn join_requests(state: &AppState, owned: OwnedNumber, req: Req) -> Result<Resp, Error> {
    let id = req.param("groupId");
    let answer = groups::join_requests(state, &owned.account, &owned.number, id).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// ApproveJoinRequests: `{join_requests: [id, …]}`, checked before the
/// number (CONTRACT §4); 202, the outcome follows as a
/// `whatsapp.group.participants` event.
pub async fn approve_join_requests(
    state: &AppState,
    caller: Caller,
    req: Req,
) -> Result<Resp, Error> {
    decide(state, caller, req, true).await
}

/// RejectJoinRequests: as approving.
pub async fn reject_join_requests(
    state: &AppState,
    caller: Caller,
    req: Req,
) -> Result<Resp, Error> {
    decide(state, caller, req, false).await
}

async fn decide(
    state: &AppState,
    Caller(account): Caller,
    req: Req,
    approve: bool,
) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId").to_string();
    let id = req.param("groupId").to_string();
    let requests = read_json(req.body).await?;
    let answer =
        groups::decide_join_requests(state, &account, &number, &id, requests, approve).await?;
    Ok(response::json(StatusCode::ACCEPTED, &answer))
}
