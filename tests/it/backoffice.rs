//! The backoffice at /admin: its security properties over plain HTTP, and the
//! admin's whole journey in headless Chromium (tests/ui/backoffice.mjs).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::admin_browser::Browser;
use crate::support::browser;
use crate::support::fake_meta::{FakeMeta, APP_ID, APP_SECRET};
use crate::support::gateway::{Gateway, Options, ADMIN_TOKEN};
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::server::Reply;

pub(crate) fn logged_in(gw: &Gateway) -> Browser {
    let mut b = Browser::new(gw);
    let resp = b.login(ADMIN_TOKEN);
    assert_eq!(resp.status, 303, "{}", resp.body);
    b
}

#[test]
fn login_renews_a_strict_http_only_session_cookie() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let mut b = Browser::new(&gw);

    let form = b.get("/admin/login");
    assert_eq!(form.status, 200);
    let anonymous = form.set_cookies()[0].to_string();
    assert!(anonymous.starts_with("wabridge_admin="), "{anonymous}");
    assert!(
        anonymous.contains("; Path=/; HttpOnly; SameSite=Strict"),
        "{anonymous}"
    );
    assert!(
        !anonymous.contains("Secure"),
        "plain HTTP: browsers drop Secure cookies"
    );
    let id = anonymous
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("wabridge_admin=");
    assert_eq!(id.len(), 22, "128 bits in base64url");
    let csp = form.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(form.header("x-frame-options"), Some("DENY"));
    assert_eq!(form.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(form.header("cache-control"), Some("no-store"));

    let old = b.cookie.clone();
    let done = b.post(
        "/admin/login",
        &[("csrf", &form.csrf()), ("secret", ADMIN_TOKEN)],
    );
    assert_eq!((done.status, done.location()), (303, Some("/admin/setup")));
    assert_ne!(b.cookie, old, "a new session id at login");
    assert_eq!(b.get("/admin/setup").status, 200);

    let mut stale = Browser::new(&gw);
    stale.cookie = old;
    let page = stale.get("/admin/setup");
    assert_eq!((page.status, page.location()), (303, Some("/admin/login")));

    let csrf = b.csrf();
    let out = b.post("/admin/logout", &[("csrf", &csrf)]);
    assert_eq!(out.location(), Some("/admin/login"));
    assert!(out.set_cookies()[0].contains("Max-Age=0"));
}

#[test]
fn over_https_the_cookie_is_secure_and_host_prefixed() {
    let meta = FakeMeta::start();
    let gw = Gateway::start_with(
        &meta,
        Options {
            tls: true,
            ..Options::default()
        },
    );
    let mut b = Browser::new(&gw);
    let form = b.get("/admin/login");
    let cookie = form.set_cookies()[0];
    assert!(cookie.starts_with("__Host-wabridge_admin="), "{cookie}");
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict; Secure"),
        "{cookie}"
    );
    let done = b.post(
        "/admin/login",
        &[("csrf", &form.csrf()), ("secret", ADMIN_TOKEN)],
    );
    assert_eq!(done.status, 303);
    assert!(done.set_cookies()[0].starts_with("__Host-wabridge_admin="));
    assert_eq!(b.get("/admin/accounts").status, 200);
}

#[test]
fn a_form_without_our_origin_or_token_is_refused() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let mut b = logged_in(&gw);
    let csrf = b.csrf();
    let evil = [("csrf", csrf.as_str()), ("clientId", "666")];
    let refused = b.post_from(Some("https://evil.example"), "/admin/setup", &evil);
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("Request refused"), "{}", refused.body);
    assert!(refused.body.contains("another site"));
    let no_origin = b.post_from(None, "/admin/setup", &evil);
    assert_eq!(no_origin.status, 403);
    let bad_token = b.post(
        "/admin/setup",
        &[("csrf", "not-the-token"), ("clientId", "666")],
    );
    assert_eq!(bad_token.status, 403);
    assert!(bad_token.body.contains("security token"));

    let (_, config) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(config["clientId"], APP_ID, "nothing changed");

    let mut stranger = Browser::new(&gw);
    let no_session = stranger.post("/admin/setup", &evil);
    assert_eq!(no_session.status, 403);

    let ok = b.post(
        "/admin/setup",
        &[("csrf", &csrf), ("clientId", "777"), ("verifyToken", "vt")],
    );
    assert_eq!((ok.status, ok.location()), (303, Some("/admin/setup")));
    let (_, config) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(config["clientId"], "777");
    assert_eq!(
        config["clientSecretSet"], true,
        "an empty secret field keeps the secret"
    );
}

