use std::collections::BTreeSet;

use super::*;
use crate::domain::paths;
use crate::http::routes::ops;

fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(ops::OPENAPI).expect("openapi.json parses");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Where a request went: the route's method and pattern, and its parameters.
fn found(method: &Method, path: &str) -> Option<(String, &'static str, Params)> {
    match resolve(method, path) {
        Resolved::Found(route, params) => Some((route.method.to_string(), route.path, params)),
        _ => None,
    }
}

/// The API routes are exactly the documented ones. Browser routes are left
/// out of both sides, and so can hide nothing: a documented browser route
/// counts as "not served" here.
#[test]
fn the_openapi_document_lists_exactly_the_api_routes_served() {
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|r| r.audience == Audience::Api)
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in static/openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in static/openapi.json but not served as API routes: {unserved:?}"
    );
}

/// The browser mark cannot take a route of the API out of the drift test.
#[test]
fn no_browser_route_lives_under_the_api() {
    for r in ROUTES {
        assert!(
            !(r.audience == Audience::Browser && r.path.starts_with("/api/")),
            "{} {} is marked Browser but is part of /api/",
            r.method,
            r.path
        );
        // `/` only leads a browser to the backoffice.
        let browser_path = r.path == "/"
            || ["/admin", paths::CONNECT, paths::SIGNUP, paths::CALLBACK]
                .iter()
                .any(|p| r.path.starts_with(p));
        assert_eq!(
            r.audience == Audience::Browser,
            browser_path,
            "{} {}: the mark must follow the path",
            r.method,
            r.path
        );
    }
}

#[test]
fn no_route_is_declared_twice() {
    let mut seen = BTreeSet::new();
    for r in ROUTES {
        assert!(
            seen.insert((r.method.to_string(), r.path)),
            "{} {} twice",
            r.method,
            r.path
        );
    }
}

#[test]
fn every_route_is_reachable_with_its_named_parameters() {
    for r in ROUTES {
        let path = r
            .path
            .split('/')
            .map(|s| match s.strip_prefix('{') {
                Some(name) => format!("v-{}", name.trim_end_matches('}')),
                None => s.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/");
        let (method, pattern, params) =
            found(&r.method, &path).unwrap_or_else(|| panic!("{} {} not found", r.method, r.path));
        assert_eq!((method, pattern), (r.method.to_string(), r.path));
        for name in names_in(r.path) {
            assert_eq!(
                params.get(name),
                format!("v-{name}"),
                "{} {}",
                r.method,
                r.path
            );
        }
    }
}

#[test]
fn unknown_paths_and_methods_are_told_apart() {
    assert!(matches!(resolve(&Method::GET, "/nope"), Resolved::NotFound));
    assert!(matches!(
        resolve(&Method::DELETE, "/api/v1/me"),
        Resolved::WrongMethod(Audience::Api, allow) if allow == "GET"
    ));
    assert!(matches!(
        resolve(&Method::PUT, "/admin/setup"),
        Resolved::WrongMethod(Audience::Browser, allow) if allow == "GET, POST"
    ));
    assert!(matches!(
        resolve(&Method::GET, "/api/v1/phone-numbers//messages"),
        Resolved::NotFound
    ));
    let (_, pattern, params) = found(&Method::GET, "/api/v1/media/12%2034").unwrap();
    assert_eq!(pattern, "/api/v1/media/{mediaId}");
    assert_eq!(params.get("mediaId"), "12 34");
    assert!(matches!(
        resolve(&Method::GET, "/admin/nope"),
        Resolved::NotFound
    ));
    assert!(matches!(
        resolve(&Method::POST, "/admin/listeners/L1/explode"),
        Resolved::NotFound
    ));
    assert_eq!(found(&Method::GET, "/admin/").unwrap().1, "/admin");
    assert_eq!(found(&Method::GET, "//api/v1/me").unwrap().1, "/api/v1/me");
}

/// A flow tool reads when to send again from the document: the send's 429
/// names `Retry-After`, and the codes it carries.
#[test]
fn the_send_documents_its_429_with_retry_after() {
    let doc: serde_json::Value = serde_json::from_str(ops::OPENAPI).expect("openapi.json parses");
    let send = &doc["paths"]["/api/v1/phone-numbers/{phoneNumberId}/messages"]["post"];
    let reference = send["responses"]["429"]["$ref"]
        .as_str()
        .expect("the send has its own 429");
    let name = reference
        .strip_prefix("#/components/responses/")
        .expect("a response component");
    let response = &doc["components"]["responses"][name];
    let header = &response["headers"]["Retry-After"]["$ref"];
    let header = header.as_str().expect("Retry-After is documented");
    let header = &doc["components"]["headers"][header.trim_start_matches("#/components/headers/")];
    assert_eq!(header["schema"]["type"], "integer");
    let description = response["description"].as_str().unwrap();
    for word in ["rate_limited", "130429", "131056"] {
        assert!(description.contains(word), "{word} missing: {description}");
    }
}
