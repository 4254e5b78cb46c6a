//! Message templates managed, not only listed (issue 12): create, read one,
//! edit and delete, each through one of the caller's WABAs. Meta's template
//! object does not say which WABA it belongs to, so a template id is taken as
//! the WABA's only when the WABA's own listing, filtered by the template's
//! name, holds that id: a key never reads or edits a template of a WABA that
//! is not its account's, even one its token happens to reach.

use serde_json::{json, Value};

use super::access::{self, is_meta_id, Paging};
use super::Services;
use crate::domain::ids::WabaId;
use crate::domain::model::Account;
use crate::domain::templates::{check_name, NewTemplate, TemplateEdit};
use crate::domain::time::rfc3339_ms;
use crate::error::Error;

/// What reading one template asks of Meta.
const FIELDS: &str = "name,language,status,category,quality_score,rejected_reason,components";

/// CreateMessageTemplate: checked, then Meta's `POST /{waba}/message_templates`.
/// Meta answers `{id, status, category}`; review is asynchronous, its outcome
/// arrives as the `message_template_status_update` webhook event.
pub async fn create(
    app: &Services,
    account: &Account,
    waba: &WabaId,
    template: NewTemplate,
) -> Result<Value, Error> {
    let body = template.meta_body()?;
    let answer = access::post(app, account, format!("{waba}/message_templates"), body).await?;
    let field = |k: &str| answer.get(k).cloned().unwrap_or(Value::Null);
    Ok(
        json!({"wabaId": waba, "templateId": field("id"), "status": field("status"), "category": field("category")}),
    )
}

/// GetMessageTemplate: status, quality and rejection reason included, and
/// the template's `history`: what the WABA's template webhooks said of it,
/// oldest first (`domain::template_history`).
pub async fn get(
    app: &Services,
    account: &Account,
    waba: &WabaId,
    template_id: &str,
) -> Result<Value, Error> {
    let template = own_template(app, account, waba, template_id).await?;
    let field = |k: &str| template.get(k).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "templateId": template_id,
        "wabaId": waba,
        "name": field("name"),
        "language": field("language"),
        "status": field("status"),
        "category": field("category"),
        "qualityScore": field("quality_score"),
        "rejectedReason": field("rejected_reason"),
        "components": field("components"),
        "history": history(app, waba, template_id)?,
    }))
}

/// The template's history as the flow API shows it: each entry without its
/// WABA (the path's), its time in RFC 3339.
fn history(app: &Services, waba: &WabaId, template_id: &str) -> Result<Vec<Value>, Error> {
    let changes = app.store.template_history_in(template_id, waba.as_str())?;
    changes
        .into_iter()
        .map(|change| {
            let at = rfc3339_ms(change.at);
            let mut view = serde_json::to_value(&change)
                .map_err(|e| Error::internal("a template's history entry", e))?;
            if let Some(view) = view.as_object_mut() {
                view.remove("wabaId");
                view.insert("at".into(), json!(at));
            }
            Ok(view)
        })
        .collect()
}

/// EditMessageTemplate: Meta's `POST /{template_id}` with the new components
/// and/or category. The template is found first, since its category at Meta
/// decides the rules an edit that keeps it must follow.
pub async fn edit(
    app: &Services,
    account: &Account,
    waba: &WabaId,
    template_id: &str,
    edit: TemplateEdit,
) -> Result<Value, Error> {
    edit.check()?;
    let template = own_template(app, account, waba, template_id).await?;
    let current = template
        .get("category")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = edit.meta_body(current)?;
    let answer = access::post(app, account, template_id.to_string(), body).await?;
    Ok(success(&answer))
}

/// DeleteMessageTemplate by id: only this language's template. Meta takes the
/// id (`hsm_id`) together with the template's name.
pub async fn delete(
    app: &Services,
    account: &Account,
    waba: &WabaId,
    template_id: &str,
) -> Result<Value, Error> {
    let template = own_template(app, account, waba, template_id).await?;
    let name = name_of(&template).to_string();
    let query = vec![("hsm_id", template_id.to_string()), ("name", name)];
    let answer = access::delete(app, account, format!("{waba}/message_templates"), query).await?;
    Ok(success(&answer))
}

/// DeleteMessageTemplate by name: every language of it, as Meta does.
pub async fn delete_by_name(
    app: &Services,
    account: &Account,
    waba: &WabaId,
    name: &str,
) -> Result<Value, Error> {
    check_name(name)?;
    let query = vec![("name", name.to_string())];
    let answer = access::delete(app, account, format!("{waba}/message_templates"), query).await?;
    Ok(success(&answer))
}

/// The template `template_id` as Meta describes it, if it is one of `waba`'s.
async fn own_template(
    app: &Services,
    account: &Account,
    waba: &WabaId,
    template_id: &str,
) -> Result<Value, Error> {
    if !is_meta_id(template_id) {
        return Err(Error::NotFound("template"));
    }
    // Meta's "no such object" (or one the token cannot see, or not a
    // template) is a plain 404: its message would name what the id is.
    let template = access::get(
        app,
        account,
        template_id.to_string(),
        vec![("fields", FIELDS.into())],
    )
    .await
    .map_err(|e| match e {
        Error::Meta(m) if m.code == 100 => Error::NotFound("template"),
        other => other,
    })?;
    let listed = access::paged(
        app,
        account,
        format!("{waba}/message_templates"),
        vec![
            ("name".into(), name_of(&template).into()),
            ("fields".into(), "id".into()),
        ],
        Paging {
            limit: 1000,
            after: None,
        },
    )
    .await?;
    if listed
        .items
        .iter()
        .any(|t| t.get("id").and_then(Value::as_str) == Some(template_id))
    {
        Ok(template)
    } else {
        Err(Error::NotFound("template"))
    }
}

fn name_of(template: &Value) -> &str {
    template
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn success(answer: &Value) -> Value {
    json!({"success": answer.get("success").and_then(Value::as_bool).unwrap_or(false)})
}