#[test]
fn the_window_policy_is_set_from_the_setup_form() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let mut b = logged_in(&gw);
    let csrf = b.csrf();
    let checked = |b: &mut Browser| {
        let page = b.get("/admin/setup").body;
        let input = page
            .split("<input")
            .find(|i| i.contains("id=\"requireOpenWindow\""))
            .unwrap_or_else(|| panic!("no requireOpenWindow box:\n{page}"))
            .split('>')
            .next()
            .unwrap()
            .to_string();
        input.contains(" checked")
    };
    assert!(!checked(&mut b), "off by default");

    let on = [
        ("csrf", csrf.as_str()),
        ("clientId", APP_ID),
        ("verifyToken", "vt"),
        ("requireOpenWindow", "on"),
    ];
    assert_eq!(b.post("/admin/setup", &on).status, 303);
    let (_, config) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(config["requireOpenWindow"], true, "{config}");
    assert!(checked(&mut b));

    // A browser leaves an unticked box out of the form.
    let off = [
        ("csrf", csrf.as_str()),
        ("clientId", APP_ID),
        ("verifyToken", "vt"),
    ];
    assert_eq!(b.post("/admin/setup", &off).status, 303);
    let (_, config) = gw.admin("GET", "/api/v1/admin/config", None);
    assert_eq!(config["requireOpenWindow"], false, "{config}");
    assert!(!checked(&mut b));
}

#[test]
fn a_paused_listener_gets_no_new_events_and_its_flow_sees_why() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &["W1"]);
    let receiver = Receiver::start();
    let (listener, _) = gw.add_listener(&key, "W1", "messages", &receiver.url("/hook"));
    let paused = |gw: &Gateway| {
        let (status, body) = gw.request("GET", "/api/v1/listeners", Some(&key), None);
        assert_eq!(status, 200, "{body}");
        body["listeners"][0]["paused"].clone()
    };
    assert_eq!(paused(&gw), false);

    let mut b = logged_in(&gw);
    // Nothing yet: the page says what makes a message event (the guide's
    // "NewMessage never fires" row).
    let page = b.get(&format!("/admin/listeners/{listener}")).body;
    assert!(page.contains("No delivery yet"), "{page}");
    assert!(
        page.contains("write a message <em>to</em> the business number"),
        "{page}"
    );
    let csrf = b.csrf();
    let pause = format!("/admin/listeners/{listener}/pause");
    assert_eq!(b.post(&pause, &[("csrf", &csrf)]).status, 303);
    assert_eq!(
        paused(&gw),
        true,
        "the flow tool can tell why nothing arrives"
    );
    let text = |id: &str| payloads::single_text("W1", "PN1", id, "hello");
    assert_eq!(gw.post_webhook(&text("wamid.while-paused")).0, 200);
    // A test event is asked for: a paused listener gets it.
    let test = format!("/admin/listeners/{listener}/test");
    assert_eq!(b.post(&test, &[("csrf", &csrf)]).status, 303);
    let page = b.get(&format!("/admin/listeners/{listener}")).body;
    assert!(page.contains("Test event queued as delivery"), "{page}");
    let got = receiver.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].json()["test"], true);
    // The Events page tells it apart from what Meta sent.
    let events = b.get("/admin/events").body;
    assert_eq!(events.matches(">test</span>").count(), 1, "{events}");

    let resume = format!("/admin/listeners/{listener}/resume");
    assert_eq!(b.post(&resume, &[("csrf", &csrf)]).status, 303);
    assert_eq!(paused(&gw), false);
    assert_eq!(gw.post_webhook(&text("wamid.after-resume")).0, 200);
    let got = receiver.wait_for_exactly(2, Duration::from_secs(10), Duration::from_millis(500));
    assert_eq!(got[1].json()["data"]["id"], "wamid.after-resume");
    assert!(
        got[1].json().get("test").is_none(),
        "a real event is not marked"
    );
}

