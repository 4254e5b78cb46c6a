//! The Embedded Signup page refuses what it was not made for, and shows hostile
//! values as data, never as markup or script.

use wabridge::domain::model::Settings;
use wabridge::store::{KeyLocation, Store};

use crate::support::browser;
use crate::support::fake_meta::{FakeMeta, APP_ID, APP_SECRET};
use crate::support::gateway::Gateway;

const HOSTILE: &str = "1</script><script>alert(\"x\")</script>'<img src=x onerror=alert(1)>&";

fn signup(gw: &Gateway, query: &str) -> browser::Page {
    browser::get(&format!(
        "{}?{query}",
        gw.url("/plugins/appmixer/whatsapp/signup")
    ))
}

#[test]
fn the_page_refuses_a_missing_state_and_a_foreign_redirect() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    gw.set_es_config("987654321");

    let missing = signup(
        &gw,
        "redirect_uri=https%3A%2F%2Fgateway.test%2Fauth%2Fwhatsapp%2Fcallback",
    );
    assert_eq!(missing.status, 400, "{}", missing.body);

    let link = gw.connect_link();
    let to = browser::get(&gw.local(&link)).location();
    let state = browser::query(&to, "state").unwrap();
    let open_redirect = signup(
        &gw,
        &format!(
            "state={state}&redirect_uri=https%3A%2F%2Fevil.example%2Fauth%2Fwhatsapp%2Fcallback"
        ),
    );
    assert_eq!(open_redirect.status, 400, "{}", open_redirect.body);
    assert!(!open_redirect.body.contains("evil.example"));
    assert!(open_redirect.header("location").is_none());

    let hostile_state = signup(
        &gw,
        "state=%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    );
    assert_eq!(hostile_state.status, 400, "{}", hostile_state.body);
    assert!(!hostile_state.body.contains("alert(1)"));
}

#[test]
fn the_page_without_es_config_says_it_is_not_configured() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();
    let page = signup(&gw, "state=anything");
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page
        .body
        .contains("WhatsApp Embedded Signup is not configured"));
}

#[test]
fn a_hostile_es_config_id_from_an_old_database_stays_data() {
    let meta = FakeMeta::start();
    let mut gw = Gateway::start(&meta);
    // The admin API accepts digits only; an old or tampered database may hold anything.
    gw.offline(|dir| {
        let store =
            Store::open(&dir.join("wabridge.redb"), &KeyLocation::in_data_dir(dir)).unwrap();
        let settings = Settings {
            client_id: APP_ID.into(),
            client_secret: APP_SECRET.into(),
            es_config_id: HOSTILE.into(),
            verify_token: "v".into(),
            require_open_window: false,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(store.put_settings(settings)).unwrap();
        store.close();
    });

    let link = gw.connect_link();
    let to = browser::get(&gw.local(&link)).location();
    let page = browser::get(&gw.local(&to));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img"), "{}", page.body);
    assert_eq!(page.body.matches("<script").count(), 3, "{}", page.body);
    // The value survives as data for the SDK, escaped for a script element.
    assert!(
        page.body
            .contains(r#""configId":"1\u003c/script\u003e\u003cscript\u003ealert(\"x\")"#),
        "{}",
        page.body
    );
}

/// A connect link for a WhatsApp Business app number (coexistence) opens
/// Meta's wizard with `featureType: "whatsapp_business_app_onboarding"`; an
/// ordinary link with none. Coexistence needs Embedded Signup: without it
/// the link says so instead of falling back to plain OAuth.
#[test]
fn a_coexistence_link_carries_its_feature_type_into_the_signup_page() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    gw.configure();

    let coexistence = serde_json::json!({"coexistence": true});
    let (status, made) = gw.admin("POST", "/api/v1/admin/connect-links", Some(&coexistence));
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["coexistence"], true);
    let link = made["url"].as_str().unwrap().to_string();
    // No Embedded Signup configured: coexistence cannot be offered.
    let refused = browser::get(&gw.local(&link));
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("Embedded Signup is not configured"));

    gw.set_es_config("987654321");
    let to = browser::get(&gw.local(&link)).location();
    let page = browser::get(&gw.local(&to));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(r#""featureType":"whatsapp_business_app_onboarding""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("cfg.featureType"),
        "the script passes it to FB.login"
    );

    let (_, links) = gw.admin("GET", "/api/v1/admin/connect-links", None);
    let listed = &links["connectLinks"][0];
    assert_eq!(
        (listed["id"].clone(), listed["coexistence"].clone()),
        (made["id"].clone(), true.into())
    );

    let ordinary = gw.connect_link();
    let to = browser::get(&gw.local(&ordinary)).location();
    let page = browser::get(&gw.local(&to));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#""featureType":"""#), "{}", page.body);
}
