use std::time::Duration;

use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::Gateway;
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::standard_webhooks::assert_verified;

#[test]
fn a_signed_message_reaches_the_listener_of_its_waba() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &["111"]);
    let receiver = Receiver::start();
    let (_, secret) = gw.add_listener(&key, "111", "messages", &receiver.url("/hook"));

    let (status, _) = gw.post_webhook(&payloads::single_text("111", "PN1", "wamid.1", "hello"));
    assert_eq!(status, 200);

    let got = receiver.wait_for(1, Duration::from_secs(10));
    let body = got[0].json();
    assert_eq!(body["type"], "whatsapp.message.received");
    assert_eq!(body["data"]["text"]["body"], "hello");
    assert_eq!(body["data"]["wabaId"], "111");
    assert_verified(&got, &secret);
}