#[test]
fn the_admin_sees_which_wabas_meta_sends_events_for_and_subscribes_one() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &["W1", "W2"]);
    let receiver = Receiver::start();
    gw.add_listener(&key, "W1", "messages", &receiver.url("/hook"));
    let mut b = logged_in(&gw);
    assert!(b
        .get("/admin/listeners")
        .body
        .contains(r#"href="/admin/subscriptions""#));
    let row = |page: &str, waba: &str| {
        page.split("<tr>")
            .find(|r| r.contains(&format!(r#"<code class="tag">{waba}</code>"#)))
            .unwrap_or_else(|| panic!("no row for {waba}:\n{page}"))
            .to_string()
    };

    // Starting the trigger subscribed W1; nobody subscribed W2.
    let page = b.get("/admin/subscriptions");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(row(&page.body, "W1").contains(">Subscribed<"));
    assert!(row(&page.body, "W2").contains(">Not subscribed<"));
    // Someone removes the app from W1 in Meta's dashboard: the triggers go silent.
    meta.unsubscribe("W1");
    let page = b.get("/admin/subscriptions").body;
    assert!(row(&page, "W1").contains(">Not subscribed<"), "{page}");
    assert!(row(&page, "W1").contains("triggers stay silent"));

    let csrf = b.csrf();
    let done = b.post("/admin/subscriptions/W1/subscribe", &[("csrf", &csrf)]);
    assert_eq!(
        (done.status, done.location()),
        (303, Some("/admin/subscriptions"))
    );
    let page = b.get("/admin/subscriptions").body;
    assert!(page.contains("WABA W1 subscribed"), "{page}");
    assert!(row(&page, "W1").contains(">Subscribed<"), "{page}");
    let posts = meta.requests_to("POST", "/W1/subscribed_apps");
    assert_eq!(
        posts.len(),
        2,
        "once for the trigger, once from the backoffice"
    );
    assert_eq!(posts[1].header("authorization"), Some("Bearer token-a"));

    // Meta refuses the token: said on the page, with the guide's fix.
    meta.revoke_user("user-token-a");
    let page = b.get("/admin/subscriptions").body;
    assert!(row(&page, "W2").contains("Could not check"), "{page}");
    assert!(row(&page, "W2").contains("190"), "{page}");
    // A WABA no account has.
    b.post("/admin/subscriptions/W9/subscribe", &[("csrf", &csrf)]);
    assert!(b
        .get("/admin/subscriptions")
        .body
        .contains("connected WABA not found"));
}

#[test]
fn the_guides_smoke_test_sends_hello_world_from_the_backoffice() {
    let meta = FakeMeta::start();
    meta.add_phone_number("111", "100000000000001", "+420 800 111 111", true);
    let gw = Gateway::start(&meta);
    gw.configure();
    let (account, _) = gw.add_account(&meta, "token-a", &["111"]);
    let form_path = format!("/admin/accounts/{account}/test-send");
    let mut b = logged_in(&gw);
    assert!(b.get("/admin/accounts").body.contains(&form_path));
    let page = b.get(&form_path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(r#"<option value="100000000000001">"#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"value="hello_world""#));
    let csrf = b.csrf();
    let send = |b: &mut Browser, to: &str| {
        b.post(
            &form_path,
            &[
                ("csrf", csrf.as_str()),
                ("phoneNumberId", "100000000000001"),
                ("to", to),
                ("template", "hello_world"),
                ("language", "en_US"),
            ],
        )
    };

    // Bad input is refused before Meta is called, back on the form with the reason.
    let refused = send(&mut b, "call me maybe");
    assert_eq!(refused.location(), Some(form_path.as_str()));
    assert!(b.get(&form_path).body.contains("is not a phone number"));
    assert!(meta
        .requests_to("POST", "/100000000000001/messages")
        .is_empty());

    let done = send(&mut b, "+420 777 123 456");
    assert_eq!(done.status, 303, "{}", done.body);
    let timeline = done.location().unwrap().to_string();
    assert!(timeline.starts_with("/admin/messages/wamid"), "{timeline}");
    let sends = meta.requests_to("POST", "/100000000000001/messages");
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].header("authorization"), Some("Bearer token-a"));
    assert_eq!(
        sends[0].json(),
        serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": "+420777123456", "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}}})
    );
    // Before Meta's first status: a page that says to wait, not an error.
    let page = b.get(&timeline);
    assert!(
        page.body.contains("Meta accepted the template"),
        "{}",
        page.body
    );
    assert!(page.body.contains("no status yet"), "{}", page.body);

    // Meta reports `sent`: the timeline shows it.
    let message_id = percent_encoding::percent_decode_str(&timeline["/admin/messages/".len()..])
        .decode_utf8()
        .unwrap()
        .to_string();
    let sent = payloads::statuses(
        "111",
        "100000000000001",
        vec![payloads::status(&message_id, "sent", "420777123456")],
    );
    assert_eq!(gw.post_webhook(&sent).0, 200);
    let page = b.get(&timeline);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(r#"id="current-status">sent<"#),
        "{}",
        page.body
    );
}

