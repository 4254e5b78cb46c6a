//! A sent message's story: sent → delivered → read, or failed.

use super::model::StatusRecord;

/// Where a status stands in a message's life; Meta may report them out of order.
/// `accepted` (and Meta's other send answers) is where the flow API's send
/// starts a history, before Meta's first status.
fn rank(status: &str) -> u8 {
    match status {
        "accepted" | "held_for_quality_assessment" | "paused" => 1,
        "sent" => 2,
        "delivered" => 3,
        "read" => 4,
        "played" => 5,
        "failed" => 6,
        _ => 0,
    }
}

/// True for what the flow API records at the send (Meta's answer), before
/// any status webhook.
pub fn is_send_answer(status: &str) -> bool {
    rank(status) == 1
}

/// True for a status that ends the wait after `sent`: the message reached the
/// phone, or Meta said it never will.
pub fn settles(status: &str) -> bool {
    rank(status) >= 3
}

/// Orders the history by Meta's timestamp, then by how far along each status is.
pub fn ordered(mut history: Vec<StatusRecord>) -> Vec<StatusRecord> {
    history.sort_by_key(|r| {
        let ts = r
            .timestamp
            .as_deref()
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        (ts, rank(&r.status), r.received_at)
    });
    history
}

/// The furthest status reached: a late `sent` never hides a `read`.
pub fn current(history: &[StatusRecord]) -> Option<&StatusRecord> {
    history.iter().max_by_key(|r| rank(&r.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: &str, ts: &str) -> StatusRecord {
        StatusRecord {
            message_id: "m".into(),
            status: status.into(),
            timestamp: Some(ts.into()),
            recipient_id: None,
            recipient_user_id: None,
            errors: None,
            conversation: None,
            pricing: None,
            waba_id: "w".into(),
            phone_number_id: "p".into(),
            received_at: 0,
            ..Default::default()
        }
    }

    #[test]
    fn out_of_order_statuses_are_put_in_order() {
        let h = ordered(vec![
            rec("read", "3"),
            rec("sent", "1"),
            rec("delivered", "3"),
        ]);
        let names: Vec<_> = h.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(names, ["sent", "delivered", "read"]);
        assert_eq!(current(&h).unwrap().status, "read");
    }

    #[test]
    fn the_send_answer_comes_before_sent_even_in_the_same_second() {
        let h = ordered(vec![rec("sent", "5"), rec("accepted", "5")]);
        assert_eq!(h[0].status, "accepted");
        assert_eq!(current(&h).unwrap().status, "sent");
        assert!(!settles("accepted"));
    }

    #[test]
    fn failed_wins() {
        let h = ordered(vec![rec("sent", "1"), rec("failed", "2")]);
        assert_eq!(current(&h).unwrap().status, "failed");
    }
}
