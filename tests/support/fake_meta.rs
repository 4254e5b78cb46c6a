//! A fake of Meta's Graph API on loopback: `/debug_token`, `/me`,
//! `/me/businesses`, `/oauth/access_token` (codes and `fb_exchange_token`),
//! `/{waba}/subscribed_apps`, WABAs with their phone numbers (registration
//! included), message templates with paging (created, read, edited and
//! deleted too), sending and marking read, media
//! upload and download, the business profile, WhatsApp groups (created,
//! listed, read, invite links, participants removed, join requests, deleted),
//! calls (actions, permissions, calling settings) — and scripted answers for
//! anything, which win over the defaults. A token may only act on the WABAs
//! it was granted, as with Meta.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::server::{Handler, Recorded, Reply, TestServer};

pub const GRAPH_VERSION: &str = "v25.0";
pub const APP_ID: &str = "1234567890";
pub const APP_SECRET: &str = "test-app-secret";

#[derive(Default)]
struct State {
    base: String,
    requests: Vec<Recorded>,
    /// input_token → the `data` of `/debug_token`.
    tokens: HashMap<String, Value>,
    /// (method, path without version) → replies used once each, before the defaults.
    scripted: HashMap<(String, String), VecDeque<Reply>>,
    /// WABA → app ids subscribed.
    subscribed: HashMap<String, Vec<String>>,
    /// OAuth code → what it is exchanged for; a code works once.
    codes: HashMap<String, Code>,
    /// Meta users whose tokens were invalidated (password changed, app removed…).
    revoked_users: HashSet<String>,
    /// The businesses `/me/businesses` lists, a page at a time.
    businesses: Vec<Value>,
    /// WABA → the business portfolio that owns it, beside the businesses listed.
    owners: HashMap<String, String>,
    /// How many long-lived tokens were issued: names them apart.
    exchanges: u64,
    /// WABA → its phone numbers as Meta lists them.
    numbers: HashMap<String, Vec<Value>>,
    /// Phone numbers registered on the Cloud API.
    registered: HashSet<String>,
    /// Phone numbers also in use in the WhatsApp Business app (coexistence).
    on_biz_app: HashSet<String>,
    /// Phone numbers Meta upgraded to the higher throughput (`level: HIGH`).
    high_throughput: HashSet<String>,
    /// WABA → its message templates.
    templates: HashMap<String, Vec<Value>>,
    /// media id → (MIME type, bytes).
    media: HashMap<String, (String, Vec<u8>)>,
    /// phone number id → business profile.
    profiles: HashMap<String, Value>,
    /// phone number id → its active groups, as Meta reads one (`participants` included).
    groups: HashMap<String, Vec<Value>>,
    /// A number as sent → the `wa_id` WhatsApp knows it by, where they differ.
    wa_ids: HashMap<String, String>,
    /// phone number id → its `calling` settings (calling is off until set).
    calling: HashMap<String, Value>,
    /// (phone number id, user's wa_id or BSUID) pairs whose user allowed calls.
    call_permissions: HashSet<(String, String)>,
    next_id: u64,
}

#[derive(Clone)]
struct Code {
    token: String,
    /// The dialog's redirect_uri the exchange must repeat; `None` for JS SDK
    /// (Embedded Signup) codes, whose exchange must carry none.
    redirect_uri: Option<String>,
}

/// Lifetime of the long-lived tokens `fb_exchange_token` issues.
pub const LONG_LIVED_SECS: u64 = 60 * 24 * 3600;

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub struct FakeMeta {
    server: TestServer,
    state: Arc<Mutex<State>>,
}

