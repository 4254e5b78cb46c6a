//! The query string of a request URL.

use hyper::Uri;

/// The first value of `key` in the query, percent-decoded.
pub fn query_value(uri: &Uri, key: &str) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Every pair of the query, in order, percent-decoded.
pub fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
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
