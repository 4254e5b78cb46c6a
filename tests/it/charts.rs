//! The backoffice shows the last 24 hours, not only lists: a listener's
//! delivery attempts, events by type and Meta's webhook POSTs, as charts drawn
//! on the server, counted in memory and kept across a restart.

use std::time::{Duration, Instant};

use super::backoffice::logged_in;
use crate::support::admin_browser::Browser;
use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::Gateway;
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::server::Reply;

/// The `<title>` of the chart `id` on the page at `path`.
fn chart_title(b: &mut Browser, path: &str, id: &str) -> String {
    let page = b.get(path);
    assert_eq!(page.status, 200, "{}", page.body);
    let svg = page
        .body
        .split(&format!(r#"<svg class="chart" id="{id}""#))
        .nth(1)
        .unwrap_or_else(|| panic!("no chart {id} on {path}:\n{}", page.body));
    assert!(svg.contains("</svg>"), "{svg}");
    svg.split(&format!(r#"<title id="{id}-title">"#))
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or_else(|| panic!("the chart {id} has no title: {svg}"))
        .to_string()
}

/// Reloads until the chart's title says `said` (a delivery is counted just
/// after the receiver answered it).
fn wait_for_title(b: &mut Browser, path: &str, id: &str, said: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let title = chart_title(b, path, id);
        if title.contains(said) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: {title} does not say {said}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_charts_count_what_happened_and_keep_it_across_a_restart() {
    let meta = FakeMeta::start();
    let mut gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &["W1"]);
    let receiver = Receiver::start();
    // The first attempt fails; its retry a second later succeeds.
    receiver.script([Reply::status(500)]);
    let (listener, _) = gw.add_listener(&key, "W1", "messages", &receiver.url("/hook"));
    let mut b = logged_in(&gw);
    let listener_page = format!("/admin/listeners/{listener}");
    // Before anything arrived, each chart says there was nothing.
    for (path, id) in [
        (listener_page.as_str(), "deliveries-chart"),
        ("/admin/events", "events-chart"),
        ("/admin/setup", "webhooks-chart"),
    ] {
        let title = chart_title(&mut b, path, id);
        assert!(title.ends_with(": none."), "{path}: {title}");
        assert!(b.get(path).body.contains("No traffic in the last 24 h"));
    }

    for id in ["wamid.C1", "wamid.C2", "wamid.C3"] {
        let text = payloads::single_text("W1", "PN1", id, "hello");
        assert_eq!(gw.post_webhook(&text).0, 200);
    }
    // Meta sends one again: stored once, so counted once as an event.
    let again = payloads::single_text("W1", "PN1", "wamid.C1", "hello");
    assert_eq!(gw.post_webhook(&again).0, 200);
    let status = payloads::statuses(
        "W1",
        "PN1",
        vec![payloads::status("wamid.OUT", "sent", "420777000111")],
    );
    assert_eq!(gw.post_webhook(&status).0, 200);
    // A POST with a wrong signature is refused, and counted as such.
    assert_eq!(gw.post_webhook_signed(&status, Some("sha256=00")).0, 401);
    receiver.wait_for(3, Duration::from_secs(15));

    let expected = [
        (
            listener_page.as_str(),
            "deliveries-chart",
            "3 delivered, 1 failed.",
        ),
        (
            "/admin/events",
            "events-chart",
            "3 whatsapp.message.received, 1 whatsapp.message.status.",
        ),
        ("/admin/setup", "webhooks-chart", "6 received, 1 refused."),
    ];
    for (path, id, said) in expected {
        wait_for_title(&mut b, path, id, said);
    }
    let page = b.get(&listener_page).body;
    assert!(
        page.contains(r#"data-series="delivered" data-total="3""#)
            && page.contains(r#"data-series="failed" data-total="1""#),
        "{page}"
    );
    let events = b.get("/admin/events").body;
    assert!(
        events.contains(r#"data-series="whatsapp.message.received" data-total="3""#),
        "{events}"
    );

    // A clean stop writes the last minutes; the next start reads them back.
    assert!(gw.terminate().success());
    gw.restart();
    let mut b = logged_in(&gw);
    for (path, id, said) in expected {
        let title = chart_title(&mut b, path, id);
        assert!(title.contains(said), "after the restart, {path}: {title}");
    }
}
