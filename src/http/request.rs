//! A request as handlers see it: the head, the route's named parameters,
//! and a body of any kind, so a test can build one without a socket.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::http::request::Parts;
use hyper::Uri;

/// Any request body: hyper's from a connection, or bytes built by a test.
pub type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A body of fixed bytes, for requests built in tests.
#[cfg(test)]
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// hyper's body, boxed.
pub fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// The `{name}` values of the route's pattern, percent-decoded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    pub fn new(pairs: Vec<(&'static str, String)>) -> Params {
        Params(pairs)
    }

    /// The value of `{name}`; empty when the route has no such parameter
    /// (a mistake the route table's tests catch).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

pub struct Req {
    pub parts: Parts,
    pub body: Body,
    pub params: Params,
}

impl Req {
    pub fn new(req: hyper::Request<Body>, params: Params) -> Req {
        let (parts, body) = req.into_parts();
        Req {
            parts,
            body,
            params,
        }
    }

    pub fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }

    /// The first value of `key` in the query, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        query_value(&self.parts.uri, key)
    }

    /// Every pair of the query, in order, percent-decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(&self.parts.uri)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The first value of `key` in the query, percent-decoded.
fn query_value(uri: &Uri, key: &str) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Every pair of the query, in order, percent-decoded.
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_and_the_first_wins() {
        let uri: Uri = "/x?hub.mode=subscribe&a=1%202&a=3&b=".parse().unwrap();
        assert_eq!(query_value(&uri, "a").as_deref(), Some("1 2"));
        assert_eq!(query_value(&uri, "hub.mode").as_deref(), Some("subscribe"));
        assert_eq!(query_value(&uri, "b").as_deref(), Some(""));
        assert_eq!(query_value(&uri, "c"), None);
        assert_eq!(query_value(&"/x".parse().unwrap(), "a"), None);
        assert_eq!(query_pairs(&uri).len(), 4);
    }
}
