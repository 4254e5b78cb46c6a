//! Business accounts, sender phone numbers (registration included), message
//! templates and the business profile: the connector guide's management actions.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::access::{self, own_phone_number, own_waba, Paging};
use crate::error::Error;
use crate::http::auth::require_account;
use crate::http::body::read_json;
use crate::http::query::query_pairs;
use crate::http::response::{self, Resp};
use crate::http::AppState;

const PHONE_FIELDS: &str = "id,display_phone_number,verified_name,quality_rating,code_verification_status,platform_type,status,name_status,throughput,messaging_limit_tier";
const PROFILE_FIELDS: &str =
    "about,address,description,email,profile_picture_url,websites,vertical";

/// Meta's snake_case top-level keys in the API's camelCase.
fn camel(v: Value) -> Value {
    let Value::Object(map) = v else { return v };
    let out: Map<String, Value> = map
        .into_iter()
        .map(|(k, v)| {
            let mut key = String::with_capacity(k.len());
            let mut upper = false;
            for c in k.chars() {
                match (c, upper) {
                    ('_', _) => upper = true,
                    (c, true) => {
                        key.push(c.to_ascii_uppercase());
                        upper = false;
                    }
                    (c, false) => key.push(c),
                }
            }
            (key, v)
        })
        .collect();
    Value::Object(out)
}

/// ListBusinessAccounts: the account's WABAs with what Meta says of each.
pub async fn business_accounts(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    let mut list = Vec::new();
    for waba in &account.waba_ids {
        let fields =
            "id,name,currency,timezone_id,message_template_namespace,account_review_status";
        let item = match access::get(
            state,
            &account,
            waba.clone(),
            vec![("fields", fields.into())],
        )
        .await
        {
            Ok(details) => camel(details),
            // One WABA Meta will not describe must not hide the others.
            Err(Error::Meta(e)) => {
                json!({"id": waba, "error": {"code": e.code, "message": e.message, "hint": e.hint()}})
            }
            Err(other) => return Err(other),
        };
        list.push(item);
    }
    Ok(response::json(
        StatusCode::OK,
        &json!({"businessAccounts": list}),
    ))
}

/// ListPhoneNumbers of one of the account's WABAs.
pub async fn phone_numbers(
    state: &AppState,
    req: Request<Incoming>,
    waba_id: &str,
) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    own_waba(&account, waba_id)?;
    let numbers = access::phone_numbers(state, &account, waba_id).await?;
    let numbers: Vec<Value> = numbers.into_iter().map(camel).collect();
    Ok(response::json(
        StatusCode::OK,
        &json!({"wabaId": waba_id, "phoneNumbers": numbers}),
    ))
}

/// GetPhoneNumber.
pub async fn phone_number(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    let waba = own_phone_number(state, &account, id).await?;
    let details = access::get(
        state,
        &account,
        id.into(),
        vec![("fields", PHONE_FIELDS.into())],
    )
    .await?;
    let mut view = camel(details);
    view["wabaId"] = json!(waba);
    Ok(response::json(StatusCode::OK, &view))
}

/// What `platform_type` and friends say about a number's Cloud API registration.
fn registration(details: &Value) -> Value {
    let field = |k: &str| details.get(k).cloned().unwrap_or(Value::Null);
    let platform = details.get("platform_type").and_then(Value::as_str);
    json!({
        "registered": platform == Some("CLOUD_API"),
        "platformType": field("platform_type"),
        "codeVerified": details.get("code_verification_status").and_then(Value::as_str) == Some("VERIFIED"),
        "codeVerificationStatus": field("code_verification_status"),
        "qualityRating": field("quality_rating"),
        "status": field("status"),
        "nameStatus": field("name_status"),
        "displayPhoneNumber": field("display_phone_number"),
        "verifiedName": field("verified_name"),
    })
}

async fn read_registration(
    state: &AppState,
    account: &crate::domain::model::Account,
    id: &str,
) -> Result<Value, Error> {
    let fields = "platform_type,code_verification_status,quality_rating,status,name_status,display_phone_number,verified_name";
    let details = access::get(state, account, id.into(), vec![("fields", fields.into())]).await?;
    Ok(registration(&details))
}

