//! A sample event for one listener: "send a test event", so a flow author sees
//! the exact shape their flow tool will receive without writing to WhatsApp.
//! It is built the way a real one is: a Meta-shaped notification (the
//! simulator's samples) through the webhook parser, then marked `"test": true`.

use serde_json::Value;

use super::events::{self, covers, MESSAGE_RECEIVED, MESSAGE_STATUS};
use super::model::InboundEvent;
use super::webhook;
use crate::error::Error;
use crate::meta::field_samples::{field_sample, FIELD_SAMPLES};
use crate::meta::samples::{sample, SampleContext, SampleKind};

/// The phone number id test events carry: no real number has it.
pub const TEST_PHONE_NUMBER_ID: &str = "100000000000000";

/// An event of the first type (in the catalogue's order) the listener's
/// `patterns` cover: a text message from a sample user, a `delivered` status,
/// or Meta's sample of the field that type comes from.
pub fn test_event(patterns: &[String], waba_id: &str, now_ms: u64) -> Result<InboundEvent, Error> {
    let wanted = events::known_types()
        .into_iter()
        .find(|t| patterns.iter().any(|p| covers(p, t)))
        .ok_or_else(|| {
            Error::invalid(
                "events",
                "the listener subscribes to no type wabridge has a sample of",
            )
        })?;
    let event = match wanted {
        MESSAGE_RECEIVED => message_sample(SampleKind::Text, waba_id, now_ms),
        MESSAGE_STATUS => message_sample(SampleKind::Delivered, waba_id, now_ms),
        other => FIELD_SAMPLES.iter().find_map(|(name, _)| {
            let body = field_sample(name, waba_id, &format!("TEST{now_ms}"), now_ms / 1000)?;
            webhook::parse(&body, now_ms)
                .ok()?
                .into_iter()
                .find(|e| e.event_type == other)
        }),
    };
    let event = event.ok_or_else(|| Error::bug(format!("no sample of {wanted} parsed")))?;
    mark_test(event)
}

fn message_sample(kind: SampleKind, waba_id: &str, now_ms: u64) -> Option<InboundEvent> {
    let ctx = SampleContext {
        waba_id: waba_id.to_string(),
        phone_number_id: TEST_PHONE_NUMBER_ID.into(),
        display_phone_number: "15550100000".into(),
        from: "15550100001".into(),
        user_id: "US.1000000000000000001".into(),
        name: "wabridge test".into(),
        timestamp: now_ms / 1000,
    };
    let s = sample(&ctx, kind, &format!("TEST{now_ms}"), 1);
    webhook::parse(&s.body, now_ms).ok()?.pop()
}

fn mark_test(mut event: InboundEvent) -> Result<InboundEvent, Error> {
    let mut body: Value = serde_json::from_slice(&event.body)
        .map_err(|e| Error::internal("the test event body", e))?;
    body["test"] = Value::Bool(true);
    event.body =
        serde_json::to_vec(&body).map_err(|e| Error::internal("the test event body", e))?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(e: &InboundEvent) -> Value {
        serde_json::from_slice(&e.body).unwrap()
    }

    #[test]
    fn each_kind_gets_the_body_a_real_event_of_that_kind_has_marked_as_a_test() {
        let types = |t: &str| vec![t.to_string()];
        let m = test_event(&types("whatsapp.message.received"), "W1", 1_700_000_000_000).unwrap();
        assert_eq!(m.event_type, MESSAGE_RECEIVED);
        let b = body(&m);
        assert_eq!(b["type"], "whatsapp.message.received");
        assert_eq!(b["test"], true);
        assert_eq!(b["data"]["wabaId"], "W1");
        assert_eq!(b["data"]["phoneNumberId"], TEST_PHONE_NUMBER_ID);
        assert_eq!(b["data"]["type"], "text");

        let s = test_event(&types("whatsapp.message.status"), "W1", 1_700_000_000_000).unwrap();
        assert_eq!(s.event_type, MESSAGE_STATUS);
        let b = body(&s);
        assert_eq!(b["type"], "whatsapp.message.status");
        assert_eq!(b["data"]["status"], "delivered");
        assert_eq!(b["test"], true);

        let t = test_event(&types("whatsapp.template.*"), "W1", 1_700_000_000_000).unwrap();
        assert_eq!(t.event_type, "whatsapp.template.status");
        assert_eq!(body(&t)["data"]["wabaId"], "W1");
        let c = test_event(&types("whatsapp.call"), "W1", 1_700_000_000_000).unwrap();
        assert_eq!(body(&c)["type"], "whatsapp.call");
    }
}
