//! Business accounts, sender phone numbers (registration included), message
//! templates and the business profile: the connector guide's management actions.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::access::{self, own_phone_number, Number, Page, Paging};
use super::Services;
use crate::domain::ids::WabaId;
use crate::domain::model::Account;
use crate::domain::time::rfc3339_ms;
use crate::error::Error;

const PHONE_FIELDS: &str = "id,display_phone_number,verified_name,quality_rating,code_verification_status,platform_type,status,name_status,throughput,messaging_limit_tier,is_on_biz_app";
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

/// `fields` of a Graph object, asked with the account's token.
async fn fields_of(
    app: &Services,
    account: &Account,
    path: String,
    fields: &str,
) -> Result<Value, Error> {
    access::get(app, account, path, vec![("fields", fields.into())]).await
}

/// What wabridge learned of each of `wabas`, in order: `{id,
/// marketingMessages: {status: "onboarded" | "unknown", event?, since?},
/// coexistencePhoneNumbers}`. `onboarded` once Meta's `account_update`
/// `MM_LITE_TERMS_SIGNED` named the WABA; `unknown` until then (Meta may
/// still have onboarded it before wabridge listened).
pub fn waba_facts(app: &Services, wabas: &[String]) -> Result<Vec<Value>, Error> {
    Ok(app
        .store
        .waba_facts(wabas)?
        .into_iter()
        .map(|(id, facts)| {
            let marketing = match &facts.marketing {
                Some(m) => {
                    json!({"status": "onboarded", "event": m.event, "since": rfc3339_ms(m.at)})
                }
                None => json!({"status": "unknown"}),
            };
            json!({
                "id": id,
                "marketingMessages": marketing,
                "coexistencePhoneNumbers": facts.coexistence_numbers,
            })
        })
        .collect())
}

/// ListBusinessAccounts: the account's WABAs with what Meta says of each,
/// and what wabridge learned of each ([`waba_facts`]).
pub async fn business_accounts(app: &Services, account: &Account) -> Result<Vec<Value>, Error> {
    let mut list = Vec::new();
    let learned = waba_facts(app, &account.waba_ids)?;
    for (waba, facts) in account.waba_ids.iter().zip(learned) {
        let fields =
            "id,name,currency,timezone_id,message_template_namespace,account_review_status";
        let item = match fields_of(app, account, waba.clone(), fields).await {
            Ok(details) => camel(details),
            // One WABA Meta will not describe must not hide the others.
            Err(Error::Meta(e)) => {
                json!({"id": waba, "error": {"code": e.code, "message": e.message, "hint": e.hint()}})
            }
            Err(other) => return Err(other),
        };
        let mut item = item;
        // Meta's answer is an object; anything else is passed on as it came.
        if let Some(fields) = item.as_object_mut() {
            for key in ["marketingMessages", "coexistencePhoneNumbers"] {
                fields.insert(key.into(), facts[key].clone());
            }
        }
        list.push(item);
    }
    Ok(list)
}

/// ListPhoneNumbers of one of the account's WABAs.
pub async fn phone_numbers(
    app: &Services,
    account: &Account,
    waba: &WabaId,
) -> Result<Vec<Value>, Error> {
    let numbers = access::phone_numbers(app, account, waba.as_str()).await?;
    Ok(numbers.into_iter().map(camel).collect())
}

/// GetPhoneNumber.
pub async fn phone_number(
    app: &Services,
    account: &Account,
    number: &Number,
) -> Result<Value, Error> {
    let details = fields_of(app, account, number.id().to_string(), PHONE_FIELDS).await?;
    let mut view = camel(details);
    if let Some(fields) = view.as_object_mut() {
        fields.insert("wabaId".into(), json!(number.waba()));
    }
    Ok(view)
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

/// GetRegistrationStatus: read-only.
pub async fn registration_status(
    app: &Services,
    account: &Account,
    number: &Number,
) -> Result<Value, Error> {
    let fields = "platform_type,code_verification_status,quality_rating,status,name_status,display_phone_number,verified_name";
    let details = fields_of(app, account, number.id().to_string(), fields).await?;
    Ok(registration(&details))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
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
pub async fn register(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    request: RegisterRequest,
) -> Result<Value, Error> {
    let meta_body = request.meta_body()?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let answer = access::post(app, account, format!("{}/register", number.id()), meta_body).await?;
    Ok(success(&answer))
}

fn success(answer: &Value) -> Value {
    json!({"success": answer.get("success").and_then(Value::as_bool).unwrap_or(false)})
}

/// DeregisterPhoneNumber.
pub async fn deregister(
    app: &Services,
    account: &Account,
    number: &Number,
) -> Result<Value, Error> {
    let answer = access::post(
        app,
        account,
        format!("{}/deregister", number.id()),
        json!({}),
    )
    .await?;
    Ok(success(&answer))
}

/// EnsurePhoneNumberRegistered: registers only when `platform_type` is not
/// CLOUD_API yet, so it is safe to run on every flow start.
pub async fn ensure_registered(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    request: RegisterRequest,
) -> Result<Value, Error> {
    let meta_body = request.meta_body()?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let before = registration_status(app, account, &number).await?;
    if before["registered"] == json!(true) {
        return Ok(
            json!({"registered": true, "wasAlreadyRegistered": true, "platformType": before["platformType"]}),
        );
    }
    access::post(app, account, format!("{}/register", number.id()), meta_body).await?;
    Ok(json!({"registered": true, "wasAlreadyRegistered": false, "platformType": "CLOUD_API"}))
}

/// Which of Meta's template filters a listing passes on.
pub const TEMPLATE_FILTERS: &[&str] = &["name", "status", "category", "language"];

/// ListMessageTemplates, following Meta's paging as far as `paging` says;
/// `filters` are Meta's (see [`TEMPLATE_FILTERS`]).
pub async fn templates(
    app: &Services,
    account: &Account,
    waba: &WabaId,
    filters: Vec<(String, String)>,
    paging: Paging,
) -> Result<Page, Error> {
    access::paged(
        app,
        account,
        format!("{waba}/message_templates"),
        filters,
        paging,
    )
    .await
}

/// The business profile Meta shows on WhatsApp for a number.
pub async fn get_profile(
    app: &Services,
    account: &Account,
    number: &Number,
) -> Result<Value, Error> {
    let answer = fields_of(
        app,
        account,
        format!("{}/whatsapp_business_profile", number.id()),
        PROFILE_FIELDS,
    )
    .await?;
    let profile = answer
        .pointer("/data/0")
        .cloned()
        .unwrap_or_else(|| json!({}));
    Ok(camel(profile))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileChange {
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
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    change: ProfileChange,
) -> Result<Value, Error> {
    let meta_body = change.meta_body()?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let answer = access::post(
        app,
        account,
        format!("{}/whatsapp_business_profile", number.id()),
        meta_body,
    )
    .await?;
    Ok(success(&answer))
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