#[test]
fn five_failed_logins_lock_the_address_out() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let mut b = Browser::new(&gw);
    for _ in 0..5 {
        let form = b.get("/admin/login");
        let resp = b.post(
            "/admin/login",
            &[("csrf", &form.csrf()), ("secret", "guess")],
        );
        assert_eq!(resp.status, 401);
        assert!(resp.body.contains("neither the admin token"));
    }
    let form = b.get("/admin/login");
    let resp = b.post(
        "/admin/login",
        &[("csrf", &form.csrf()), ("secret", ADMIN_TOKEN)],
    );
    assert_eq!(resp.status, 429, "even the right token waits");
    assert!(
        resp.body.contains("Too many failed logins"),
        "{}",
        resp.body
    );
}

#[test]
fn what_whatsapp_users_write_is_shown_as_text() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let body = payloads::notification(&[(
        "111",
        vec![payloads::messages_value(
            "PN1",
            vec![payloads::contact(
                "420777123456",
                "<b onmouseover=alert(1)>Eve</b>",
            )],
            vec![payloads::text(
                "wamid.x",
                "420777123456",
                "<script>alert(1)</script>",
            )],
        )],
    )]);
    assert_eq!(gw.post_webhook(&body).0, 200);
    let quarantined = br#"{"object":"page","note":"<script>alert(2)</script>"}"#;
    assert_eq!(gw.post_webhook(quarantined).0, 200);

    let mut b = logged_in(&gw);
    let page = b.get("/admin/events");
    assert_eq!(page.status, 200);
    // askama escapes < and > as numeric character references.
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("&#60;b onmouseover=alert(1)&#62;Eve&#60;/b&#62;"));
    assert!(page
        .body
        .contains("&#60;script&#62;alert(2)&#60;/script&#62;"));
    assert!(!page.body.contains("<script>alert"));
    assert!(!page.body.contains("<b onmouseover"));
}

