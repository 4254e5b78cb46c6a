//! The ownership rules, in-process: a real store in a temporary directory,
//! requests built here and answered by the router without a socket. Two
//! accounts, each with a WABA, a phone number, a listener and a message; each
//! key reaches its own and gets "not yours" for the other's.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;
use tokio::sync::Notify;

use crate::domain::ids::{token_hash, ListenerId};
use crate::domain::model::{Account, AccountStatus, Listener, StatusRecord};
use crate::domain::subscription::{Filters, Format};
use crate::domain::throughput::{Throughput, DEFAULT_RATE};
use crate::domain::urlguard::UrlGuard;
use crate::domain::webhook_health::{WebhookFacts, WebhookWatch};
use crate::http::limits::{BodyBudget, Connections};
use crate::http::password_checks::PasswordChecks;
use crate::http::request::full;
use crate::http::router::handle;
use crate::http::{AppState, Backoffice, Sessions, Throttle};
use crate::meta::{Graph, GraphConfig};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::usecase::flows::{FlowTool, ToolCall};
use crate::usecase::sandbox::Feed;
use crate::usecase::{listeners, Services, Wake};

const ADMIN_TOKEN: &str = "admin-token-admin-token-admin-token";

/// No flow tool: nothing here may reach one.
struct NoFlowTool;

impl FlowTool for NoFlowTool {
    fn exchange<'a>(
        &'a self,
        _: ToolCall<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, String>> + Send + 'a>>
    {
        Box::pin(async { Err("no flow tool in these tests".to_string()) })
    }
}

struct World {
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
}

/// Account `n` has key `key-n`, WABA `10n`, number `20n`, listener `lst_n`
/// and message `wamid.n`.
fn account(n: u8) -> Account {
    Account {
        id: format!("acc_{n}"),
        name: format!("Shop {n}"),
        waba_ids: vec![format!("10{n}")],
        business_account_id: None,
        access_token: format!("meta-token-{n}"),
        token_expires_at: None,
        meta_user_id: None,
        api_key_hash: token_hash(&format!("key-{n}")),
        created_at: 1,
        status: AccountStatus::Ok,
        status_reason: None,
        token_checked_at: None,
        sandbox: None,
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_beside(&dir.path().join("wabridge.redb")).unwrap();
    for n in [1, 2] {
        store.insert_account(account(n), Vec::new()).await.unwrap();
        store
            .remember_phone_numbers(vec![(format!("20{n}"), format!("10{n}"))])
            .await
            .unwrap();
        store
            .insert_listener(Listener {
                id: format!("lst_{n}"),
                account_id: format!("acc_{n}"),
                waba_id: format!("10{n}"),
                event: None,
                events: vec!["whatsapp.message.received".into()],
                filters: Filters::default(),
                format: Format::default(),
                url: "https://flow.example/hook".into(),
                secret: "whsec_c2VjcmV0".into(),
                created_at: 1,
                stopped_reason: None,
                paused: false,
            })
            .await
            .unwrap();
        store
            .record_sent(StatusRecord {
                message_id: format!("wamid.{n}"),
                status: "accepted".into(),
                waba_id: format!("10{n}"),
                phone_number_id: format!("20{n}"),
                received_at: 1,
                ..StatusRecord::default()
            })
            .await
            .unwrap();
    }
    let app = Services {
        settings: RwLock::new(store.settings().unwrap()),
        store,
        // Nothing here may reach Meta: a call would fail, and the test with it.
        graph: Graph::new(GraphConfig {
            base_url: "http://127.0.0.1:9".into(),
            version: "v23.0".into(),
        }),
        guard: UrlGuard { allow: Vec::new() },
        public_url: "https://gw.example".into(),
        facebook_url: "https://www.facebook.com".into(),
        graph_version: "v23.0".into(),
        connect_state_ttl: Duration::from_secs(600),
        metrics: Arc::new(Metrics::default()),
        watch: Arc::new(WebhookWatch::new(WebhookFacts::default())),
        traffic: Arc::default(),
        wake: Wake::new(Arc::new(Notify::new())),
        sandbox_feed: Feed::new().0,
        flow_tool: Arc::new(NoFlowTool),
        send_rate: Mutex::new(Throughput::new(DEFAULT_RATE)),
    };
    let state = AppState {
        app,
        admin_token_hash: token_hash(ADMIN_TOKEN),
        max_body_bytes: 1 << 20,
        connections: Connections::new(16, 16),
        body_budget: BodyBudget::new(1 << 20),
        form_budget: BodyBudget::new(1 << 20),
        backoffice: Backoffice {
            sessions: Sessions::new(Duration::from_secs(600)),
            throttle: Throttle::new(5, Duration::from_secs(900)),
            password_checks: PasswordChecks::start(1, 1),
        },
        api_throttle: Throttle::new(1000, Duration::from_secs(900)),
        trusted_proxies: Vec::new(),
    };
    World {
        state: Arc::new(state),
        _dir: dir,
    }
}

impl World {
    async fn call(&self, method: Method, path: &str, key: &str, body: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(full(body.to_string()))
            .unwrap();
        let resp = handle(self.state.clone(), req).await;
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, key, "").await
    }
}