/// GetRegistrationStatus: read-only.
pub async fn registration_status(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    own_phone_number(state, &account, id).await?;
    let status = read_registration(state, &account, id).await?;
    Ok(response::json(StatusCode::OK, &status))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegisterRequest {
    pin: String,
    data_localization_region: Option<String>,
}

impl RegisterRequest {
    /// Meta's register body, after checking the PIN and region shapes.
    fn meta_body(&self) -> Result<Value, Error> {
        let pin = self.pin.trim();
        if pin.len() != 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid(
                "pin",
                "must be the number's 6-digit two-step verification PIN (000000 on Meta's test numbers)",
            ));
        }
        let mut body = json!({"messaging_product": "whatsapp", "pin": pin});
        if let Some(region) = self
            .data_localization_region
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(Error::invalid(
                    "dataLocalizationRegion",
                    "must be a two-letter country code such as DE, or left out",
                ));
            }
            body["data_localization_region"] = json!(region);
        }
        Ok(body)
    }
}

/// RegisterPhoneNumber: always calls Meta's register.
pub async fn register(state: &AppState, req: Request<Incoming>, id: &str) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    let account = require_account(state, &parts)?;
    let request: RegisterRequest = read_json(body).await?;
    let meta_body = request.meta_body()?;
    own_phone_number(state, &account, id).await?;
    let answer = access::post(state, &account, format!("{id}/register"), meta_body).await?;
    Ok(response::json(StatusCode::OK, &success(&answer)))
}

fn success(answer: &Value) -> Value {
    json!({"success": answer.get("success").and_then(Value::as_bool).unwrap_or(false)})
}

/// DeregisterPhoneNumber.
pub async fn deregister(state: &AppState, req: Request<Incoming>, id: &str) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    own_phone_number(state, &account, id).await?;
    let answer = access::post(state, &account, format!("{id}/deregister"), json!({})).await?;
    Ok(response::json(StatusCode::OK, &success(&answer)))
}

/// EnsurePhoneNumberRegistered: registers only when `platform_type` is not
/// CLOUD_API yet, so it is safe to run on every flow start.
pub async fn ensure_registered(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    let account = require_account(state, &parts)?;
    let request: RegisterRequest = read_json(body).await?;
    let meta_body = request.meta_body()?;
    own_phone_number(state, &account, id).await?;
    let before = read_registration(state, &account, id).await?;
    if before["registered"] == json!(true) {
        return Ok(response::json(
            StatusCode::OK,
            &json!({"registered": true, "wasAlreadyRegistered": true, "platformType": before["platformType"]}),
        ));
    }
    access::post(state, &account, format!("{id}/register"), meta_body).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"registered": true, "wasAlreadyRegistered": false, "platformType": "CLOUD_API"}),
    ))
}

/// ListMessageTemplates, following Meta's paging up to `limit` (default 100,
/// at most 1000); `nextCursor` continues with `?after=`.
pub async fn templates(
    state: &AppState,
    req: Request<Incoming>,
    waba_id: &str,
) -> Result<Resp, Error> {
    let query = query_pairs(req.uri());
    let account = require_account(state, &req.into_parts().0)?;
    own_waba(&account, waba_id)?;
    let mut paging = Paging {
        limit: 100,
        after: None,
    };
    let mut filters = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "limit" => paging.limit = crate::http::body::page_limit(&v)?,
            "after" => paging.after = Some(v).filter(|c| !c.is_empty()),
            "name" | "status" | "category" | "language" => filters.push((k, v)),
            _ => {}
        }
    }
    let page = access::paged(
        state,
        &account,
        format!("{waba_id}/message_templates"),
        filters,
        paging,
    )
    .await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"wabaId": waba_id, "templates": page.items, "nextCursor": page.next_cursor}),
    ))
}