impl FakeMeta {
    pub fn start() -> FakeMeta {
        let state = Arc::new(Mutex::new(State {
            next_id: 1000,
            ..State::default()
        }));
        let s = state.clone();
        let handler: Handler = Arc::new(move |req: &Recorded| {
            let mut st = s.lock().unwrap();
            st.requests.push(req.clone());
            answer(&mut st, req)
        });
        let server = TestServer::start("127.0.0.1:0".parse().unwrap(), handler).unwrap();
        state.lock().unwrap().base = server.base_url();
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

    /// A user's token as a login issues it: both WhatsApp scopes, `target_ids`
    /// naming `wabas` (empty for plain OAuth), expiring in `expires_in` seconds
    /// (`None`: never, like Embedded Signup's System User tokens).
    pub fn add_user_token(&self, token: &str, user: &str, wabas: &[&str], expires_in: Option<u64>) {
        let granular: Vec<Value> = if wabas.is_empty() {
            Vec::new()
        } else {
            vec![
                json!({"scope": "whatsapp_business_messaging", "target_ids": wabas}),
                json!({"scope": "whatsapp_business_management", "target_ids": wabas}),
            ]
        };
        self.add_token_data(
            token,
            json!({
                "app_id": APP_ID,
                "type": "USER",
                "application": "Test App",
                "is_valid": true,
                "expires_at": expires_in.map(|s| now_secs() + s).unwrap_or(0),
                "scopes": ["whatsapp_business_messaging", "whatsapp_business_management", "public_profile"],
                "granular_scopes": granular,
                "user_id": user
            }),
        );
    }

    /// The next exchange of `code` yields `token`. `redirect_uri` as the dialog had it
    /// (plain OAuth), or `None` for a JS SDK code.
    pub fn issue_code(&self, code: &str, token: &str, redirect_uri: Option<&str>) {
        self.state.lock().unwrap().codes.insert(
            code.to_string(),
            Code {
                token: token.to_string(),
                redirect_uri: redirect_uri.map(str::to_string),
            },
        );
    }

    /// What `/me/businesses` lists: one business owning and managing these WABAs.
    pub fn set_businesses(&self, owned: &[&str], client: &[&str]) {
        self.state.lock().unwrap().businesses.clear();
        self.add_business(owned, client);
    }

    /// One more business in the `/me/businesses` listing.
    pub fn add_business(&self, owned: &[&str], client: &[&str]) {
        let list = |ids: &[&str]| json!({"data": ids.iter().map(|id| json!({"id": id, "name": format!("WABA {id}")})).collect::<Vec<_>>()});
        let mut st = self.state.lock().unwrap();
        let n = st.businesses.len() + 1;
        st.businesses.push(json!({
            "id": format!("biz-{n}"),
            "name": format!("Test Business {n}"),
            "owned_whatsapp_business_accounts": list(owned),
            "client_whatsapp_business_accounts": list(client),
        }));
    }

    /// The business portfolio that owns `waba` (`owner_business_info`).
    pub fn set_owner(&self, waba: &str, business: &str) {
        self.state
            .lock()
            .unwrap()
            .owners
            .insert(waba.into(), business.into());
    }

    /// The app is removed from the WABA's subscribed apps, as in Meta's dashboard.
    pub fn unsubscribe(&self, waba: &str) {
        self.state.lock().unwrap().subscribed.remove(waba);
    }

    /// Every token of this user stops working, as after a password change: error 190.
    pub fn revoke_user(&self, user: &str) {
        self.state
            .lock()
            .unwrap()
            .revoked_users
            .insert(user.to_string());
    }

    /// Any `/debug_token` data for a token (e.g. one without the WhatsApp scopes).
    pub fn add_token_data(&self, token: &str, data: Value) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.to_string(), data);
    }

    /// Sends to `to` are answered with this `wa_id`, as Meta does for numbers
    /// whose WhatsApp account uses another writing.
    pub fn set_wa_id(&self, to: &str, wa_id: &str) {
        self.state
            .lock()
            .unwrap()
            .wa_ids
            .insert(to.to_string(), wa_id.to_string());
    }

    /// Calling switched on for a number, as `POST /{id}/settings` would.
    pub fn enable_calling(&self, phone_number_id: &str) {
        self.state
            .lock()
            .unwrap()
            .calling
            .insert(phone_number_id.to_string(), json!({"status": "ENABLED"}));
    }

    /// The user (`wa_id` digits or BSUID) allowed the number to call them.
    pub fn grant_call_permission(&self, phone_number_id: &str, user: &str) {
        self.state
            .lock()
            .unwrap()
            .call_permissions
            .insert((phone_number_id.to_string(), user.to_string()));
    }

    /// A phone number in a WABA, registered on the Cloud API or not.
    pub fn add_phone_number(&self, waba: &str, id: &str, display: &str, registered: bool) {
        let mut st = self.state.lock().unwrap();
        st.numbers.entry(waba.to_string()).or_default().push(json!({
            "id": id,
            "display_phone_number": display,
            "verified_name": "Test Business",
            "quality_rating": "GREEN",
            "code_verification_status": "VERIFIED",
        }));
        if registered {
            st.registered.insert(id.to_string());
        }
    }

    /// A group of `phone` with these participants (`{wa_id, user_id}` objects),
    /// as if created and joined through its invite link.
    pub fn add_group(&self, phone: &str, id: &str, subject: &str, participants: Vec<Value>) {
        let mut st = self.state.lock().unwrap();
        st.groups
            .entry(phone.to_string())
            .or_default()
            .push(new_group(
                id,
                subject,
                json!(null),
                "auto_approve",
                participants,
            ));
    }

    /// A request to join `group` (an `approval_required` group) by `wa_id`.
    pub fn add_join_request(&self, group: &str, request_id: &str, wa_id: &str) {
        let mut st = self.state.lock().unwrap();
        let g = st.group_mut(group).expect("the group exists");
        g["join_requests"]
            .as_array_mut()
            .unwrap()
            .push(json!({"join_request_id": request_id, "wa_id": wa_id, "creation_timestamp": 1_760_000_100}));
    }

    /// Marks a phone number as one that stays in the WhatsApp Business app
    /// (coexistence): Meta lists it with `is_on_biz_app: true`.
    pub fn set_on_biz_app(&self, phone_number_id: &str) {
        self.state
            .lock()
            .unwrap()
            .on_biz_app
            .insert(phone_number_id.to_string());
    }

    /// Marks a phone number as upgraded to Meta's higher throughput (1,000
    /// messages a second): listed with `throughput: {level: "HIGH"}`.
    pub fn set_high_throughput(&self, phone_number_id: &str) {
        self.state
            .lock()
            .unwrap()
            .high_throughput
            .insert(phone_number_id.to_string());
    }

    /// `n` approved templates `template_0` … in a WABA.
    pub fn add_templates(&self, waba: &str, n: usize) {
        let mut st = self.state.lock().unwrap();
        let list = st.templates.entry(waba.to_string()).or_default();
        for i in 0..n {
            list.push(json!({
                "id": format!("tpl{i}"),
                "name": format!("template_{i}"),
                "language": "en_US",
                "status": "APPROVED",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hello {{1}}"}],
            }));
        }
    }

    /// A media file Meta holds (e.g. of an inbound message).
    pub fn add_media(&self, id: &str, mime: &str, bytes: &[u8]) {
        self.state
            .lock()
            .unwrap()
            .media
            .insert(id.to_string(), (mime.to_string(), bytes.to_vec()));
    }

    pub fn is_registered(&self, phone_number_id: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .registered
            .contains(phone_number_id)
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

    /// Requests other than the account checks (`/debug_token`, `/me`).
    pub fn api_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| !matches!(strip_version(&r.path), "/debug_token" | "/me"))
            .collect()
    }
}