#[test]
fn the_admin_password_is_set_from_the_ui_and_logs_in() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let mut b = logged_in(&gw);
    let csrf = b.csrf();
    let short = b.post(
        "/admin/password",
        &[
            ("csrf", &csrf),
            ("current", ADMIN_TOKEN),
            ("password", "short"),
            ("confirm", "short"),
        ],
    );
    assert_eq!(short.status, 303);
    assert!(b
        .get("/admin/setup")
        .body
        .contains("at least 12 characters"));

    let pw = "a long enough passphrase";
    let wrong_current = b.post(
        "/admin/password",
        &[
            ("csrf", &csrf),
            ("current", "nope"),
            ("password", pw),
            ("confirm", pw),
        ],
    );
    assert_eq!(wrong_current.status, 303);
    assert!(b
        .get("/admin/setup")
        .body
        .contains("not the admin token or the current password"));

    b.post(
        "/admin/password",
        &[
            ("csrf", &csrf),
            ("current", ADMIN_TOKEN),
            ("password", pw),
            ("confirm", pw),
        ],
    );
    assert!(b.get("/admin/setup").body.contains("Admin password set"));

    let mut fresh = Browser::new(&gw);
    let resp = fresh.login(pw);
    assert_eq!((resp.status, resp.location()), (303, Some("/admin/setup")));
    let mut token_still_works = Browser::new(&gw);
    assert_eq!(token_still_works.login(ADMIN_TOKEN).status, 303);
}

#[test]
fn an_idle_session_ends() {
    let meta = FakeMeta::start();
    let gw = Gateway::start_with(
        &meta,
        Options {
            args: vec!["--admin-idle-timeout".into(), "2s".into()],
            ..Options::default()
        },
    );
    let mut b = logged_in(&gw);
    assert_eq!(b.get("/admin/setup").status, 200);
    std::thread::sleep(Duration::from_millis(2_600));
    let page = b.get("/admin/setup");
    assert_eq!((page.status, page.location()), (303, Some("/admin/login")));
}

#[test]
fn errors_are_pages_not_raw_500s() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let mut b = logged_in(&gw);
    let missing = b.get("/admin/listeners/lst_nope");
    assert_eq!(missing.status, 404);
    assert!(missing
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(missing.body.contains("listener not found"));

    // Adding an account before the App Secret is set: the page says what to do.
    let csrf = b.csrf();
    let resp = b.post("/admin/accounts", &[("csrf", &csrf), ("accessToken", "t")]);
    assert_eq!(
        (resp.status, resp.location()),
        (303, Some("/admin/accounts"))
    );
    let page = b.get("/admin/accounts");
    assert!(
        page.body
            .contains("Enter the App ID and App Secret on the Setup page"),
        "{}",
        page.body
    );
}

#[test]
fn the_checklist_remembers_the_handshake_across_a_restart() {
    let meta = FakeMeta::start();
    let mut gw = Gateway::start(&meta);
    gw.configure();
    let url = format!(
        "/plugins/appmixer/whatsapp/events?hub.mode=subscribe&hub.verify_token={}&hub.challenge=42",
        crate::support::gateway::VERIFY_TOKEN
    );
    assert_eq!(gw.request("GET", &url, None, None).0, 200);
    let mut b = logged_in(&gw);
    assert!(b
        .get("/admin/setup/checklist")
        .body
        .contains("the verify token matched"));
    // The facts are flushed every 5 s; a clean stop flushes them too.
    assert!(gw.terminate().success());
    gw.restart();
    let mut b = logged_in(&gw);
    let list = b.get("/admin/setup/checklist").body;
    assert!(list.contains("the verify token matched"), "{list}");
}