/// The business profile Meta shows on WhatsApp for a number.
pub async fn get_profile(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    let account = require_account(state, &req.into_parts().0)?;
    own_phone_number(state, &account, id).await?;
    let answer = access::get(
        state,
        &account,
        format!("{id}/whatsapp_business_profile"),
        vec![("fields", PROFILE_FIELDS.into())],
    )
    .await?;
    let profile = answer
        .pointer("/data/0")
        .cloned()
        .unwrap_or_else(|| json!({}));
    Ok(response::json(StatusCode::OK, &camel(profile)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfileChange {
    about: Option<String>,
    address: Option<String>,
    description: Option<String>,
    email: Option<String>,
    websites: Option<Vec<String>>,
    vertical: Option<String>,
    profile_picture_handle: Option<String>,
}

/// Meta's limits for the business profile.
const VERTICALS: &[&str] = &[
    "UNDEFINED",
    "OTHER",
    "AUTO",
    "BEAUTY",
    "APPAREL",
    "EDU",
    "ENTERTAIN",
    "EVENT_PLAN",
    "FINANCE",
    "GROCERY",
    "GOVT",
    "HOTEL",
    "HEALTH",
    "NONPROFIT",
    "PROF_SERVICES",
    "RETAIL",
    "TRAVEL",
    "RESTAURANT",
    "NOT_A_BIZ",
];

impl ProfileChange {
    fn meta_body(self) -> Result<Value, Error> {
        let mut body = json!({"messaging_product": "whatsapp"});
        for (field, key, value, max) in [
            ("about", "about", self.about, 139),
            ("address", "address", self.address, 256),
            ("description", "description", self.description, 512),
            ("email", "email", self.email, 128),
            ("vertical", "vertical", self.vertical, 32),
            (
                "profilePictureHandle",
                "profile_picture_handle",
                self.profile_picture_handle,
                4096,
            ),
        ] {
            if let Some(v) = value {
                if v.chars().count() > max {
                    return Err(Error::invalid(
                        field,
                        format!("Meta allows at most {max} characters"),
                    ));
                }
                body[key] = json!(v);
            }
        }
        if let Some(v) = body.get("vertical").and_then(Value::as_str) {
            if !VERTICALS.contains(&v) {
                return Err(Error::invalid(
                    "vertical",
                    format!("must be one of {}", VERTICALS.join(", ")),
                ));
            }
        }
        if let Some(sites) = self.websites {
            if sites.len() > 2
                || sites.iter().any(|s| {
                    s.chars().count() > 256
                        || !(s.starts_with("http://") || s.starts_with("https://"))
                })
            {
                return Err(Error::invalid(
                    "websites",
                    "at most 2 http(s) URLs of up to 256 characters",
                ));
            }
            body["websites"] = json!(sites);
        }
        if body.as_object().is_some_and(|o| o.len() == 1) {
            return Err(Error::invalid(
                "body",
                "nothing to change: give about, address, description, email, websites, vertical or profilePictureHandle",
            ));
        }
        Ok(body)
    }
}

/// Updates the business profile; only the fields given change.
pub async fn update_profile(
    state: &AppState,
    req: Request<Incoming>,
    id: &str,
) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    let account = require_account(state, &parts)?;
    let change: ProfileChange = read_json(body).await?;
    let meta_body = change.meta_body()?;
    own_phone_number(state, &account, id).await?;
    let answer = access::post(
        state,
        &account,
        format!("{id}/whatsapp_business_profile"),
        meta_body,
    )
    .await?;
    Ok(response::json(StatusCode::OK, &success(&answer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_keys_become_camel_case() {
        assert_eq!(
            camel(
                json!({"display_phone_number": "+1 555", "id": "1", "platform_type": "CLOUD_API"})
            ),
            json!({"displayPhoneNumber": "+1 555", "id": "1", "platformType": "CLOUD_API"})
        );
    }

    #[test]
    fn registration_reads_platform_type() {
        let r = registration(
            &json!({"platform_type": "CLOUD_API", "code_verification_status": "VERIFIED", "quality_rating": "GREEN"}),
        );
        assert_eq!(r["registered"], true);
        assert_eq!(r["codeVerified"], true);
        assert_eq!(r["qualityRating"], "GREEN");
        assert_eq!(
            registration(&json!({"platform_type": "NOT_APPLICABLE"}))["registered"],
            false
        );
    }

    #[test]
    fn a_pin_has_six_digits() {
        let req = |pin: &str| RegisterRequest {
            pin: pin.into(),
            data_localization_region: None,
        };
        assert!(req("000000").meta_body().is_ok());
        for bad in ["", "12345", "1234567", "12a456"] {
            assert!(req(bad).meta_body().is_err(), "{bad}");
        }
    }
}
