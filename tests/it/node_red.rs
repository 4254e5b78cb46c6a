//! The Node-RED nodes (`integrations/node-red`) in a real Node-RED: a flow
//! deployed with a `wabridge in` node registers its listener, receives each
//! signed event once and verified, refuses a forged delivery; a `wabridge
//! send` node's message reaches Meta; removing the node removes the listener.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::{client, Gateway, Options};
use crate::support::payloads;
use crate::support::standard_webhooks::post_delivery;

const WABA: &str = "301";
const PHONE: &str = "100000000000301";

fn package() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/node-red")
}

/// A Node-RED on loopback with our package installed in its user dir.
struct NodeRed {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl NodeRed {
    fn start(flows: &Value) -> NodeRed {
        let red = package().join("node_modules/node-red/red.js");
        assert!(
            red.is_file(),
            "the Node-RED test needs Node-RED: run scripts/test (it runs npm ci in integrations/node-red)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let modules = dir.path().join("node_modules");
        std::fs::create_dir_all(&modules).unwrap();
        std::os::unix::fs::symlink(package(), modules.join("node-red-contrib-wabridge")).unwrap();
        std::fs::write(
            dir.path().join("settings.js"),
            format!(
                "module.exports = {{ uiPort: {port}, uiHost: '127.0.0.1', flowFile: 'flows.json', \
                 credentialSecret: false, httpNodeRoot: '/', logging: {{ console: {{ level: 'info' }} }} }};\n"
            ),
        )
        .unwrap();
        let (flows, credentials) = split_credentials(flows);
        std::fs::write(dir.path().join("flows.json"), flows.to_string()).unwrap();
        std::fs::write(dir.path().join("flows_cred.json"), credentials.to_string()).unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let child = spawn(&dir, &log);
        let red = NodeRed {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            log,
        };
        red.wait_for("its flows started", || red.log().contains("Started flows"));
        red
    }

    /// Stops Node-RED and starts it again on the flows it saved.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.lock().unwrap().clear();
        self.child = spawn(&self.dir, &self.log);
        self.wait_for("its flows started again", || {
            self.log().contains("Started flows")
        });
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(
                Instant::now() < deadline,
                "Node-RED: no sign of {what} in 30 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the flow's `file` node wrote to `name`, a JSON value a line.
    fn written(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn post(&self, path: &str, body: &Value) -> u16 {
        match client()
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("Node-RED-Deployment-Type", "full")
            .send(body.to_string())
        {
            Ok(r) => r.status().as_u16(),
            Err(e) => panic!("POST {path} to Node-RED: {e}"),
        }
    }
}

fn spawn(dir: &tempfile::TempDir, log: &std::sync::Arc<std::sync::Mutex<String>>) -> Child {
    let mut child = Command::new("node")
        .arg(package().join("node_modules/node-red/red.js"))
        .args(["--userDir"])
        .arg(dir.path())
        .args(["--settings"])
        .arg(dir.path().join("settings.js"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed for the Node-RED test: run scripts/test");
    crate::support::log_output(&mut child, log);
    child
}

impl Drop for NodeRed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Node-RED keeps credentials beside the flows, by node id.
fn split_credentials(flows: &Value) -> (Value, Value) {
    let mut flows = flows.clone();
    let mut credentials = json!({});
    for node in flows.as_array_mut().unwrap() {
        if let Some(c) = node.as_object_mut().unwrap().remove("credentials") {
            credentials[node["id"].as_str().unwrap()] = c;
        }
    }
    (flows, credentials)
}

/// The account a flow's nodes use: its API key, WABA and phone number.
struct Account<'a> {
    key: &'a str,
    waba: &'a str,
    phone: &'a str,
}

fn flows(gw: &Gateway, account: &Account, red_base: &str, dir: &Path, with_in: bool) -> Value {
    let file = |id: &str, name: &str| {
        json!({"id": id, "type": "file", "z": "tab", "filename": dir.join(name).display().to_string(),
               "filenameType": "str", "appendNewline": true, "createDir": true,
               "overwriteFile": "false", "encoding": "none", "wires": []})
    };
    let mut nodes = vec![
        json!({"id": "tab", "type": "tab", "label": "wabridge"}),
        // The public URL as someone might type it, not as wabridge keeps it
        // (WHATWG-normalised): the node must find its listener all the same.
        json!({"id": "gw", "type": "wabridge-config", "url": gw.base,
               "publicUrl": red_base.replacen("http://", "HTTP://", 1),
               "trustSelfSigned": gw.base.starts_with("https:"),
               "credentials": {"apiKey": account.key}}),
        json!({"id": "say", "type": "inject", "z": "tab", "props": [{"p": "payload"}],
               "payload": r#"{"to": "+420 777 000 111", "type": "text", "text": {"body": "Hello from Node-RED"}}"#,
               "payloadType": "json", "repeat": "", "once": false, "wires": [["send"]]}),
        // A user known only by a business-scoped user ID: `recipient`, not `to`.
        json!({"id": "sayUser", "type": "inject", "z": "tab", "props": [{"p": "payload"}],
               "payload": format!(r#"{{"recipient": "{USER_ID}", "type": "text", "text": {{"body": "Hello, user"}}}}"#),
               "payloadType": "json", "repeat": "", "once": false, "wires": [["send"]]}),
        json!({"id": "send", "type": "wabridge-send", "z": "tab", "gateway": "gw",
               "phoneNumberId": account.phone, "wires": [["sent"]]}),
        file("sent", "sent.jsonl"),
        file("events", "events.jsonl"),
    ];
    if with_in {
        nodes.push(
            json!({"id": "in", "type": "wabridge-in", "z": "tab", "gateway": "gw",
            "wabaId": account.waba, "events": "whatsapp.message.received", "phoneNumberIds": "",
            "wires": [["events"]]}),
        );
    }
    Value::Array(nodes)
}

#[test]
fn a_node_red_flow_receives_each_event_once_verified_and_sends() {
    let meta = FakeMeta::start();
    meta.add_phone_number(WABA, PHONE, "+420 800 000 301", true);
    // Retries (after the tests' 1 s, 1 s, 2 s) long enough to outlast a
    // restart of Node-RED on a busy machine.
    let gw = Gateway::start_with(
        &meta,
        Options {
            args: vec!["--retry-schedule".into(), "4s,8s,16s".into()],
            ..Options::default()
        },
    );
    gw.configure();
    let (_, key) = gw.add_account(&meta, "token-node-red", &[WABA]);
    // The flows name a port that is only known once Node-RED has one: a
    // first start picks it, the flows are then deployed with it.
    let mut red = NodeRed::start(&json!([]));
    let account = Account {
        key: &key,
        waba: WABA,
        phone: PHONE,
    };
    assert_eq!(
        red.post(
            "/flows",
            &flows(&gw, &account, &red.base, red.dir.path(), true)
        ),
        204
    );

    let listeners = || {
        let (status, body) = gw.request("GET", "/api/v1/listeners", Some(&key), None);
        assert_eq!(status, 200, "{body}");
        body["listeners"].as_array().unwrap().clone()
    };
    red.wait_for("the listener registered", || listeners().len() == 1);
    let listener = &listeners()[0];
    assert_eq!(listener["url"], format!("{}/wabridge/in", red.base));
    assert_eq!(listener["events"], json!(["whatsapp.message.received"]));

    // Two messages, the first sent twice by Meta: two events, each once.
    let first = payloads::single_text(WABA, PHONE, "wamid.NR1", "Do you ship to Brno?");
    let second = payloads::single_text(WABA, PHONE, "wamid.NR2", "And to Ostrava?");
    for body in [&first, &first, &second] {
        assert_eq!(gw.post_webhook(body).0, 200);
    }
    red.wait_for("two events", || red.written("events.jsonl").len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let events = red.written("events.jsonl");
    assert_eq!(events.len(), 2, "{events:?}");
    for (event, id) in events.iter().zip(["wamid.NR1", "wamid.NR2"]) {
        assert_eq!(event["type"], "whatsapp.message.received", "{event}");
        assert!(event.to_string().contains(id), "{event}");
    }

    // A delivery wabridge makes again (same webhook-id) is answered, not
    // output again; the next event is the barrier that shows it.
    let id = listeners()[0]["id"].as_str().unwrap().to_string();
    let deliveries = |key: &str| {
        let path = format!("/api/v1/listeners/{id}/deliveries");
        let (status, body) = gw.request("GET", &path, Some(key), None);
        assert_eq!(status, 200, "{body}");
        body["deliveries"].as_array().unwrap().clone()
    };
    let before = deliveries(&key).last().unwrap().clone();
    let redeliver = format!(
        "/api/v1/listeners/{id}/deliveries/{}/redeliver",
        before["id"]
    );
    assert_eq!(gw.request("POST", &redeliver, Some(&key), None).0, 202);
    red.wait_for("the redelivery answered", || {
        deliveries(&key).iter().any(|d| {
            d["id"] == before["id"]
                && d["state"] == "succeeded"
                && d["lastAttemptAt"] != before["lastAttemptAt"]
        })
    });
    let url = format!("{}/wabridge/in", red.base);
    let (_, one) = gw.request("GET", &format!("/api/v1/listeners/{id}"), Some(&key), None);
    let secret = one["secret"].as_str().unwrap();
    // Signed over the bytes as sent, whitespace and all: the node checks the
    // raw body, not its parsed and re-serialised JSON.
    let spaced = serde_json::to_string_pretty(&json!({"type": "whatsapp.message.received",
        "timestamp": "2026-12-03T10:00:00Z", "data": {"id": "wamid.NR-SPACED"}}))
    .unwrap();
    assert_eq!(
        post_delivery(&url, "msg_spaced", &spaced, Some(secret)),
        204
    );
    red.wait_for("the spaced event", || {
        red.written("events.jsonl").len() >= 3
    });
    let events = red.written("events.jsonl");
    assert_eq!(
        events.len(),
        3,
        "the redelivery was output again: {events:?}"
    );
    assert_eq!(events[2]["data"]["id"], "wamid.NR-SPACED");

    // A delivery not signed with the listener's secret is refused, not output.
    let forged = post_delivery(&url, "msg_forged", &events[0].to_string(), None);
    assert_eq!(forged, 401);
    assert_eq!(red.written("events.jsonl").len(), 3);

    // The send node's message reaches Meta; its answer reaches the flow.
    assert_eq!(red.post("/inject/say", &json!({})), 200);
    red.wait_for("the send's answer", || {
        !red.written("sent.jsonl").is_empty()
    });
    let answer = &red.written("sent.jsonl")[0];
    assert!(
        answer["messageId"].as_str().unwrap().starts_with("wamid."),
        "{answer}"
    );
    let sends = meta.requests_to("POST", &format!("/{PHONE}/messages"));
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].json()["text"]["body"], "Hello from Node-RED");

    // What arrives while Node-RED is down waits at wabridge and reaches the
    // flow after its restart, through the same listener.
    let kept = listeners()[0]["id"].clone();
    red.child.kill().unwrap();
    red.child.wait().unwrap();
    let third = payloads::single_text(WABA, PHONE, "wamid.NR3", "Still open?");
    assert_eq!(gw.post_webhook(&third).0, 200);
    red.restart();
    red.wait_for("the event sent while it was down", || {
        red.written("events.jsonl").len() >= 4
    });
    assert!(red.written("events.jsonl")[3]
        .to_string()
        .contains("wamid.NR3"));
    assert_eq!(listeners().len(), 1);
    assert_eq!(listeners()[0]["id"], kept, "the same listener, found again");

    // The node removed from the flows: its listener goes too.
    let mut without = flows(&gw, &account, &red.base, red.dir.path(), false);
    for node in without.as_array_mut().unwrap() {
        node.as_object_mut().unwrap().remove("credentials");
    }
    assert_eq!(red.post("/flows", &without), 204);
    red.wait_for("the listener removed", || listeners().is_empty());
}

/// A BSUID, as Meta gives one for a user who hides their number.
const USER_ID: &str = "US.13491208655302741918";

/// The README's quick start: a gateway without any Meta App, serving HTTPS
/// with its self-signed certificate and `--webhook-allow-net 127.0.0.0/8` as
/// the README runs it (the harness adds only its plumbing: data dir, port, the
/// fake Meta's URLs, short retries), a sandbox account, a Node-RED flow on its
/// key accepting that certificate, `wabridge simulate --sandbox-key`.
#[test]
fn a_sandbox_feeds_a_node_red_flow_and_answers_its_send() {
    let meta = FakeMeta::start();
    let gw = Gateway::start_with(
        &meta,
        Options {
            tls: true,
            webhook_allow_net: Some("127.0.0.0/8".into()),
            ..Options::default()
        },
    );
    assert!(gw.base.starts_with("https://"), "{}", gw.base);
    let (status, made) = gw.admin(
        "POST",
        "/api/v1/admin/accounts",
        Some(&json!({"sandbox": true})),
    );
    assert_eq!(status, 201, "{made}");
    let text = |v: &Value| v.as_str().unwrap().to_string();
    let (key, waba, phone) = (
        text(&made["apiKey"]),
        text(&made["sandbox"]["wabaId"]),
        text(&made["sandbox"]["phoneNumberId"]),
    );
    let red = NodeRed::start(&json!([]));
    let account = Account {
        key: &key,
        waba: &waba,
        phone: &phone,
    };
    assert_eq!(
        red.post(
            "/flows",
            &flows(&gw, &account, &red.base, red.dir.path(), true)
        ),
        204
    );
    red.wait_for("the listener registered", || {
        let (_, body) = gw.request("GET", "/api/v1/listeners", Some(&key), None);
        body["listeners"].as_array().is_some_and(|l| l.len() == 1)
    });

    let (code, out, err) = crate::sandbox::simulate(&gw, &key, "text");
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    red.wait_for("the simulated event", || {
        !red.written("events.jsonl").is_empty()
    });
    let event = &red.written("events.jsonl")[0];
    assert_eq!(event["sandbox"], true, "{event}");
    assert_eq!(event["data"]["phoneNumberId"], phone.as_str(), "{event}");

    assert_eq!(red.post("/inject/say", &json!({})), 200);
    red.wait_for("the send's answer", || {
        !red.written("sent.jsonl").is_empty()
    });
    let answer = &red.written("sent.jsonl")[0];
    assert!(
        answer["messageId"]
            .as_str()
            .unwrap()
            .starts_with("wamid.SANDBOX"),
        "{answer}"
    );
    assert_eq!(answer["sandbox"], true, "{answer}");

    // A send to a BSUID, as Meta's object takes it, is answered too.
    assert_eq!(red.post("/inject/sayUser", &json!({})), 200);
    red.wait_for("the BSUID send's answer", || {
        red.written("sent.jsonl").len() >= 2
    });
    let answer = &red.written("sent.jsonl")[1];
    assert!(
        answer["messageId"]
            .as_str()
            .is_some_and(|id| id.starts_with("wamid.SANDBOX")),
        "{answer}"
    );
    assert_eq!(answer["userId"], USER_ID, "{answer}");
    assert!(meta.requests().is_empty(), "{:?}", meta.requests());
}