pub fn meta_error(status: u16, code: i64, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "FAKEtrace"}}),
    )
}

fn strip_version(path: &str) -> &str {
    path.strip_prefix(&format!("/{GRAPH_VERSION}"))
        .unwrap_or(path)
}

fn bearer(req: &Recorded) -> String {
    req.header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

impl State {
    /// The WABA an id belongs to: itself, or the WABA of a phone number or a template.
    fn owner(&self, id: &str) -> Option<String> {
        if self.numbers.contains_key(id) || self.templates.contains_key(id) {
            return Some(id.to_string());
        }
        if let Some((waba, _)) = self.template(id) {
            return Some(waba);
        }
        if let Some((phone, _)) = self.group(id) {
            return self.owner(&phone);
        }
        self.numbers
            .iter()
            .find(|(_, list)| list.iter().any(|n| n["id"] == id))
            .map(|(waba, _)| waba.clone())
    }

    /// Whether the request's token was granted the WABA that owns `id`.
    fn allowed(&self, req: &Recorded, id: &str) -> bool {
        let Some(waba) = self.owner(id) else {
            return true;
        };
        let granted = self.tokens.get(&bearer(req)).and_then(|t| {
            t["granular_scopes"][0]["target_ids"]
                .as_array()
                .map(|ids| ids.iter().any(|w| w == waba.as_str()))
        });
        granted == Some(true)
    }

    fn phone(&self, id: &str) -> Option<Value> {
        let mut n = self
            .numbers
            .values()
            .flatten()
            .find(|n| n["id"] == id)?
            .clone();
        n["platform_type"] = json!(if self.registered.contains(id) {
            "CLOUD_API"
        } else {
            "NOT_APPLICABLE"
        });
        n["status"] = json!("CONNECTED");
        n["name_status"] = json!("APPROVED");
        n["is_on_biz_app"] = json!(self.on_biz_app.contains(id));
        let level = if self.high_throughput.contains(id) {
            "HIGH"
        } else {
            "STANDARD"
        };
        n["throughput"] = json!({"level": level});
        Some(n)
    }

    /// A template by id, with its WABA.
    fn template(&self, id: &str) -> Option<(String, Value)> {
        self.templates.iter().find_map(|(waba, list)| {
            list.iter()
                .find(|t| t["id"] == id)
                .map(|t| (waba.clone(), t.clone()))
        })
    }

    /// A group by id, with the phone number that created it.
    fn group(&self, id: &str) -> Option<(String, Value)> {
        self.groups.iter().find_map(|(phone, list)| {
            list.iter()
                .find(|g| g["id"] == id)
                .map(|g| (phone.clone(), g.clone()))
        })
    }

    fn group_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.groups.values_mut().flatten().find(|g| g["id"] == id)
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }
}

