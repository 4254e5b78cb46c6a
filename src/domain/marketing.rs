//! Marketing messages through Meta's Marketing Messages Lite API ("MM Lite",
//! now "Marketing Messages API for WhatsApp"): `POST /{phone-number-id}/marketing_messages`
//! takes the same message object as `/messages`, for approved MARKETING
//! templates only
//! (developers.facebook.com/documentation/business-messaging/whatsapp/marketing-messages/send-marketing-messages),
//! plus a few fields of its own, checked here before Meta is asked.
//!
//! A WABA may use it once its business accepted the MM Lite terms; Meta then
//! sends an `account_update` webhook with `event: "MM_LITE_TERMS_SIGNED"` and
//! the WABA in `waba_info` (docs.360dialog.com, "Onboarding and Sending
//! Messages"), which wabridge records per WABA ([`MarketingState`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::outbound::{self, Outbound};
use crate::error::Error;

/// Meta's `account_update` event saying a WABA's business accepted the MM Lite terms.
pub const TERMS_SIGNED_EVENT: &str = "MM_LITE_TERMS_SIGNED";

/// `product_policy`: whether Meta may send through Cloud API when MM Lite
/// cannot take the message (the default), or must refuse it.
pub const PRODUCT_POLICIES: [&str; 2] = ["CLOUD_API_FALLBACK", "STRICT"];

/// What wabridge knows of a WABA's MM Lite onboarding, from Meta's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarketingState {
    /// Meta's event name (`MM_LITE_TERMS_SIGNED`).
    pub event: String,
    /// When wabridge received it, unix ms.
    pub at: u64,
}

/// Checks a marketing send (Meta's message object without `messaging_product`,
/// a template, with MM Lite's own `optimization_spec`,
/// `message_activity_sharing` and `product_policy`) and completes it into the
/// body of `POST /{phone-number-id}/marketing_messages`.
pub fn prepare(request: Value) -> Result<Outbound, Error> {
    let Value::Object(body) = request else {
        return Err(Error::invalid(
            "body",
            "expected a JSON object: Meta's template message object",
        ));
    };
    check_own_fields(&body)?;
    match body.get("type") {
        Some(Value::String(t)) if t == "template" => {}
        None if body.contains_key("template") => {}
        Some(other) => {
            let t = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return Err(not_a_template(&format!("`type` is {t:?}")));
        }
        None => return Err(not_a_template("there is no `template` object")),
    }
    outbound::prepare(Value::Object(body))
}

fn not_a_template(what: &str) -> Error {
    Error::invalid(
        "type",
        format!(
            "{what}: the Marketing Messages API sends approved MARKETING templates only (`type: \"template\"`); send text, media, utility and authentication messages with POST /api/v1/phone-numbers/{{phoneNumberId}}/messages"
        ),
    )
}

/// MM Lite's fields beside the message: `bid_spec` (gone), `optimization_spec`,
/// `message_activity_sharing` and `product_policy`.
fn check_own_fields(body: &Map<String, Value>) -> Result<(), Error> {
    if body.contains_key("bid_spec") {
        return Err(Error::invalid(
            "bid_spec",
            "`bid_spec` is gone: Meta renamed it `optimization_spec` (same `bid_amount` and `bid_strategy` inside) on June 18, 2026 and stopped accepting `bid_spec` after July 31, 2026. Rename the object to `optimization_spec`",
        ));
    }
    if let Some(spec) = body.get("optimization_spec") {
        match spec {
            Value::Object(o) if !o.is_empty() => {}
            _ => {
                return Err(Error::invalid(
                    "optimization_spec",
                    "must be a non-empty object, as Meta's max price documents it (e.g. {\"bid_amount\": …, \"bid_strategy\": …}); leave it out to use the template's own",
                ))
            }
        }
    }
    if body
        .get("message_activity_sharing")
        .is_some_and(|v| !v.is_boolean())
    {
        return Err(Error::invalid(
            "message_activity_sharing",
            "must be true or false",
        ));
    }
    if let Some(policy) = body.get("product_policy") {
        if !policy
            .as_str()
            .is_some_and(|p| PRODUCT_POLICIES.contains(&p))
        {
            return Err(Error::invalid(
                "product_policy",
                format!("must be one of {}", PRODUCT_POLICIES.join(", ")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"to": "+420777123456", "type": "template",
            "template": {"name": "spring_sale", "language": {"code": "en_US"}}})
    }

    fn refused_field(request: Value) -> String {
        match prepare(request) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_marketing_template_is_completed_with_its_own_fields_kept() {
        let mut request = template();
        request["optimization_spec"] = json!({"bid_amount": 0.04, "bid_strategy": "MAX_PRICE"});
        request["message_activity_sharing"] = json!(true);
        request["product_policy"] = json!("STRICT");
        let out = prepare(request).unwrap();
        assert_eq!(out.message_type, "template");
        assert_eq!(out.body["messaging_product"], "whatsapp");
        assert_eq!(out.body["to"], "+420777123456");
        assert_eq!(out.body["optimization_spec"]["bid_amount"], 0.04);
        assert_eq!(out.body["message_activity_sharing"], true);
        assert_eq!(out.body["product_policy"], "STRICT");
        // `type` may be left out when the template object is there.
        let mut untyped = template();
        untyped.as_object_mut().unwrap().remove("type");
        assert_eq!(prepare(untyped).unwrap().body["type"], "template");
    }

    #[test]
    fn bid_spec_is_refused_with_its_new_name() {
        let mut request = template();
        request["bid_spec"] = json!({"bid_amount": 0.04});
        let Err(Error::Invalid { field, message }) = prepare(request) else {
            panic!("bid_spec accepted")
        };
        assert_eq!(field, "bid_spec");
        assert!(message.contains("optimization_spec") && message.contains("2026"));
    }

    #[test]
    fn only_templates_and_well_formed_extras_pass() {
        assert_eq!(
            refused_field(json!({"to": "+420777123456", "type": "text", "text": {"body": "hi"}})),
            "type"
        );
        assert_eq!(
            refused_field(json!({"to": "+420777123456", "text": {"body": "hi"}})),
            "type"
        );
        for (key, bad) in [
            ("optimization_spec", json!({})),
            ("optimization_spec", json!("0.04")),
            ("message_activity_sharing", json!("yes")),
            ("product_policy", json!("LENIENT")),
        ] {
            let mut request = template();
            request[key] = bad;
            assert_eq!(refused_field(request), key);
        }
        // The template itself is checked as for any send.
        assert_eq!(
            refused_field(
                json!({"to": "+420777123456", "type": "template", "template": {"language": {"code": "en"}}})
            ),
            "template.name"
        );
        assert_eq!(refused_field(json!([1])), "body");
    }
}
