//! A fake of Meta's Graph API on loopback: `/debug_token`, `/me`,
//! `/{waba}/subscribed_apps`, and scripted answers for anything else.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::server::{Handler, Recorded, Reply, TestServer};

pub const GRAPH_VERSION: &str = "v25.0";
pub const APP_ID: &str = "1234567890";
pub const APP_SECRET: &str = "test-app-secret";

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    /// input_token → the `data` of `/debug_token`.
    tokens: HashMap<String, Value>,
    /// (method, path without version) → replies used once each, before the defaults.
    scripted: HashMap<(String, String), VecDeque<Reply>>,
    /// WABA → app ids subscribed.
    subscribed: HashMap<String, Vec<String>>,
}

pub struct FakeMeta {
    server: TestServer,
    state: Arc<Mutex<State>>,
}

impl FakeMeta {
    pub fn start() -> FakeMeta {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let handler: Handler = Arc::new(move |req: &Recorded| {
            let mut st = s.lock().unwrap();
            st.requests.push(req.clone());
            answer(&mut st, req)
        });
        let server = TestServer::start("127.0.0.1:0".parse().unwrap(), handler).unwrap();
        FakeMeta { server, state }
    }

    /// What `--graph-url` should be.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    /// A valid token with both WhatsApp scopes, granted on these WABAs.
    pub fn add_token(&self, token: &str, wabas: &[&str]) {
        self.add_token_data(
            token,
            json!({
                "app_id": APP_ID,
                "type": "SYSTEM_USER",
                "application": "Test App",
                "is_valid": true,
                "expires_at": 0,
                "scopes": ["whatsapp_business_messaging", "whatsapp_business_management", "public_profile"],
                "granular_scopes": [
                    {"scope": "whatsapp_business_messaging", "target_ids": wabas},
                    {"scope": "whatsapp_business_management", "target_ids": wabas}
                ],
                "user_id": format!("user-{token}")
            }),
        );
    }

    /// Any `/debug_token` data for a token (e.g. one without the WhatsApp scopes).
    pub fn add_token_data(&self, token: &str, data: Value) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.to_string(), data);
    }

    /// The next call to `method path` (path without the version, e.g. `/123/messages`) gets `reply`.
    pub fn script(&self, method: &str, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .entry((method.to_string(), path.to_string()))
            .or_default()
            .push_back(reply);
    }

    /// Marks our app as already subscribed to a WABA.
    pub fn preset_subscribed(&self, waba: &str) {
        self.state
            .lock()
            .unwrap()
            .subscribed
            .entry(waba.to_string())
            .or_default()
            .push(APP_ID.to_string());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests to a path (without the version prefix).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && strip_version(&r.path) == path)
            .collect()
    }
}

fn strip_version(path: &str) -> &str {
    path.strip_prefix(&format!("/{GRAPH_VERSION}"))
        .unwrap_or(path)
}

fn meta_error(status: u16, code: i64, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "FAKEtrace"}}),
    )
}

fn answer(st: &mut State, req: &Recorded) -> Reply {
    let path = strip_version(&req.path).to_string();
    if let Some(reply) = st
        .scripted
        .get_mut(&(req.method.clone(), path.clone()))
        .and_then(VecDeque::pop_front)
    {
        return reply;
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["debug_token"]) => {
            if req.query_param("access_token").as_deref() != Some(&format!("{APP_ID}|{APP_SECRET}"))
            {
                return meta_error(
                    400,
                    190,
                    "Invalid OAuth access token - Cannot parse access token",
                );
            }
            let token = req.query_param("input_token").unwrap_or_default();
            match st.tokens.get(&token) {
                Some(data) => Reply::json(200, json!({"data": data})),
                None => Reply::json(
                    200,
                    json!({"data": {"is_valid": false, "error": {"code": 190, "message": "Invalid OAuth access token."}, "scopes": []}}),
                ),
            }
        }
        ("GET", ["me"]) => Reply::json(200, json!({"id": "user-1", "name": "Test Business"})),
        ("GET", [waba, "subscribed_apps"]) => {
            let apps = st.subscribed.get(*waba).cloned().unwrap_or_default();
            let data: Vec<Value> = apps
                .iter()
                .map(|id| json!({"whatsapp_business_api_data": {"id": id, "name": "Test App"}}))
                .collect();
            Reply::json(200, json!({"data": data}))
        }
        ("POST", [waba, "subscribed_apps"]) => {
            st.subscribed
                .entry(waba.to_string())
                .or_default()
                .push(APP_ID.to_string());
            Reply::json(200, json!({"success": true}))
        }
        _ => meta_error(
            400,
            100,
            &format!("Unsupported {} request to {}", req.method, path),
        ),
    }
}
