//! WhatsApp calls through one of the caller's phone numbers (issue 12): Meta's
//! Calling API proxied. A call request (connect, pre_accept, accept, reject,
//! terminate) and a settings change are checked first (`domain::calls`), the
//! number after (CONTRACT §4), then Meta is asked with the account's token.
//! The call's media never passes through wabridge: the flow's WebRTC stack
//! and Meta exchange SDP through these calls and the `whatsapp.call` events.

use serde_json::{json, Value};

use super::access::{self, own_phone_number};
use super::Services;
use crate::domain::calls::{self, settings};
use crate::domain::model::Account;
use crate::error::Error;

/// One call action: Meta's `POST /{phone-number-id}/calls`.
pub async fn act(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    request: Value,
) -> Result<Value, Error> {
    let mut call = calls::prepare(request)?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let path = format!("{}/calls", number.id());
    // The body (an SDP of up to 64 KiB) goes to Meta; the answer needs the rest.
    let body = std::mem::take(&mut call.body);
    let answer = access::post(app, account, path, body).await?;
    Ok(call.answer(number.id().as_str(), &answer))
}

/// Whether the business may call `user` (a phone number or a BSUID) now, and
/// may ask for permission: Meta's `GET /{phone-number-id}/call_permissions`.
pub async fn permission(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    user: &str,
) -> Result<Value, Error> {
    let (who, query) = calls::permission_query(user)?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let path = format!("{}/call_permissions", number.id());
    let answer = access::get(app, account, path, vec![query]).await?;
    Ok(calls::permission_view(number.id().as_str(), &who, &answer))
}

/// The number's calling settings: the `calling` part of Meta's `GET
/// /{phone-number-id}/settings`, as Meta gives it; with `sip_credentials`,
/// Meta's `include_sip_credentials` (the SIP password Meta made for the
/// number and this app).
pub async fn settings(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    sip_credentials: bool,
) -> Result<Value, Error> {
    let number = own_phone_number(app, account, phone_number_id).await?;
    let query = match sip_credentials {
        true => vec![("include_sip_credentials", "true".to_string())],
        false => vec![],
    };
    let answer = access::get(app, account, format!("{}/settings", number.id()), query).await?;
    Ok(json!({
        "phoneNumberId": number.id(),
        "calling": answer.get("calling").cloned().unwrap_or_else(|| json!({})),
    }))
}

/// Changes the number's calling settings (only those given): Meta's `POST
/// /{phone-number-id}/settings` with `{"calling": …}`.
pub async fn update_settings(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    calling: Value,
) -> Result<Value, Error> {
    let body = settings::meta_body(calling)?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let answer = access::post(app, account, format!("{}/settings", number.id()), body).await?;
    Ok(json!({
        "phoneNumberId": number.id(),
        "success": answer.get("success").and_then(Value::as_bool).unwrap_or(false),
    }))
}