fn meta_error_sub(code: i64, subcode: i64, message: &str) -> Reply {
    Reply::json(
        400,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "error_subcode": subcode, "fbtrace_id": "FAKEtrace"}}),
    )
}

impl State {
    /// The business portfolio that owns a WABA: set for it, or the listed
    /// business whose owned WABAs include it.
    fn owning_business(&self, waba: &str) -> Option<String> {
        if let Some(b) = self.owners.get(waba) {
            return Some(b.clone());
        }
        self.businesses.iter().find_map(|b| {
            let owned = b
                .pointer("/owned_whatsapp_business_accounts/data")?
                .as_array()?;
            owned
                .iter()
                .any(|w| w["id"] == waba)
                .then(|| b["id"].as_str().unwrap_or_default().to_string())
        })
    }

    fn user_of(&self, token: &str) -> Option<String> {
        self.tokens
            .get(token)?
            .get("user_id")?
            .as_str()
            .map(str::to_string)
    }

    fn revoked(&self, token: &str) -> bool {
        self.user_of(token)
            .is_some_and(|u| self.revoked_users.contains(&u))
    }

    fn debug_data(&self, token: &str) -> Value {
        match self.tokens.get(token) {
            Some(_) if self.revoked(token) => json!({
                "app_id": APP_ID, "is_valid": false, "scopes": [],
                "error": {"code": 190, "subcode": 460, "message": "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."}
            }),
            Some(data) => data.clone(),
            None => {
                json!({"is_valid": false, "error": {"code": 190, "message": "Invalid OAuth access token."}, "scopes": []})
            }
        }
    }
}

/// `/oauth/access_token`: a code (once, with the right redirect_uri) or `fb_exchange_token`.
fn access_token(st: &mut State, req: &Recorded) -> Reply {
    if req.query_param("client_id").as_deref() != Some(APP_ID)
        || req.query_param("client_secret").as_deref() != Some(APP_SECRET)
    {
        return meta_error(400, 1, "Error validating client secret.");
    }
    if req.query_param("grant_type").as_deref() == Some("fb_exchange_token") {
        return long_lived(
            st,
            &req.query_param("fb_exchange_token").unwrap_or_default(),
        );
    }
    let code = req.query_param("code").unwrap_or_default();
    let Some(grant) = st.codes.remove(&code) else {
        return meta_error_sub(100, 36009, "This authorization code has been used.");
    };
    if req.query_param("redirect_uri") != grant.redirect_uri {
        return meta_error_sub(100, 36008, "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request");
    }
    Reply::json(
        200,
        json!({"access_token": grant.token, "token_type": "bearer", "expires_in": 5400}),
    )
}

