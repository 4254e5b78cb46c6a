//! Starts the real `wabridge` binary on loopback against a fake Meta, and talks to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fake_meta::{FakeMeta, APP_ID, APP_SECRET};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const VERIFY_TOKEN: &str = "verify-me-please";
/// `--public-url` of every test gateway: the base of the URLs it shows and redirects to.
pub const PUBLIC_URL: &str = "https://gateway.test";

pub struct Options {
    /// Serve HTTPS with the generated certificate instead of `--no-tls`.
    pub tls: bool,
    /// Extra flags for `wabridge serve`. `--delivery-timeout` here replaces the
    /// default 3 s; `--retry-schedule` adds to the default 1s,1s,2s.
    pub args: Vec<String>,
    /// Set WABRIDGE_ADMIN_TOKEN (otherwise the gateway generates one).
    pub admin_token: Option<String>,
    /// `--webhook-allow-net` for listener URLs; `None` starts the gateway without
    /// the flag, so a receiver on loopback is refused as it would be in production.
    pub webhook_allow_net: Option<String>,
    /// The executable to start; `None` means [`binary()`].
    pub binary: Option<PathBuf>,
    /// Extra environment for the gateway (e.g. `RUST_LOG`), applied last.
    pub env: Vec<(String, String)>,
    /// The data dir to use instead of a fresh one in a temporary folder (e.g. a
    /// small filesystem the test mounted).
    pub data_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: false,
            args: Vec::new(),
            admin_token: Some(ADMIN_TOKEN.into()),
            webhook_allow_net: Some("127.0.0.0/8".into()),
            binary: None,
            env: Vec::new(),
            data_dir: None,
        }
    }
}

pub struct Gateway {
    child: Option<Child>,
    pub base: String,
    pub admin_token: String,
    /// Holds the log, and the data dir unless `Options::data_dir` named one.
    temp: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    cmd_args: Vec<String>,
    cmd_env: Vec<(String, String)>,
    options_token: Option<String>,
    /// Lines the gateway printed on stdout.
    pub stdout: Vec<String>,
    agent: ureq::Agent,
}

/// The gateway executable: `$WABRIDGE_BIN` if set, else the one Cargo built for
/// this test or bench target (`target/release/wabridge` under `cargo bench`).
pub fn binary() -> PathBuf {
    match std::env::var_os("WABRIDGE_BIN") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_wabridge")),
    }
}

/// A plain HTTP client that reports every status instead of failing on 4xx/5xx.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// [`client`], trusting any certificate (a gateway's own is self-signed).
pub fn trusting_client() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(true)
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

impl Gateway {
    /// Plain HTTP, flow tools on 127.0.0.0/8 allowed, retries after 1 s, 1 s, 2 s.
    pub fn start(meta: &FakeMeta) -> Gateway {
        Self::start_with(meta, Options::default())
    }

