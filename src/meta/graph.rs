//! A small blocking client for Meta's Graph API. Callers run it on the blocking
//! pool; every call carries the token of the account it acts for.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::MetaError;
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct GraphConfig {
    pub base_url: String,
    pub version: String,
}

#[derive(Clone)]
pub struct Graph {
    agent: ureq::Agent,
    config: GraphConfig,
}

/// What `/debug_token` tells about a token.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct DebugToken {
    #[serde(default)]
    pub is_valid: bool,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub granular_scopes: Vec<GranularScope>,
    /// Unix seconds; 0 means the token does not expire.
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default)]
    pub error: Option<Value>,
}

/// What `/oauth/access_token` issues.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuedToken {
    pub access_token: String,
    /// Seconds; absent for tokens that do not expire.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GranularScope {
    pub scope: String,
    #[serde(default)]
    pub target_ids: Vec<String>,
}

impl Graph {
    pub fn new(config: GraphConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .user_agent(concat!("wabridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Graph { agent, config }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.config.base_url,
            self.config.version,
            path.trim_start_matches('/')
        )
    }

    /// `GET /debug_token` with the app token `clientId|clientSecret`.
    pub fn debug_token(
        &self,
        input_token: &str,
        app_id: &str,
        app_secret: &str,
    ) -> Result<DebugToken, Error> {
        let app_token = format!("{app_id}|{app_secret}");
        let resp = self
            .agent
            .get(self.url("debug_token"))
            .query("input_token", input_token)
            .query("access_token", &app_token)
            .call();
        let body = read(resp)?;
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        serde_json::from_value(data)
            .map_err(|e| Error::MetaUnreachable(format!("unexpected /debug_token answer: {e}")))
    }

    /// Trades an OAuth `code` for a token. A code from the OAuth dialog is bound
    /// to its `redirect_uri`, which must be repeated; a code from the JS SDK
    /// (Embedded Signup) has none, and Meta refuses one if sent.
    pub fn exchange_code(
        &self,
        app_id: &str,
        app_secret: &str,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<IssuedToken, Error> {
        let mut req = self
            .agent
            .get(self.url("oauth/access_token"))
            .query("client_id", app_id)
            .query("client_secret", app_secret)
            .query("code", code);
        if let Some(uri) = redirect_uri {
            req = req.query("redirect_uri", uri);
        }
        issued(read(req.call())?)
    }

    /// `grant_type=fb_exchange_token`: a token for a long-lived one (≈60 days),
    /// and a long-lived one for a fresh long-lived one.
    pub fn exchange_long_lived(
        &self,
        app_id: &str,
        app_secret: &str,
        token: &str,
    ) -> Result<IssuedToken, Error> {
        let resp = self
            .agent
            .get(self.url("oauth/access_token"))
            .query("grant_type", "fb_exchange_token")
            .query("client_id", app_id)
            .query("client_secret", app_secret)
            .query("fb_exchange_token", token)
            .call();
        issued(read(resp)?)
    }

    /// A GET on behalf of an account.
    pub fn get(
        &self,
        path: &str,
        token: &AccountToken<'_>,
        query: &[(&str, &str)],
    ) -> Result<Value, Error> {
        self.bodiless(self.agent.get(self.url(path)), token, query)
    }

    /// A JSON POST on behalf of an account.
    pub fn post_json(
        &self,
        path: &str,
        token: &AccountToken<'_>,
        body: &Value,
    ) -> Result<Value, Error> {
        self.with_json(self.agent.post(self.url(path)), token, body)
    }

    /// A DELETE on behalf of an account (Meta takes its arguments in the query).
    pub fn delete(
        &self,
        path: &str,
        token: &AccountToken<'_>,
        query: &[(&str, &str)],
    ) -> Result<Value, Error> {
        self.bodiless(self.agent.delete(self.url(path)), token, query)
    }

    /// A DELETE with a JSON body (Meta's groups take the participants to
    /// remove this way).
    pub fn delete_json(
        &self,
        path: &str,
        token: &AccountToken<'_>,
        body: &Value,
    ) -> Result<Value, Error> {
        self.with_json(
            self.agent.delete(self.url(path)).force_send_body(),
            token,
            body,
        )
    }

    /// A call without a body, on behalf of an account: its arguments in the query.
    fn bodiless(
        &self,
        req: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
        token: &AccountToken<'_>,
        query: &[(&str, &str)],
    ) -> Result<Value, Error> {
        let mut req = req.header("authorization", &format!("Bearer {}", token.token));
        for (k, v) in query {
            req = req.query(k, v);
        }
        if let Some(proof) = token.proof() {
            req = req.query("appsecret_proof", &proof);
        }
        read(req.call())
    }

    fn with_json(
        &self,
        req: ureq::RequestBuilder<ureq::typestate::WithBody>,
        token: &AccountToken<'_>,
        body: &Value,
    ) -> Result<Value, Error> {
        let mut req = req.header("authorization", &format!("Bearer {}", token.token));
        if let Some(proof) = token.proof() {
            req = req.query("appsecret_proof", &proof);
        }
        read(req.send_json(body))
    }
}

/// A file to upload, as one part of a multipart form.
pub struct FilePart<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

impl Graph {
    /// A `multipart/form-data` POST (media upload) on behalf of an account.
    pub fn post_multipart(
        &self,
        path: &str,
        token: &AccountToken<'_>,
        fields: &[(&str, &str)],
        file: &FilePart<'_>,
    ) -> Result<Value, Error> {
        let boundary = format!(
            "wabridge-{}",
            crate::domain::ids::hex(&crate::domain::ids::random_bytes(16))
        );
        let body = multipart_body(&boundary, fields, file);
        let mut req = self
            .agent
            .post(self.url(path))
            .header("authorization", &format!("Bearer {}", token.token))
            .header(
                "content-type",
                &format!("multipart/form-data; boundary={boundary}"),
            );
        if let Some(proof) = token.proof() {
            req = req.query("appsecret_proof", &proof);
        }
        read(req.send(&body[..]))
    }

    /// GETs a media file from the short-lived URL Meta gave, with the account's
    /// token (Meta refuses it without); at most `limit` bytes. The file goes to
    /// an unlinked temporary file, so a 100 MB video never sits in memory.
    pub fn download(&self, url: &str, token: &str, limit: usize) -> Result<Download, Error> {
        let mut resp = self
            .agent
            .get(url)
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .map_err(|e| Error::MetaUnreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            return Err(Error::Meta(MetaError::from_body(status, &text)));
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let failed =
            |e: std::io::Error| Error::MetaUnreachable(format!("downloading the media file: {e}"));
        let mut file = tempfile::tempfile().map_err(failed)?;
        let mut reader = resp.body_mut().with_config().limit(limit as u64).reader();
        let len = std::io::copy(&mut reader, &mut file).map_err(failed)?;
        std::io::Seek::rewind(&mut file).map_err(failed)?;
        Ok(Download {
            content_type,
            file,
            len,
        })
    }
}

/// A media file fetched from Meta, in an unlinked temporary file.
pub struct Download {
    pub content_type: Option<String>,
    pub file: std::fs::File,
    pub len: u64,
}

/// The form fields, then the file, each as a part between boundaries.
fn multipart_body(boundary: &str, fields: &[(&str, &str)], file: &FilePart<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.bytes.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    let filename: String = file
        .filename
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\ncontent-type: {}\r\n\r\n",
            file.content_type
        )
        .as_bytes(),
    );
    body.extend_from_slice(file.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// An account's Meta token, with the app secret when known so that calls carry
/// `appsecret_proof` (Meta's defence against a leaked token used elsewhere).
pub struct AccountToken<'a> {
    pub token: &'a str,
    pub app_secret: Option<&'a str>,
}

impl AccountToken<'_> {
    fn proof(&self) -> Option<String> {
        let secret = self.app_secret.filter(|s| !s.is_empty())?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
        mac.update(self.token.as_bytes());
        Some(crate::domain::ids::hex(&mac.finalize().into_bytes()))
    }
}

fn issued(body: Value) -> Result<IssuedToken, Error> {
    serde_json::from_value(body)
        .map_err(|e| Error::MetaUnreachable(format!("unexpected /oauth/access_token answer: {e}")))
}

fn read(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value, Error> {
    let mut resp = resp.map_err(|e| Error::MetaUnreachable(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(8 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| Error::MetaUnreachable(e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(Error::Meta(MetaError::from_body(status, &text)));
    }
    serde_json::from_str(&text).map_err(|_| Error::Meta(MetaError::from_body(status, &text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_puts_fields_then_the_file() {
        let body = multipart_body(
            "B",
            &[("messaging_product", "whatsapp")],
            &FilePart {
                filename: "a\"b.png",
                content_type: "image/png",
                bytes: b"PNG",
            },
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "--B\r\ncontent-disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n\
             --B\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a_b.png\"\r\ncontent-type: image/png\r\n\r\nPNG\r\n--B--\r\n"
        );
    }

    #[test]
    fn appsecret_proof_is_hmac_of_token() {
        let t = AccountToken {
            token: "abc",
            app_secret: Some("secret"),
        };
        // echo -n abc | openssl dgst -sha256 -hmac secret
        assert_eq!(
            t.proof().unwrap(),
            "9946dad4e00e913fc8be8e5d3f7e110a4a9e832f83fb09c345285d78638d8a0e"
        );
        assert!(AccountToken {
            token: "abc",
            app_secret: None
        }
        .proof()
        .is_none());
    }
}