fn long_lived(st: &mut State, token: &str) -> Reply {
    if !st.tokens.contains_key(token) || st.revoked(token) {
        return meta_error_sub(190, 460, "Error validating access token: The session has been invalidated because the user changed their password.");
    }
    st.exchanges += 1;
    let base = token.split(".ll").next().unwrap_or(token);
    let fresh = format!("{base}.ll{}", st.exchanges);
    let mut data = st.tokens[token].clone();
    data["expires_at"] = json!(now_secs() + LONG_LIVED_SECS);
    st.tokens.insert(fresh.clone(), data);
    Reply::json(
        200,
        json!({"access_token": fresh, "token_type": "bearer", "expires_in": LONG_LIVED_SECS}),
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
    // A revoked user's tokens work nowhere (their state shows in /debug_token).
    if !matches!(
        segments.first(),
        Some(&("debug_token" | "oauth" | "media-file"))
    ) && st.revoked(&bearer(req))
    {
        return meta_error_sub(190, 460, "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.");
    }
    if let Some(first) = segments.first() {
        if !matches!(*first, "debug_token" | "me" | "oauth" | "media-file")
            && !st.allowed(req, first)
        {
            return meta_error(
                400,
                100,
                &format!("Unsupported request - object with ID '{first}' does not exist, cannot be loaded due to missing permissions"),
            );
        }
    }
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["debug_token"]) => debug_token(st, req),
        ("GET", ["oauth", "access_token"]) => access_token(st, req),
        ("GET", ["me"]) => Reply::json(200, json!({"id": "user-1", "name": "Test Business"})),
        ("GET", ["me", "businesses"]) => page(req, &st.businesses),
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
        ("GET", [waba, "phone_numbers"]) => {
            let list: Vec<Value> = st
                .numbers
                .get(*waba)
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|n| st.phone(n["id"].as_str().unwrap_or_default()))
                .collect();
            page(req, &list)
        }
        ("GET", [waba, "message_templates"]) => {
            let mut list = st.templates.get(*waba).cloned().unwrap_or_default();
            if let Some(name) = req.query_param("name") {
                list.retain(|t| t["name"] == name.as_str());
            }
            page(req, &list)
        }
        ("POST", [waba, "message_templates"]) => create_template(st, waba, req),
        ("DELETE", [waba, "message_templates"]) => delete_template(st, waba, req),
        ("POST", [phone, "register"]) => {
            if req.json()["pin"] != "000000" {
                return meta_error(400, 133005, "Two step verification PIN Mismatch");
            }
            st.registered.insert(phone.to_string());
            Reply::json(200, json!({"success": true}))
        }
        ("POST", [phone, "deregister"]) => {
            st.registered.remove(*phone);
            Reply::json(200, json!({"success": true}))
        }
        ("POST", [_, "messages"]) => send(st, req),
        ("POST", [phone, "calls"]) => call(st, phone, req),
        ("GET", [phone, "call_permissions"]) => call_permission(st, phone, req),
        ("GET", [phone, "settings"]) => {
            let calling = st
                .calling
                .get(*phone)
                .cloned()
                .unwrap_or_else(|| json!({"status": "DISABLED"}));
            Reply::json(
                200,
                json!({"calling": calling, "storage_configuration": {"status": "DEFAULT"}}),
            )
        }
        ("POST", [phone, "settings"]) => {
            let Some(change) = req
                .json()
                .get("calling")
                .and_then(Value::as_object)
                .cloned()
            else {
                return meta_error(400, 100, "calling is required");
            };
            let stored = st
                .calling
                .entry(phone.to_string())
                .or_insert_with(|| json!({"status": "DISABLED"}));
            for (k, v) in change {
                stored[k.as_str()] = v;
            }
            Reply::json(200, json!({"success": true}))
        }
        // Marketing Messages Lite: marketing templates only.
        ("POST", [_, "marketing_messages"]) => {
            if req.json()["type"] != "template" {
                return meta_error(400, 100, "(#100) Invalid parameter");
            }
            send(st, req)
        }
        // The Flows public key (kept only in the recorded requests).
        ("POST", [_, "whatsapp_business_encryption"]) => {
            if !req.json()["business_public_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("-----BEGIN PUBLIC KEY-----"))
            {
                return meta_error(400, 100, "business_public_key must be a PEM public key");
            }
            Reply::json(200, json!({"success": true}))
        }
        ("POST", [_, "media"]) => {
            let id = st.new_id();
            st.media
                .insert(id.clone(), ("uploaded".into(), req.body.clone()));
            Reply::json(200, json!({"id": id}))
        }
        ("GET", [phone, "whatsapp_business_profile"]) => {
            let profile = st.profiles.get(*phone).cloned().unwrap_or_else(|| {
                json!({"about": "Hello", "address": "Prague", "description": "A test business",
                       "email": "shop@example.com", "websites": ["https://shop.example.com"], "vertical": "RETAIL",
                       "messaging_product": "whatsapp"})
            });
            Reply::json(200, json!({"data": [profile]}))
        }
        ("POST", [phone, "whatsapp_business_profile"]) => {
            let mut change = req.json();
            if let Some(c) = change.as_object_mut() {
                c.remove("messaging_product");
            }
            st.profiles.insert(phone.to_string(), change);
            Reply::json(200, json!({"success": true}))
        }
        ("GET", ["media-file", id]) => media_file(st, req, id),
        ("POST", [phone, "groups"]) => create_group(st, phone, req),
        ("GET", [phone, "groups"]) => {
            let list: Vec<Value> = st
                .groups
                .get(*phone)
                .into_iter()
                .flatten()
                .map(|g| json!({"id": g["id"], "subject": g["subject"], "creation_timestamp": g["creation_timestamp"]}))
                .collect();
            page(req, &list)
        }
        ("GET", [id, "invite_link"]) | ("POST", [id, "invite_link"]) => {
            let reset = req.method == "POST";
            let fresh = format!("https://chat.whatsapp.com/FAKE{}", st.new_id());
            match st.group_mut(id) {
                Some(g) => {
                    if reset {
                        g["invite_link"] = json!(fresh);
                    }
                    Reply::json(
                        200,
                        json!({"messaging_product": "whatsapp", "invite_link": g["invite_link"]}),
                    )
                }
                None => no_group(id),
            }
        }
        ("DELETE", [id, "participants"]) => {
            let body = req.json();
            let request = format!("REQ{}", st.new_id());
            let Some(g) = st.group_mut(id) else {
                return no_group(id);
            };
            let gone = |p: &Value| {
                body["participants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| {
                        (r.get("user").is_some() && r["user"] == p["wa_id"])
                            || (r.get("user_id").is_some() && r["user_id"] == p["user_id"])
                    })
            };
            if let Some(list) = g["participants"].as_array_mut() {
                list.retain(|p| !gone(p));
                let n = list.len();
                g["total_participant_count"] = json!(n);
            }
            Reply::json(200, json!({"request_id": request}))
        }
        ("GET", [id, "join_requests"]) => match st.group(id) {
            Some((_, g)) => page(req, g["join_requests"].as_array().unwrap()),
            None => no_group(id),
        },
        ("POST", [id, "join_requests"]) | ("DELETE", [id, "join_requests"]) => {
            let approve = req.method == "POST";
            let ids = req.json()["join_requests"].clone();
            let request = format!("REQ{}", st.new_id());
            let Some(g) = st.group_mut(id) else {
                return no_group(id);
            };
            let asked = |r: &Value| {
                ids.as_array()
                    .into_iter()
                    .flatten()
                    .any(|i| *i == r["join_request_id"])
            };
            let pending = g["join_requests"].as_array().cloned().unwrap_or_default();
            let (decided, open): (Vec<Value>, Vec<Value>) = pending.into_iter().partition(asked);
            g["join_requests"] = json!(open);
            if approve {
                let list = g["participants"].as_array_mut().unwrap();
                list.extend(decided.iter().map(|r| json!({"wa_id": r["wa_id"]})));
                let n = list.len();
                g["total_participant_count"] = json!(n);
            }
            Reply::json(200, json!({"request_id": request}))
        }
        ("GET", [id]) if st.group(id).is_some() => {
            let (_, g) = st.group(id).unwrap();
            let mut out = json!({"id": id, "messaging_product": "whatsapp"});
            let fields = req.query_param("fields").unwrap_or_default();
            for f in fields.split(',').filter(|f| !f.is_empty()) {
                out[f] = g[f].clone();
            }
            Reply::json(200, out)
        }
        ("DELETE", [id]) if st.group(id).is_some() => {
            let request = format!("REQ{}", st.new_id());
            for list in st.groups.values_mut() {
                list.retain(|g| g["id"] != *id);
            }
            Reply::json(200, json!({"request_id": request}))
        }
        ("GET", [id]) => object(st, id),
        ("POST", [id]) => edit_template(st, id, req),
        _ => meta_error(
            400,
            100,
            &format!("Unsupported {} request to {}", req.method, path),
        ),
    }
}

