//! An account's numbers in the backoffice: the connector guide's smoke test
//! (§2.7), sending the template `hello_world` from one of them to a verified
//! recipient and watching its statuses arrive on the message's timeline; and
//! a number's WhatsApp Flows data endpoint (docs/flows.md).

use askama::Template;
use hyper::StatusCode;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use super::views::{user_message, Chrome};
use super::{html, Ctx, Done, Form};
use crate::domain::ids::AccountId;
use crate::error::Error;
use crate::http::response::Resp;
use crate::http::session::Flash;
use crate::usecase::access::{own_phone_number, phone_numbers};
use crate::usecase::{accounts, flows, messages};

pub struct NumberOption {
    pub id: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "admin/test_send.html")]
struct TestSendPage {
    chrome: Chrome,
    account_id: String,
    account: String,
    numbers: Vec<NumberOption>,
    /// Why the numbers could not be listed, when Meta refused.
    problem: String,
}

/// The form, with the account's numbers as Meta lists them now.
pub async fn page(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let account = accounts::get(cx.state, &AccountId::new(cx.param("accountId")))?;
    let mut numbers = Vec::new();
    let mut problem = String::new();
    for waba in &account.waba_ids {
        match phone_numbers(cx.state, &account, waba).await {
            Ok(list) => numbers.extend(list.iter().filter_map(|n| option(n, waba))),
            Err(e) => problem = user_message(&e),
        }
    }
    let page = TestSendPage {
        chrome: cx.chrome("accounts"),
        account_id: account.id,
        account: account.name,
        numbers,
        problem,
    };
    Ok(html(StatusCode::OK, &page))
}

fn option(n: &Value, waba: &str) -> Option<NumberOption> {
    let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or_default();
    let id = s("id");
    if id.is_empty() {
        return None;
    }
    let registered = match s("platform_type") {
        "CLOUD_API" => "",
        _ => " — not registered on the Cloud API",
    };
    Some(NumberOption {
        id: id.to_string(),
        label: format!(
            "{} {} (WABA {waba}){registered}",
            s("display_phone_number"),
            s("verified_name")
        ),
    })
}

/// Sends the template and shows the message's timeline, where its statuses
/// (sent, delivered, read, or failed with Meta's reason) appear as they come.
pub async fn send(cx: &Ctx<'_>, form: &Form) -> Result<Done, Error> {
    let account = accounts::get(cx.state, &AccountId::new(cx.param("accountId")))?;
    let template = form.get("template").trim();
    let request = json!({
        "to": form.get("to"),
        "type": "template",
        "template": {"name": template, "language": {"code": form.get("language").trim()}},
    });
    let view = messages::send(
        cx.state,
        &account,
        form.get("phoneNumberId"),
        request,
        Some(false),
    )
    .await?;
    let message_id = view["messageId"].as_str().unwrap_or_default();
    tracing::info!(account = %account.id, message = %message_id, "test message sent from the backoffice");
    Ok(Done::to(
        format!(
            "/admin/messages/{}",
            utf8_percent_encode(message_id, NON_ALPHANUMERIC)
        ),
        Flash::ok(format!(
            "Meta accepted the template \"{template}\" for {} as {message_id}. Its statuses appear on this page as Meta reports them (reload in a few seconds); \"failed\" comes with Meta's reason.",
            view["waId"].as_str().unwrap_or("the recipient")
        )),
    ))
}

/// Sets a number's Flows data endpoint as the flow API's PUT does (the key
/// pair made once, the public key uploaded to Meta), and shows the flow
/// tool's signing secret once.
pub async fn set_flows_endpoint(cx: &Ctx<'_>, form: &Form) -> Result<Done, Error> {
    let account = accounts::get(cx.state, &AccountId::new(cx.param("accountId")))?;
    let number = own_phone_number(cx.state, &account, form.get("phoneNumberId")).await?;
    let view = flows::configure(cx.state, &account, &number, form.get("url")).await?;
    let uploaded = match &view.key_upload_error {
        None => "Meta took the number's public key.".to_string(),
        Some(why) => {
            format!("Meta did not take the number's public key ({why}); set it again to retry.")
        }
    };
    let flash = Flash {
        ok: view.key_uploaded,
        ..Flash::ok(format!(
            "Flows of {} now go to {}. Put {} into the Flow's data_channel_uri. {uploaded} The flow tool verifies each request with this Standard Webhooks secret:",
            number.id(),
            view.url,
            view.endpoint_url
        ))
    };
    Ok(Done::to(
        format!("/admin/accounts/{}/test-send", account.id),
        flash.with_secret(view.secret),
    ))
}
