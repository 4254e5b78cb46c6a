//! The flow API (CONTRACT §4) against a fake Meta: every action of the connector
//! guide, the exact Graph request it makes, and the errors a person can act on.

mod calls;
mod groups;
mod marketing;
mod media;
mod messages;
mod numbers;
mod templates;
mod throughput;

use serde_json::{json, Value};

use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::{client, Gateway, Options};
use crate::support::payloads;
use crate::support::server::Recorded;

/// Account A's WABA and its two numbers (the first registered), and account B's.
pub const WABA_A: &str = "2000000000001";
pub const PHONE_A: &str = "3000000000001";
pub const PHONE_A2: &str = "3000000000002";
pub const WABA_B: &str = "2000000000002";
pub const PHONE_B: &str = "3000000000009";
pub const TOKEN_A: &str = "token-account-a";
pub const TOKEN_B: &str = "token-account-b";

/// A gateway with two accounts on a fake Meta.
pub struct World {
    pub meta: FakeMeta,
    pub gw: Gateway,
    pub key_a: String,
    pub key_b: String,
}

impl World {
    pub fn start() -> World {
        Self::start_with(&[])
    }

    /// The same world, the gateway started with extra `serve` flags.
    pub fn start_with(args: &[&str]) -> World {
        let meta = FakeMeta::start();
        meta.add_phone_number(WABA_A, PHONE_A, "+420 800 111 111", true);
        meta.add_phone_number(WABA_A, PHONE_A2, "+420 800 111 112", false);
        meta.add_phone_number(WABA_B, PHONE_B, "+1 555 000 0009", true);
        let gw = Gateway::start_with(
            &meta,
            Options {
                args: args.iter().map(|a| a.to_string()).collect(),
                ..Options::default()
            },
        );
        gw.configure();
        let (_, key_a) = gw.add_account(&meta, TOKEN_A, &[WABA_A]);
        let (_, key_b) = gw.add_account(&meta, TOKEN_B, &[WABA_B]);
        World {
            meta,
            gw,
            key_a,
            key_b,
        }
    }

    /// A flow-API call with account A's key.
    pub fn a(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.gw.request(method, path, Some(&self.key_a), body)
    }

    /// How many Graph calls other than the account checks were made so far.
    /// A POST with account A's key as a flow makes it: (status, Retry-After, body).
    pub fn post_a_with_retry_after(&self, path: &str, body: &Value) -> (u16, Option<u64>, Value) {
        let request = ureq::http::Request::builder()
            .method("POST")
            .uri(self.gw.url(path))
            .header("authorization", format!("Bearer {}", self.key_a))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .unwrap();
        let mut resp = client().run(request).expect("the gateway answers");
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().expect("Retry-After is seconds"));
        let text = resp.body_mut().read_to_string().unwrap();
        (
            resp.status().as_u16(),
            retry_after,
            serde_json::from_str(&text).unwrap(),
        )
    }

    pub fn graph_calls(&self) -> usize {
        self.meta.api_requests().len()
    }

    /// The one Graph call to `method path` made since `before` calls.
    pub fn only_call(&self, before: usize, method: &str, path: &str) -> Recorded {
        let calls: Vec<Recorded> = self.meta.api_requests().into_iter().skip(before).collect();
        let matching: Vec<&Recorded> = calls
            .iter()
            .filter(|r| r.method == method && r.path == format!("/v25.0{path}"))
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one {method} {path}, Meta saw {:?}",
            calls
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        matching[0].clone()
    }

    /// A user's message to a phone number of WABA A, written `age_secs` ago.
    pub fn inbound(
        &self,
        phone: &str,
        wa_id: Option<&str>,
        user_id: Option<&str>,
        id: &str,
        age_secs: u64,
    ) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut contact = json!({"profile": {"name": "Jana"}});
        let mut message = json!({"id": id, "timestamp": (now - age_secs).to_string(), "type": "text", "text": {"body": "hi"}});
        if let Some(w) = wa_id {
            contact["wa_id"] = json!(w);
            message["from"] = json!(w);
        }
        if let Some(u) = user_id {
            contact["user_id"] = json!(u);
            message["from_user_id"] = json!(u);
        }
        self.webhook(phone, vec![contact], vec![message]);
    }

    pub fn webhook(&self, phone: &str, contacts: Vec<Value>, messages: Vec<Value>) {
        let body = payloads::notification(&[(
            WABA_A,
            vec![payloads::messages_value(phone, contacts, messages)],
        )]);
        let (status, answer) = self.gw.post_webhook(&body);
        assert_eq!(status, 200, "{answer}");
    }
}

/// The Bearer token a Graph call carried.
pub fn bearer(r: &Recorded) -> &str {
    r.header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
}

/// A non-JSON request: (status, content type, body).
pub fn raw(
    gw: &Gateway,
    method: &str,
    path: &str,
    key: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(gw.url(path))
        .header("authorization", format!("Bearer {key}"));
    if let Some(t) = content_type {
        builder = builder.header("content-type", t);
    }
    let mut resp = client()
        .run(builder.body(body).unwrap())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(200 * 1024 * 1024)
        .read_to_vec()
        .unwrap();
    (status, ctype, bytes)
}

/// The `error.field` of a 400.
pub fn field(answer: &Value) -> &str {
    answer["error"]["field"].as_str().unwrap_or_default()
}