fn debug_token(st: &State, req: &Recorded) -> Reply {
    if req.query_param("access_token").as_deref() != Some(&format!("{APP_ID}|{APP_SECRET}")) {
        return meta_error(
            400,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        );
    }
    let token = req.query_param("input_token").unwrap_or_default();
    Reply::json(200, json!({"data": st.debug_data(&token)}))
}

/// `POST /{phone}/groups`: Meta answers with a request id; the group shows
/// in the number's listing at once here (at Meta, after its lifecycle webhook).
fn create_group(st: &mut State, phone: &str, req: &Recorded) -> Reply {
    let body = req.json();
    let n = st.new_id();
    let mode = body["join_approval_mode"]
        .as_str()
        .unwrap_or("auto_approve");
    let group = new_group(
        &format!("Y2FwaV9ncm91cDo{n}"),
        body["subject"].as_str().unwrap_or_default(),
        body["description"].clone(),
        mode,
        Vec::new(),
    );
    st.groups.entry(phone.to_string()).or_default().push(group);
    Reply::json(200, json!({"request_id": format!("REQ{n}")}))
}

fn new_group(
    id: &str,
    subject: &str,
    description: Value,
    mode: &str,
    participants: Vec<Value>,
) -> Value {
    let count = participants.len();
    json!({
        "id": id, "subject": subject, "description": description,
        "join_approval_mode": mode, "suspended": false,
        "creation_timestamp": 1_760_000_000, "participants": participants,
        "total_participant_count": count,
        "invite_link": format!("https://chat.whatsapp.com/FAKE{id}"),
        "join_requests": [],
    })
}

