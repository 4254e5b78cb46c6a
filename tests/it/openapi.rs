//! `GET /api/openapi.json`: the document is valid OpenAPI 3 (checked by
//! openapi-spec-validator), every path in it is served, and a schema-driven fuzz
//! run (schemathesis) against the running gateway and a fake Meta finds no 5xx.

use std::process::Command;

use serde_json::Value;

use crate::support::fake_meta::FakeMeta;
use crate::support::gateway::Gateway;

/// The ids the document uses as examples, so that fuzzing reaches real work.
const WABA: &str = "2430596730775767";
const PHONE: &str = "1044539225419737";
const MEDIA: &str = "1037543291543636";

fn document(gw: &Gateway) -> Value {
    let (status, doc) = gw.request("GET", "/api/openapi.json", None, None);
    assert_eq!(status, 200);
    doc
}

#[test]
fn the_served_document_is_valid_openapi_3() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let doc = document(&gw);
    let file = gw.data_dir().with_file_name("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; from openapi_spec_validator import validate; \
             from openapi_spec_validator.readers import read_from_filename; \
             validate(read_from_filename(sys.argv[1])[0]); print('valid')",
        ])
        .arg(&file)
        .output()
        .expect("python3 with openapi-spec-validator is needed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_documented_operation_is_served() {
    let meta = FakeMeta::start();
    let gw = Gateway::start(&meta);
    let doc = document(&gw);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "put", "post", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let (status, body) = gw.request(&method.to_uppercase(), &concrete, None, None);
            let unrouted = body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no route"))
                || status == 405;
            assert!(
                !unrouted,
                "{method} {path} is documented but not served: {status} {body}"
            );
        }
    }
}

/// Whether this CPython has the fix for gh-106905: before 3.11.8/3.12.1 the
/// `ast` module keeps its recursion depth per process, not per thread, so
/// Hypothesis parsing sources in two threads at once (or deep in the
/// `coverage` phase) raises "AST constructor recursion depth mismatch" and
/// ends the run with a tool error, not a finding about wabridge.
fn ast_is_thread_safe() -> bool {
    Command::new("python3")
        .args(["-c", "import sys; v = sys.version_info[:3]; print(v >= (3, 12, 1) or (3, 11, 8) <= v < (3, 12))"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "True")
}

/// Every phase, except `coverage` where `ast` is not thread-safe.
fn phases() -> String {
    if ast_is_thread_safe() {
        "examples,coverage,fuzzing,stateful".into()
    } else {
        "examples,fuzzing,stateful".into()
    }
}

/// Two workers, or one where `ast` is not thread-safe: there two workers
/// describing strategies at the same moment crash Hypothesis (it happened
/// as soon as the marketing-messages operation sat beside the send).
fn workers() -> &'static str {
    if ast_is_thread_safe() {
        "2"
    } else {
        "1"
    }
}

#[test]
fn schemathesis_finds_no_server_error() {
    let meta = FakeMeta::start();
    meta.add_phone_number(WABA, PHONE, "+1 555 635 4389", true);
    meta.add_templates(WABA, 3);
    meta.add_media(MEDIA, "image/jpeg", b"\xff\xd8\xff\xe0 fake jpeg");
    let gw = Gateway::start(&meta);
    gw.configure();
    let (_, key) = gw.add_account(&meta, "fuzz-token", &[WABA]);
    // The flow tool's view, then the admin's, which runs last since it changes
    // accounts at random. Settings are left alone: with clientId cleared, adding an
    // account is a deliberate 503 not_configured, as the webhook is (CONTRACT §2).
    fuzz(&gw, &key, &["--exclude-tag", "admin"]);
    // It really exercised the API, not only the document.
    assert!(
        meta.requests_to("POST", &format!("/{PHONE}/messages"))
            .len()
            > 1
    );
    assert!(!meta
        .requests_to("POST", &format!("/{PHONE}/media"))
        .is_empty());
    // The admin's view includes POST /api/v1/admin/backup: fuzzing it is
    // harmless, as it takes no parameters or body, only copies this small test
    // database into a file the server unlinks once open, and streams it.
    fuzz(
        &gw,
        &gw.admin_token,
        &[
            "--include-tag",
            "admin",
            "--exclude-operation-id",
            "putConfig",
        ],
    );
}

/// One schemathesis run with `token`; panics with its report on any 5xx.
fn fuzz(gw: &Gateway, token: &str, filter: &[&str]) {
    let base = gw.url("");
    let out = Command::new("schemathesis")
        // It keeps a cache in its working directory: not in the source tree.
        .current_dir(gw.data_dir().parent().expect("the test's temp dir"))
        .args(["run", &format!("{base}/api/openapi.json"), "--url", &base])
        .args(["--checks", "not_a_server_error"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(filter)
        .args([
            "--max-examples",
            "40",
            "--seed",
            "20261125",
            "--workers",
            workers(),
        ])
        .args(["--generation-database", "none", "--request-timeout", "20"])
        .args([
            "--suppress-health-check",
            "all",
            "--warnings",
            "off",
            "--no-color",
        ])
        .args(["--phases", &phases()])
        .output()
        .expect("schemathesis is needed (scripts/test installs it from PyPI)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found server errors:\n{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
            .lines()
            .filter(|l| l.contains("status=5"))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The paths (and, where a call names it beside the path, the method) the
/// flow tools' nodes in `integrations/` call, each as the API document
/// describes it: a change to the flow API cannot silently break them.
#[test]
fn every_call_the_flow_tool_nodes_make_is_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc: Value =
        serde_json::from_slice(&std::fs::read(root.join("static/openapi.json")).unwrap()).unwrap();
    // `{phoneNumberId}` and `${encodeURIComponent(id)}` alike become `{}`.
    let shape = |path: &str| -> String {
        let mut out = String::new();
        let mut depth = 0;
        for c in path.chars() {
            match c {
                '{' => {
                    if depth == 0 {
                        out.push_str("{}");
                    }
                    depth += 1;
                }
                '}' => depth -= 1,
                '$' if depth == 0 => {}
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    };
    let documented: Vec<(String, Vec<String>)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| {
            (
                shape(path),
                ops.as_object().unwrap().keys().cloned().collect(),
            )
        })
        .collect();
    let mut calls = 0;
    for file in std::fs::read_dir(root.join("integrations/node-red/nodes")).unwrap() {
        let file = file.unwrap().path();
        if file.extension().is_none_or(|e| e != "js") {
            continue;
        }
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            for literal in line
                .split(['\'', '`'])
                .filter(|s| s.starts_with("/api/v1/"))
            {
                let path = shape(literal);
                let method = ["GET", "POST", "PUT", "DELETE", "PATCH"]
                    .into_iter()
                    .find(|m| line.contains(&format!("request('{m}', ")));
                let found = documented.iter().find(|(p, _)| *p == path);
                let Some((_, methods)) = found else {
                    panic!("{}: {literal} is not in the API document", file.display());
                };
                if let Some(m) = method {
                    assert!(
                        methods.iter().any(|d| d.eq_ignore_ascii_case(m)),
                        "{}: {m} {literal} is not in the API document",
                        file.display()
                    );
                }
                calls += 1;
            }
        }
    }
    assert!(calls >= 6, "the nodes' calls were found ({calls})");
}
