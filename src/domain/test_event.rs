//! A sample event for one listener: "send a test event", so a flow author sees
//! the exact shape their flow tool will receive without writing to WhatsApp.
//! It is built the way a real one is: a Meta-shaped notification (the
//! simulator's samples) through the webhook parser, then marked `"test": true`.

use serde_json::Value;

use super::model::{EventKind, InboundEvent};
use super::webhook;
use crate::error::Error;
use crate::meta::samples::{sample, SampleContext, SampleKind};

/// The phone number id test events carry: no real number has it.
pub const TEST_PHONE_NUMBER_ID: &str = "100000000000000";

/// A text message from a sample user (for a `messages` listener) or a
/// `delivered` status (for a `statuses` listener) of `waba_id`.
pub fn test_event(kind: EventKind, waba_id: &str, now_ms: u64) -> Result<InboundEvent, Error> {
    let ctx = SampleContext {
        waba_id: waba_id.to_string(),
        phone_number_id: TEST_PHONE_NUMBER_ID.into(),
        display_phone_number: "15550100000".into(),
        from: "15550100001".into(),
        user_id: "US.1000000000000000001".into(),
        name: "wabridge test".into(),
        timestamp: now_ms / 1000,
    };
    let sample_kind = match kind {
        EventKind::Messages => SampleKind::Text,
        EventKind::Statuses => SampleKind::Delivered,
    };
    let s = sample(&ctx, sample_kind, &format!("TEST{now_ms}"), 1);
    let event = webhook::parse(&s.body, now_ms)
        .ok()
        .and_then(|mut events| events.pop())
        .ok_or_else(|| Error::Storage("the test event sample did not parse".into()))?;
    mark_test(event)
}

fn mark_test(mut event: InboundEvent) -> Result<InboundEvent, Error> {
    let mut body: Value = serde_json::from_slice(&event.body)
        .map_err(|e| Error::Storage(format!("the test event body: {e}")))?;
    body["test"] = Value::Bool(true);
    event.body = serde_json::to_vec(&body)
        .map_err(|e| Error::Storage(format!("the test event body: {e}")))?;
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
        let m = test_event(EventKind::Messages, "W1", 1_700_000_000_000).unwrap();
        assert_eq!(m.kind, EventKind::Messages);
        let b = body(&m);
        assert_eq!(b["type"], "whatsapp.message.received");
        assert_eq!(b["test"], true);
        assert_eq!(b["data"]["wabaId"], "W1");
        assert_eq!(b["data"]["phoneNumberId"], TEST_PHONE_NUMBER_ID);
        assert_eq!(b["data"]["type"], "text");

        let s = test_event(EventKind::Statuses, "W1", 1_700_000_000_000).unwrap();
        assert_eq!(s.kind, EventKind::Statuses);
        let b = body(&s);
        assert_eq!(b["type"], "whatsapp.message.status");
        assert_eq!(b["data"]["status"], "delivered");
        assert_eq!(b["test"], true);
    }
}
