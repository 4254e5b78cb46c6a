//! What a browser does during a login, by hand: requests that do not follow
//! redirects, the Location and query of a redirect, the fields of a page's form.
//! (`admin_browser` keeps a backoffice session.)

use std::collections::HashMap;
use std::time::Duration;

/// One answer as a browser sees it.
pub struct Page {
    pub status: u16,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Where a redirect points; panics with the page when it is not one.
    pub fn location(&self) -> String {
        assert_eq!(self.status, 303, "expected a redirect, got:\n{}", self.body);
        self.header("location").unwrap().to_string()
    }

    /// The value of a form field `<input … name="NAME" value="…">`, HTML-unescaped.
    pub fn field(&self, name: &str) -> Option<String> {
        let start = self.body.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &self.body[start..];
        let value = rest.split("value=\"").nth(1)?.split('"').next()?;
        Some(unescape(value))
    }

    /// The text inside the first `<pre class="secret">`: the API key on the success page.
    pub fn secret(&self) -> Option<String> {
        let rest = self.body.split("<pre class=\"secret\">").nth(1)?;
        Some(unescape(rest.split("</pre>").next()?))
    }

    /// The Content-Security-Policy must keep pages from being framed and carry no wildcard script source.
    pub fn assert_browser_headers(&self) {
        let csp = self.header("content-security-policy").expect("no CSP");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("'unsafe-eval'"), "{csp}");
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }
}

fn unescape(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

fn page(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Page {
    let mut resp = resp.expect("request failed");
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    Page {
        status: resp.status().as_u16(),
        headers,
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

pub fn get(url: &str) -> Page {
    page(agent().get(url).call())
}

/// A GET with `Authorization: Bearer <token>`.
pub fn get_with_bearer(url: &str, token: &str) -> Page {
    page(
        agent()
            .get(url)
            .header("authorization", format!("Bearer {token}"))
            .call(),
    )
}

/// A form POST, as the Embedded Signup page submits its form.
pub fn post_form(url: &str, fields: &[(&str, &str)]) -> Page {
    page(agent().post(url).send_form(fields.iter().copied()))
}

/// A query parameter of a URL.
pub fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}
