//! A small stand-in for the admin's browser on the backoffice (`/admin`): keeps
//! the session cookie, sends forms with an Origin, does not follow redirects, and
//! reads the CSRF token out of the page. (`browser` plays a customer's browser
//! through a login, without a session.)

use std::time::Duration;

use super::gateway::Gateway;

pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The value of the page's first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let start = self
            .body
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no csrf field in:\n{}", self.body))
            + r#"name="csrf" value=""#.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }
}

pub struct Browser {
    pub base: String,
    /// `name=value` of the session cookie, as the server set it last.
    pub cookie: Option<String>,
    /// Sent as `X-Forwarded-For`, as a reverse proxy in front would.
    pub forwarded_for: Option<String>,
    agent: ureq::Agent,
}

impl Browser {
    pub fn new(gw: &Gateway) -> Browser {
        Self::at(&gw.base)
    }

    /// Trusts any certificate: the gateway's own is self-signed.
    pub fn at(base: &str) -> Browser {
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Browser {
            base: base.to_string(),
            cookie: None,
            forwarded_for: None,
            agent,
        }
    }

    pub fn get(&mut self, path: &str) -> Page {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(xff) = &self.forwarded_for {
            req = req.header("x-forwarded-for", xff);
        }
        self.finish(req.call())
    }

    /// A form POST from this gateway's own origin.
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(Some(&origin), path, fields)
    }

    pub fn post_from(&mut self, origin: Option<&str>, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(xff) = &self.forwarded_for {
            req = req.header("x-forwarded-for", xff);
        }
        self.finish(req.send(body.as_bytes()))
    }

    /// Opens the login page and logs in with `secret`.
    pub fn login(&mut self, secret: &str) -> Page {
        let form = self.get("/admin/login");
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.csrf();
        self.post("/admin/login", &[("csrf", &csrf), ("secret", secret)])
    }

    /// The CSRF token of a logged-in page.
    pub fn csrf(&mut self) -> String {
        let page = self.get("/admin/setup");
        assert_eq!(page.status, 200, "not logged in: {:?}", page.location());
        page.csrf()
    }

    fn finish(&mut self, resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Page {
        let mut resp = resp.expect("backoffice request failed");
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let page = Page {
            status: resp.status().as_u16(),
            headers,
            body: resp.body_mut().read_to_string().unwrap_or_default(),
        };
        for line in page.set_cookies() {
            let pair = line.split(';').next().unwrap_or_default().trim();
            let expired = line.contains("Max-Age=0");
            self.cookie = (!expired).then(|| pair.to_string());
        }
        page
    }
}