    pub fn start_with(meta: &FakeMeta, options: Options) -> Gateway {
        let temp = tempfile::Builder::new()
            .prefix("wabridge-test-")
            .tempdir()
            .unwrap();
        let data = options.data_dir.unwrap_or_else(|| temp.path().join("data"));
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--public-url".into(),
            PUBLIC_URL.into(),
            "--graph-url".into(),
            meta.url(),
            "--facebook-url".into(),
            meta.url(),
            "--retry-schedule".into(),
            "1s,1s,2s".into(),
        ];
        // A flag given once only: a test or bench that names it in `args` sets its own.
        if !options.args.iter().any(|a| a == "--delivery-timeout") {
            args.extend(["--delivery-timeout".into(), "3s".into()]);
        }
        if !options.tls {
            args.push("--no-tls".into());
        }
        if let Some(nets) = options.webhook_allow_net {
            args.extend(["--webhook-allow-net".into(), nets]);
        }
        args.extend(options.args);
        let agent = if options.tls {
            // The certificate the gateway generated is self-signed.
            trusting_client()
        } else {
            client()
        };
        let mut gw = Gateway {
            child: None,
            base: String::new(),
            admin_token: options.admin_token.clone().unwrap_or_default(),
            temp,
            data,
            bin: options.binary.unwrap_or_else(binary),
            cmd_args: args,
            cmd_env: options.env,
            options_token: options.admin_token,
            stdout: Vec::new(),
            agent,
        };
        gw.spawn();
        gw
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.cmd_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info");
        match &self.options_token {
            Some(t) => cmd.env("WABRIDGE_ADMIN_TOKEN", t),
            None => cmd.env_remove("WABRIDGE_ADMIN_TOKEN"),
        };
        cmd.envs(self.cmd_env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log_path = self.log_path();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path)
                .unwrap();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("wabridge did not start; its log:\n{}", self.log()));
            if let Some(token) = line.strip_prefix("admin token (shown once, keep it safe): ") {
                self.admin_token = token.to_string();
            }
            self.stdout.push(line.clone());
            if let Some(url) = line.strip_prefix("listening on ") {
                self.base = url.to_string();
                break;
            }
        }
        self.child = Some(child);
    }

    /// The running gateway's process id (for /proc/<pid>/status and the like).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    fn log_path(&self) -> PathBuf {
        self.temp.path().join("wabridge.log")
    }

    /// Everything the gateway logged on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether `line` shows up in the log within a few seconds: the gateway
    /// writes its log from a thread of its own, so a line can land a moment
    /// after the answer it goes with.
    pub fn logs(&self, line: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log().contains(line) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// kill -9: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("gateway not running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        wait_timeout(&mut child, Duration::from_secs(30))
            .expect("wabridge did not exit after SIGTERM")
    }

    /// Stops the gateway, lets `edit` work on its data dir (e.g. open the database
    /// as an older or damaged install would have left it), then starts it again.
    pub fn offline(&mut self, edit: impl FnOnce(&Path)) {
        self.kill9();
        edit(&self.data_dir());
        self.spawn();
    }

    /// A URL the gateway showed (under `--public-url`) as one this test can reach.
    pub fn local(&self, public: &str) -> String {
        match public.strip_prefix(PUBLIC_URL) {
            Some(path) => self.url(path),
            None => panic!("{public} is not under {PUBLIC_URL}"),
        }
    }

    /// Sets the Embedded Signup configuration ID (plain OAuth when empty).
    pub fn set_es_config(&self, config_id: &str) {
        let (status, body) = self.admin(
            "PUT",
            "/api/v1/admin/config",
            Some(&json!({"esConfigId": config_id})),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Mints a connect link; returns its URL (under `--public-url`).
    pub fn connect_link(&self) -> String {
        let (status, body) = self.admin("POST", "/api/v1/admin/connect-links", None);
        assert_eq!(status, 201, "{body}");
        body["url"].as_str().unwrap().to_string()
    }

    /// Starts again on the same data dir and flags (a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Starts again with these variables added to its environment, e.g. to
    /// find the secrets key elsewhere.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.cmd_env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.restart();
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = self.url(path);
        let builder = ureq::http::Request::builder().method(method).uri(&url);
        let builder = match bearer {
            Some(t) => builder.header("authorization", format!("Bearer {t}")),
            None => builder,
        };
        let resp = match body {
            Some(b) => self.agent.run(
                builder
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(b).unwrap())
                    .unwrap(),
            ),
            None => self.agent.run(builder.body(Vec::new()).unwrap()),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.request(method, path, Some(&self.admin_token.clone()), body)
    }

    /// Sets the Meta App credentials and the verify token as the admin would.
    pub fn configure(&self) {
        let (status, body) = self.admin(
            "PUT",
            "/api/v1/admin/config",
            Some(&json!({"clientId": APP_ID, "clientSecret": APP_SECRET, "verifyToken": VERIFY_TOKEN})),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Connects an account whose Meta token is granted on `wabas`; returns (account id, API key).
    pub fn add_account(&self, meta: &FakeMeta, token: &str, wabas: &[&str]) -> (String, String) {
        meta.add_token(token, wabas);
        let (status, body) = self.admin(
            "POST",
            "/api/v1/admin/accounts",
            Some(&json!({"accessToken": token})),
        );
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["apiKey"].as_str().unwrap().to_string(),
        )
    }

    /// Registers a listener; returns (listener id, whsec secret).
    pub fn add_listener(
        &self,
        api_key: &str,
        waba: &str,
        event: &str,
        url: &str,
    ) -> (String, String) {
        let (status, body) = self.request(
            "POST",
            "/api/v1/listeners",
            Some(api_key),
            Some(&json!({"wabaId": waba, "event": event, "url": url})),
        );
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["secret"].as_str().unwrap().to_string(),
        )
    }

    /// The value of an unlabelled metric at `/metrics`, by its full name.
    pub fn metric(&self, name: &str) -> u64 {
        sample(&self.metrics(), name)
    }

    /// The whole `/metrics` page: for several samples read at one moment.
    pub fn metrics(&self) -> String {
        let (status, body) = self.request("GET", "/metrics", None, None);
        assert_eq!(status, 200);
        body.as_str().unwrap_or_default().to_string()
    }

    /// POSTs a webhook body as Meta would, signed with the app secret.
    pub fn post_webhook(&self, body: &[u8]) -> (u16, Value) {
        self.post_webhook_signed(body, Some(&super::meta_signature(body, APP_SECRET)))
    }

    pub fn post_webhook_signed(&self, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        let mut req = self
            .agent
            .post(self.url("/plugins/appmixer/whatsapp/events"))
            .header("content-type", "application/json");
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        let mut resp = req.send(body).expect("webhook POST failed");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `wabridge` with arguments to completion: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .current_dir(dir)
        .env_remove("WABRIDGE_ADMIN_TOKEN")
        .output()
        .expect("cannot run wabridge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One sample of a `/metrics` page, by its full name with any labels
/// (`wabridge_listeners{state="active"}`); panics, showing the page, without it.
pub fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
        .parse()
        .unwrap()
}
