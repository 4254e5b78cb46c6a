//! Coexistence: a phone number that stays in the WhatsApp Business app while
//! the Cloud API uses it too. Embedded Signup offers it when `FB.login` is
//! given `extras.featureType: "whatsapp_business_app_onboarding"`
//! (developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-business-app-users);
//! Meta marks such a number `is_on_biz_app: true` (with `platform_type:
//! CLOUD_API`), and gives it a fixed throughput of 20 messages a second
//! (developers.facebook.com/documentation/business-messaging/whatsapp/throughput,
//! "WhatsApp Business app phone numbers").

use serde_json::Value;

/// Embedded Signup's `featureType` for onboarding a WhatsApp Business app number.
pub const FEATURE_TYPE: &str = "whatsapp_business_app_onboarding";

/// Meta's fixed throughput of a coexistence number, messages a second.
pub const RATE: u32 = 20;

/// Whether Meta's phone number object (from `/{waba}/phone_numbers` with
/// `is_on_biz_app` among the fields) is a coexistence number.
pub fn is_coexistence(number: &Value) -> bool {
    number.get("is_on_biz_app").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::throughput::numbers_where;
    use serde_json::json;

    #[test]
    fn only_numbers_meta_marks_on_the_business_app_are_coexistence_numbers() {
        let listing = [
            json!({"id": "2", "is_on_biz_app": true, "platform_type": "CLOUD_API"}),
            json!({"id": "1", "is_on_biz_app": false}),
            json!({"id": "3"}),
            json!({"id": "0", "is_on_biz_app": "true"}),
            json!({"id": "9", "is_on_biz_app": true}),
        ];
        assert_eq!(numbers_where(&listing, is_coexistence), ["2", "9"]);
    }
}