#[test]
fn a_connect_link_from_the_backoffice_is_one_the_connect_page_takes() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let mut b = logged_in(&gw);
    let csrf = b.csrf();
    let done = b.post("/admin/connect-links", &[("csrf", &csrf)]);
    assert_eq!(
        (done.status, done.location()),
        (303, Some("/admin/accounts"))
    );
    let page = b.get("/admin/accounts");
    let secret = page
        .body
        .split(r#"<code id="flash-secret" class="secret">"#)
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("no link on the page:\n{}", page.body))
        .to_string();
    assert!(secret.contains("/connect?link=wbl_"), "{secret}");
    // Links from the admin API live in the same place.
    gw.connect_link();
    let accounts = b.get("/admin/accounts").body;
    assert!(accounts.contains("2 unused link(s) open"), "{accounts}");

    // /connect knows the backoffice's link: the browser goes on to Meta's login.
    let to = browser::get(&gw.local(&secret)).location();
    assert!(to.starts_with(&meta.url()), "{to}");
    assert!(browser::query(&to, "state").is_some(), "{to}");

    // The admin revokes it from the list: /connect no longer takes it.
    let revoke = accounts
        .split(r#"action="/admin/connect-links/"#)
        .nth(2)
        .and_then(|rest| rest.split('"').next())
        .map(|rest| format!("/admin/connect-links/{rest}"))
        .unwrap_or_else(|| panic!("no revoke form for the second link:\n{accounts}"));
    let done = b.post(&revoke, &[("csrf", &csrf)]);
    assert_eq!(
        (done.status, done.location()),
        (303, Some("/admin/accounts"))
    );
    let accounts = b.get("/admin/accounts").body;
    assert!(accounts.contains("Connect link revoked"), "{accounts}");
    assert!(accounts.contains("1 unused link(s) open"), "{accounts}");
    assert_eq!(browser::get(&gw.local(&secret)).status, 403);
    // Twice: said on the page, not a raw error.
    assert_eq!(b.post(&revoke, &[("csrf", &csrf)]).status, 303);
    let accounts = b.get("/admin/accounts").body;
    assert!(accounts.contains("open connect link"), "{accounts}");
}

/// The whole journey in a real browser. `scripts/test` installs Debian's
/// chromium and playwright-core (tests/ui); without them this test fails and says so.
#[test]
fn an_admin_sets_up_wabridge_in_a_browser() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "the browser test needs chromium and playwright-core: run scripts/test (it installs both)"
    );
    let meta = FakeMeta::start();
    meta.add_token("token-browser", &["111"]);
    meta.add_phone_number("111", "100000000000009", "+420 800 111 119", true);
    let gw = Gateway::start(&meta);
    let receiver = Receiver::start();
    // Every attempt of the first delivery fails (1 + 3 retries); the redelivery succeeds.
    receiver.script((0..4).map(|_| Reply::status(500)));
    let out = Command::new("node")
        .arg(ui.join("backoffice.mjs"))
        .current_dir(&ui)
        .env("WABRIDGE_URL", &gw.base)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("APP_ID", APP_ID)
        .env("APP_SECRET", APP_SECRET)
        .env("META_TOKEN", "token-browser")
        .env("WABA_ID", "111")
        .env("RECEIVER_URL", receiver.url(""))
        .env(
            "OUTPUT_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/output"),
        )
        .output()
        .expect("node is needed for the browser test: run scripts/test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser journey failed\n--- node stdout\n{stdout}\n--- node stderr\n{stderr}\n--- gateway log\n{}",
        gw.log()
    );
    assert_eq!(
        receiver.delivered().len(),
        1,
        "the redelivered event arrived once"
    );
}