fn no_group(id: &str) -> Reply {
    meta_error(
        400,
        100,
        &format!("Unsupported request - group with ID '{id}' does not exist"),
    )
}

/// A page of `list` as Meta pages: `limit`, `after` (an index here), `paging.next` while more remain.
fn page(req: &Recorded, list: &[Value]) -> Reply {
    let limit: usize = req
        .query_param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25);
    let start: usize = req
        .query_param("after")
        .and_then(|a| a.strip_prefix("cur").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let end = (start + limit).min(list.len());
    let data = list.get(start..end).unwrap_or_default();
    let mut paging =
        json!({"cursors": {"before": format!("cur{start}"), "after": format!("cur{end}")}});
    if end < list.len() {
        paging["next"] = json!(format!(
            "https://graph.facebook.com/next?after=cur{end}&access_token=LEAK"
        ));
    }
    Reply::json(200, json!({"data": data, "paging": paging}))
}

fn send(st: &mut State, req: &Recorded) -> Reply {
    let body = req.json();
    if body["messaging_product"] != "whatsapp" {
        return meta_error(400, 100, "messaging_product is required");
    }
    if body["status"] == "read" {
        return Reply::json(200, json!({"success": true}));
    }
    let id = format!("wamid.FAKE{}", st.new_id());
    let contact = match (body["to"].as_str(), body["recipient"].as_str()) {
        (Some(group), _) if body["recipient_type"] == "group" => json!({"input": group}),
        (Some(to), _) => {
            let digits = to.trim_start_matches('+');
            let wa_id = st.wa_ids.get(digits).map_or(digits, String::as_str);
            json!({"input": to, "wa_id": wa_id})
        }
        (None, Some(user)) => json!({"input": user, "user_id": user}),
        _ => return meta_error(400, 100, "to or recipient is required"),
    };
    Reply::json(
        200,
        json!({"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": id, "message_status": "accepted"}]}),
    )
}

/// `POST /{phone}/calls`: Meta's Calling API. Calling must be enabled on the
/// number (138000), a connect needs the user's permission (138006) and gets
/// a new `wacid.` id; the other actions answer `success`.
fn call(st: &mut State, phone: &str, req: &Recorded) -> Reply {
    let body = req.json();
    if body["messaging_product"] != "whatsapp" {
        return meta_error(400, 100, "messaging_product is required");
    }
    if st.calling.get(phone).map(|c| &c["status"]) != Some(&json!("ENABLED")) {
        return meta_error(400, 138000, "Calling API not enabled");
    }
    match body["action"].as_str() {
        Some("connect") => {
            let user = body["to"].as_str().or(body["recipient"].as_str());
            let Some(user) = user else {
                return meta_error(400, 100, "to or recipient is required");
            };
            if body["session"]["sdp_type"] != "offer" {
                return meta_error(400, 100, "session with an SDP offer is required");
            }
            if !st
                .call_permissions
                .contains(&(phone.to_string(), user.to_string()))
            {
                return meta_error(
                    400,
                    138006,
                    "No approved call permission from the recipient",
                );
            }
            let id = format!("wacid.FAKE{}", st.new_id());
            Reply::json(
                200,
                json!({"messaging_product": "whatsapp", "calls": [{"id": id}]}),
            )
        }
        Some("pre_accept" | "accept" | "reject" | "terminate") if body["call_id"].is_string() => {
            Reply::json(
                200,
                json!({"messaging_product": "whatsapp", "success": true}),
            )
        }
        _ => meta_error(400, 100, "Invalid parameter"),
    }
}

