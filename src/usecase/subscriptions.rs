//! Whether Meta sends a WABA's webhooks to this app (`/{waba}/subscribed_apps`),
//! and asking it to: what starting a trigger does (guide §2.5), and what the
//! guide's "both triggers silent" row asks the admin to check.

use serde_json::{json, Value};

use super::access::{get, own_waba, post};
use super::Services;
use crate::domain::ids::WabaId;
use crate::domain::model::Account;
use crate::error::Error;

/// Whether this app (`clientId`) is among the WABA's subscribed apps.
pub async fn is_subscribed(
    app: &Services,
    account: &Account,
    waba_id: &str,
) -> Result<bool, Error> {
    let answer = get(app, account, path(waba_id), Vec::new()).await?;
    Ok(lists_app(&answer, &app.settings().client_id))
}

/// Subscribes the WABA unless the app is already subscribed; Meta's answer
/// is reported, not judged (an app subscribed twice is no error).
pub async fn subscribe(app: &Services, account: &Account, waba: &WabaId) -> Result<Value, Error> {
    // A sandbox's events come from wabridge itself.
    if account.sandbox.is_some() {
        return Ok(json!({"subscribed": true, "alreadySubscribed": true, "sandbox": true}));
    }
    // A failed check is not a reason to skip the subscription itself.
    if is_subscribed(app, account, waba.as_str())
        .await
        .unwrap_or(false)
    {
        return Ok(json!({"subscribed": true, "alreadySubscribed": true}));
    }
    let answer = post(app, account, path(waba.as_str()), json!({})).await?;
    Ok(json!({"subscribed": true, "alreadySubscribed": false, "meta": answer}))
}

/// The admin subscribes a connected WABA, with the token of the account that
/// has it. Returns whether it was subscribed already.
pub async fn subscribe_connected(app: &Services, waba_id: &str) -> Result<bool, Error> {
    let account = app
        .store
        .account_with_waba(waba_id)?
        .ok_or(Error::NotFound("connected WABA"))?;
    let waba = own_waba(&account, waba_id)?;
    let answer = subscribe(app, &account, &waba).await?;
    tracing::info!(waba = %waba, account = %account.id, "WABA subscribed by the admin");
    Ok(answer["alreadySubscribed"] == true)
}

fn path(waba_id: &str) -> String {
    format!("{waba_id}/subscribed_apps")
}

fn lists_app(answer: &Value, client_id: &str) -> bool {
    !client_id.is_empty()
        && answer
            .get("data")
            .and_then(Value::as_array)
            .is_some_and(|apps| {
                apps.iter().any(|app| {
                    app.pointer("/whatsapp_business_api_data/id")
                        .and_then(Value::as_str)
                        == Some(client_id)
                })
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_app_counts() {
        let answer = json!({"data": [{"whatsapp_business_api_data": {"id": "111", "name": "Other"}},
                                      {"whatsapp_business_api_data": {"id": "222", "name": "Ours"}}]});
        assert!(lists_app(&answer, "222"));
        assert!(!lists_app(&answer, "333"));
        assert!(!lists_app(&answer, ""), "no clientId: nothing is ours");
        assert!(!lists_app(&json!({"data": []}), "222"));
    }
}