#[test]
fn the_admin_adds_a_listener_for_template_events_from_the_listeners_page() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-a", &["W1"]);
    let receiver = Receiver::start();
    let mut b = logged_in(&gw);
    let page = b.get("/admin/listeners").body;
    assert!(page.contains("id=\"add-listener\""), "{page}");
    assert!(page.contains("<option value=\"W1\">"), "{page}");
    let csrf = b.csrf();
    let url = receiver.url("/n8n/webhook");
    // A typo is refused with the reason, and nothing is registered.
    let resp = b.post(
        "/admin/listeners",
        &[
            ("csrf", &csrf),
            ("wabaId", "W1"),
            ("events", "whatsapp.templates.*"),
            ("url", &url),
        ],
    );
    assert_eq!(resp.status, 303);
    let page = b.get("/admin/listeners").body;
    assert!(
        page.contains("not an event type wabridge delivers"),
        "{page}"
    );
    let resp = b.post(
        "/admin/listeners",
        &[
            ("csrf", &csrf),
            ("wabaId", "W1"),
            ("events", "whatsapp.template.*, whatsapp.account.update"),
            ("url", &url),
            ("format", "standard"),
        ],
    );
    assert_eq!(resp.status, 303);
    let (_, list) = gw.request("GET", "/api/v1/listeners", Some(&key), None);
    let listener = list["listeners"][0].clone();
    assert_eq!(
        listener["events"],
        serde_json::json!(["whatsapp.template.*", "whatsapp.account.update"])
    );
    let detail = b
        .get(&format!(
            "/admin/listeners/{}",
            listener["id"].as_str().unwrap()
        ))
        .body;
    assert!(
        detail.contains("whatsapp.template.*, whatsapp.account.update"),
        "{detail}"
    );
    assert!(
        detail.contains("whsec_"),
        "the secret is shown once: {detail}"
    );
    let template = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "W1", "time": 1796213300,
        "changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 9, "message_template_name": "welcome", "message_template_language": "en_US"}}]}]});
    assert_eq!(
        gw.post_webhook(&serde_json::to_vec(&template).unwrap()).0,
        200
    );
    let got = receiver.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].json()["type"], "whatsapp.template.status");
    assert_eq!(got[0].json()["data"]["message_template_name"], "welcome");
}

/// The Accounts page says which WABAs Meta onboarded to MM Lite and which
/// numbers are coexistence numbers, and mints a link for a WhatsApp Business
/// app number.
#[test]
fn the_accounts_page_shows_mm_lite_and_coexistence_and_mints_a_coexistence_link() {
    const WABA: &str = "2000000000071";
    const PHONE: &str = "3000000000071";
    let meta = FakeMeta::start();
    meta.add_phone_number(WABA, PHONE, "+420 800 111 171", true);
    meta.set_on_biz_app(PHONE);
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-coex", &[WABA]);
    let (status, _) = gw.request(
        "GET",
        &format!("/api/v1/business-accounts/{WABA}/phone-numbers"),
        Some(&key),
        None,
    );
    assert_eq!(status, 200);
    let signed = serde_json::json!({"object": "whatsapp_business_account", "entry": [
        {"id": WABA, "changes": [{"field": "account_update", "value": {"event": "MM_LITE_TERMS_SIGNED",
            "waba_info": {"waba_id": WABA, "owner_business_id": "900000000000071"}}}]}]});
    let (status, _) = gw.post_webhook(&serde_json::to_vec(&signed).unwrap());
    assert_eq!(status, 200);

    let mut b = logged_in(&gw);
    let accounts = b.get("/admin/accounts").body;
    let waba = accounts
        .split(&format!(r#"data-waba="{WABA}""#))
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .unwrap_or_else(|| panic!("no WABA {WABA} on the page:\n{accounts}"));
    assert!(waba.contains("MM Lite"), "{waba}");
    assert!(
        waba.contains(&format!("Coexistence number <code>{PHONE}</code>")),
        "{waba}"
    );
    assert!(waba.contains("20 messages/s"), "{waba}");

    let csrf = b.csrf();
    let done = b.post(
        "/admin/connect-links",
        &[("csrf", &csrf), ("coexistence", "1")],
    );
    assert_eq!(done.status, 303);
    let accounts = b.get("/admin/accounts").body;
    assert!(accounts.contains("(coexistence)"), "{accounts}");
    assert!(
        accounts.contains("WhatsApp Business app (coexistence)</td>"),
        "{accounts}"
    );
    let (_, links) = gw.admin("GET", "/api/v1/admin/connect-links", None);
    assert_eq!(links["connectLinks"][0]["coexistence"], true, "{links}");
}