/// `GET /{phone}/call_permissions?user_wa_id=|recipient=`.
fn call_permission(st: &State, phone: &str, req: &Recorded) -> Reply {
    let Some(user) = req
        .query_param("user_wa_id")
        .or_else(|| req.query_param("recipient"))
    else {
        return meta_error(400, 100, "user_wa_id or recipient is required");
    };
    let granted = st.call_permissions.contains(&(phone.to_string(), user));
    let status = if granted {
        "temporary"
    } else {
        "no_permission"
    };
    Reply::json(
        200,
        json!({
            "messaging_product": "whatsapp",
            "permission": {"status": status, "expiration_time": now_secs() + 72 * 3600},
            "actions": [
                {"action_name": "send_call_permission_request", "can_perform_action": !granted,
                 "limits": [{"time_period": "PT24H", "max_allowed": 1, "current_usage": 0}]},
                {"action_name": "start_call", "can_perform_action": granted,
                 "limits": [{"time_period": "PT24H", "max_allowed": 5, "current_usage": 0}]}
            ]
        }),
    )
}

/// A new template is PENDING review, as with Meta; its name is unique per language.
fn create_template(st: &mut State, waba: &str, req: &Recorded) -> Reply {
    let body = req.json();
    let list = st.templates.get(waba).cloned().unwrap_or_default();
    if list
        .iter()
        .any(|t| t["name"] == body["name"] && t["language"] == body["language"])
    {
        return meta_error_sub(
            100,
            2388023,
            "Message template name is being deleted or already exists in this language",
        );
    }
    let id = st.new_id();
    let template = json!({
        "id": id, "name": body["name"], "language": body["language"], "status": "PENDING",
        "category": body["category"], "components": body["components"],
        "quality_score": {"score": "UNKNOWN"},
    });
    st.templates
        .entry(waba.to_string())
        .or_default()
        .push(template);
    Reply::json(
        200,
        json!({"id": id, "status": "PENDING", "category": body["category"]}),
    )
}

/// `POST /{template_id}`: new components and/or category.
fn edit_template(st: &mut State, id: &str, req: &Recorded) -> Reply {
    let change = req.json();
    let found = st.templates.values_mut().flatten().find(|t| t["id"] == id);
    let Some(template) = found else {
        return meta_error(
            400,
            100,
            &format!("Unsupported post request. Object with ID '{id}' does not exist"),
        );
    };
    for key in ["components", "category"] {
        if let Some(v) = change.get(key) {
            template[key] = v.clone();
        }
    }
    Reply::json(200, json!({"success": true}))
}

/// `DELETE /{waba}/message_templates?name=[&hsm_id=]`: all languages by name,
/// or the one with that id.
fn delete_template(st: &mut State, waba: &str, req: &Recorded) -> Reply {
    let name = req.query_param("name").unwrap_or_default();
    let id = req.query_param("hsm_id");
    let list = st.templates.entry(waba.to_string()).or_default();
    let before = list.len();
    list.retain(|t| t["name"] != name.as_str() || id.as_deref().is_some_and(|id| t["id"] != id));
    if list.len() == before {
        return meta_error(400, 100, &format!("Message template \"{name}\" not found"));
    }
    Reply::json(200, json!({"success": true}))
}

/// `GET /{id}`: a WABA, a phone number, a template, or a media file's metadata.
fn object(st: &State, id: &str) -> Reply {
    if let Some(n) = st.phone(id) {
        return Reply::json(200, n);
    }
    if let Some((_, template)) = st.template(id) {
        return Reply::json(200, template);
    }
    let owner = st.owning_business(id);
    if st.numbers.contains_key(id) || st.templates.contains_key(id) || owner.is_some() {
        let mut waba = json!({"id": id, "name": format!("WABA {id}"), "currency": "EUR", "timezone_id": "1", "message_template_namespace": "ns"});
        if let Some(business) = owner {
            waba["owner_business_info"] =
                json!({"id": business, "name": format!("Business {business}")});
        }
        return Reply::json(200, waba);
    }
    match st.media.get(id) {
        Some((mime, bytes)) => Reply::json(
            200,
            json!({"messaging_product": "whatsapp", "id": id, "mime_type": mime, "file_size": bytes.len(),
                   "sha256": "x", "url": format!("{}/media-file/{id}", st.base)}),
        ),
        None => meta_error(
            400,
            100,
            &format!("Unsupported get request. Object with ID '{id}' does not exist"),
        ),
    }
}

/// The short-lived media URL: like Meta's, it needs the token.
fn media_file(st: &State, req: &Recorded, id: &str) -> Reply {
    if !st.tokens.contains_key(&bearer(req)) {
        return Reply::status(401);
    }
    match st.media.get(id) {
        Some((mime, bytes)) => Reply {
            status: 200,
            body: bytes.clone(),
            headers: vec![("content-type".into(), mime.clone())],
            delay: std::time::Duration::ZERO,
        },
        None => Reply::status(404),
    }
}