#[tokio::test]
async fn a_key_lists_and_opens_only_its_own_listeners() {
    let w = world().await;
    let (status, body) = w.get("/api/v1/listeners", "key-1").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["lst_1"]);

    assert_eq!(
        w.get("/api/v1/listeners/lst_1", "key-1").await.0,
        StatusCode::OK
    );
    for path in [
        "/api/v1/listeners/lst_2",
        "/api/v1/listeners/lst_2/deliveries",
    ] {
        let (status, body) = w.get(path, "key-1").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    for path in [
        "/api/v1/listeners/lst_2/test",
        "/api/v1/listeners/lst_2/redeliver-failed",
        "/api/v1/listeners/lst_2/deliveries/1/redeliver",
    ] {
        let (status, _) = w.call(Method::POST, path, "key-1", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = w
        .call(Method::DELETE, "/api/v1/listeners/lst_2", "key-1", "")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        w.state.store.listener("lst_2").unwrap().is_some(),
        "still there"
    );
}

#[tokio::test]
async fn another_accounts_waba_and_number_are_forbidden_before_meta_is_asked() {
    let w = world().await;
    for path in [
        "/api/v1/business-accounts/102/templates",
        "/api/v1/business-accounts/102/phone-numbers",
        "/api/v1/phone-numbers/202",
        "/api/v1/phone-numbers/202/windows/15551234567",
    ] {
        let (status, body) = w.get(path, "key-1").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let send = r#"{"to": "15551234567", "type": "text", "text": {"body": "hi"}}"#;
    let (status, _) = w
        .call(
            Method::POST,
            "/api/v1/phone-numbers/202/messages",
            "key-1",
            send,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let listener = r#"{"wabaId": "102", "events": ["*"], "url": "https://flow.example/x"}"#;
    let (status, _) = w
        .call(Method::POST, "/api/v1/listeners", "key-1", listener)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_own_number_answers_without_meta() {
    let w = world().await;
    let (status, body) = w
        .get("/api/v1/phone-numbers/201/windows/15551234567", "key-1")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["phoneNumberId"], "201");
    assert_eq!(body["window"], "unknown");
}

#[tokio::test]
async fn a_message_history_is_its_accounts_alone() {
    let w = world().await;
    let (status, body) = w.get("/api/v1/messages/wamid.1", "key-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["wabaId"], "101");
    assert_eq!(
        w.get("/api/v1/messages/wamid.2", "key-1").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn keys_and_the_admin_token_open_their_own_doors_only() {
    let w = world().await;
    assert_eq!(
        w.get("/api/v1/admin/accounts", "key-1").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        w.get("/api/v1/me", ADMIN_TOKEN).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = w.get("/api/v1/me", "key-2").await;
    assert_eq!(
        (status, body["id"].as_str()),
        (StatusCode::OK, Some("acc_2"))
    );
    assert_eq!(
        w.get("/api/v1/admin/accounts", ADMIN_TOKEN).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_use_case_refuses_another_accounts_listener() {
    let w = world().await;
    let mine = account(1);
    assert_eq!(
        listeners::owned(&w.state, &mine, &ListenerId::new("lst_1"))
            .unwrap()
            .id,
        "lst_1"
    );
    assert!(matches!(
        listeners::owned(&w.state, &mine, &ListenerId::new("lst_2")),
        Err(crate::error::Error::NotFound("listener"))
    ));
    let all: Vec<String> = listeners::of_account(&w.state, &mine)
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(all, ["lst_1"]);
}

/// CONTRACT §4: input Meta would refuse is a 400 before Meta is asked
/// anything, even about a number wabridge has not learned yet. (Meta is
/// unreachable here: asking it would answer 502.)
#[tokio::test]
async fn bad_input_to_a_number_not_learned_yet_is_a_400_without_meta() {
    let w = world().await;
    for (path, body) in [
        (
            "/api/v1/phone-numbers/999/messages",
            r#"{"to": "not a number", "type": "text", "text": {"body": "hi"}}"#,
        ),
        ("/api/v1/phone-numbers/999/register", r#"{"pin": "12"}"#),
        (
            "/api/v1/phone-numbers/999/ensure-registered",
            r#"{"pin": "12a456"}"#,
        ),
        (
            "/api/v1/phone-numbers/999/business-profile",
            r#"{"vertical": "SPACESHIPS"}"#,
        ),
    ] {
        let (status, answer) = w.call(Method::POST, path, "key-1", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{path}");
    }
    let (status, answer) = w
        .get("/api/v1/phone-numbers/999/windows/not-a-user", "key-1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _) = w
        .call(
            Method::POST,
            "/api/v1/phone-numbers/999/messages/%20/read",
            "key-1",
            "",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn every_backoffice_answer_is_hardened_however_its_path_is_written() {
    let w = world().await;
    for path in [
        "/admin/accounts",
        "//admin/accounts",
        "/admin/accounts/",
        "//admin/nope",
    ] {
        let req = Request::builder().uri(path).body(full("")).unwrap();
        let resp = handle(w.state.clone(), req).await;
        let h = resp.headers();
        assert!(
            h.get("content-security-policy").is_some() && h["x-frame-options"] == "DENY",
            "{path}: {h:?}"
        );
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
}

#[tokio::test]
async fn the_gateways_address_in_a_browser_leads_to_the_backoffice_with_its_icon() {
    let w = world().await;
    let req = Request::builder().uri("/").body(full("")).unwrap();
    let resp = handle(w.state.clone(), req).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/admin");
    // Where that leads, a visitor gets the login page, and every page the icon.
    let req = Request::builder()
        .uri("/admin/login")
        .body(full(""))
        .unwrap();
    let resp = handle(w.state.clone(), req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains(r#"<link rel="icon" type="image/svg+xml" href="data:image/svg+xml,"#),
        "{page}"
    );
}
