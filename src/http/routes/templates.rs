//! Message templates managed through one of the caller's WABAs: create, read
//! one, edit, delete (listing stays with the WABA's other listings in `numbers`).

use hyper::StatusCode;

use crate::error::Error;
use crate::http::body::read_json;
use crate::http::guards::OwnedWaba;
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::templates;

/// CreateMessageTemplate: 201 with Meta's id, status and category.
pub async fn create(state: &AppState, owned: OwnedWaba, req: Req) -> Result<Resp, Error> {
    let template = read_json(req.body).await?;
    let answer = templates::create(state, &owned.account, &owned.waba, template).await?;
    Ok(response::json(StatusCode::CREATED, &answer))
}

/// GetMessageTemplate.
pub async fn get(state: &AppState, owned: OwnedWaba, req: Req) -> Result<Resp, Error> {
    let id = req.param("templateId");
    let answer = templates::get(state, &owned.account, &owned.waba, id).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// EditMessageTemplate.
pub async fn edit(state: &AppState, owned: OwnedWaba, req: Req) -> Result<Resp, Error> {
    let id = req.param("templateId").to_string();
    let change = read_json(req.body).await?;
    let answer = templates::edit(state, &owned.account, &owned.waba, &id, change).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// DeleteMessageTemplate by id (this language only).
pub async fn delete(state: &AppState, owned: OwnedWaba, req: Req) -> Result<Resp, Error> {
    let id = req.param("templateId");
    let answer = templates::delete(state, &owned.account, &owned.waba, id).await?;
    Ok(response::json(StatusCode::OK, &answer))
}

/// DeleteMessageTemplate by `?name=` (every language).
pub async fn delete_by_name(state: &AppState, owned: OwnedWaba, req: Req) -> Result<Resp, Error> {
    let name = req
        .query("name")
        .ok_or_else(|| Error::invalid("name", "required: the template name to delete"))?;
    let answer = templates::delete_by_name(state, &owned.account, &owned.waba, &name).await?;
    Ok(response::json(StatusCode::OK, &answer))
}
