//! Media: uploads checked against Meta's limits per kind before they are
//! forwarded, and inbound files fetched for the flow tool with the account's token.

use serde_json::{json, Value};

use super::{bearer, raw, World, PHONE_A, TOKEN_A};

fn upload_path() -> String {
    format!("/api/v1/phone-numbers/{PHONE_A}/media")
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// A multipart form with a `file` part.
fn form(filename: &str, content_type: Option<&str>, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "XyZzYboundary";
    let mut body = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
    )
    .into_bytes();
    if let Some(t) = content_type {
        body.extend_from_slice(format!("content-type: {t}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The file part of the multipart body the gateway sent to Meta.
fn sent_file(body: &[u8]) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(body);
    let start = text.find("name=\"file\"").expect("a file part");
    let head_end = text[start..].find("\r\n\r\n").unwrap() + start;
    let head = text[start..head_end].to_string();
    let data_start = head_end + 4;
    let end = body.len() - body.windows(4).rev().position(|w| w == b"\r\n--").unwrap() - 4;
    (head, body[data_start..end].to_vec())
}

#[test]
fn uploads_by_multipart_and_raw_body_are_forwarded_as_metas_multipart() {
    let w = World::start();
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(7u8, 3000))
        .collect();
    let (ctype, body) = form("logo.png", Some("image/png"), &png);
    let before = w.graph_calls();
    let (status, _, answer) = raw(&w.gw, "POST", &upload_path(), &w.key_a, Some(&ctype), body);
    let answer = json_of(&answer);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], "image/png");
    assert_eq!(answer["kind"], "image");
    assert_eq!(answer["size"], png.len());
    let call = w.only_call(before, "POST", &format!("/{PHONE_A}/media"));
    assert_eq!(answer["mediaId"].as_str().unwrap().len(), 4);
    assert_eq!(bearer(&call), TOKEN_A);
    assert!(call
        .header("content-type")
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
    let sent = String::from_utf8_lossy(&call.body).to_string();
    assert!(sent.contains("name=\"messaging_product\"\r\n\r\nwhatsapp\r\n"));
    assert!(sent.contains("name=\"type\"\r\n\r\nimage/png\r\n"));
    let (head, data) = sent_file(&call.body);
    assert!(head.contains("filename=\"logo.png\""), "{head}");
    assert!(head.contains("content-type: image/png"), "{head}");
    assert_eq!(data, png);

    // A raw body with its Content-Type, and a form part typed only by its file name.
    let pdf = b"%PDF-1.7 test document".to_vec();
    let before = w.graph_calls();
    let (status, _, answer) = raw(
        &w.gw,
        "POST",
        &format!("{}?filename=offer.pdf", upload_path()),
        &w.key_a,
        Some("application/pdf"),
        pdf.clone(),
    );
    assert_eq!(status, 200, "{}", json_of(&answer));
    assert_eq!(json_of(&answer)["kind"], "document");
    let call = w.only_call(before, "POST", &format!("/{PHONE_A}/media"));
    let (head, data) = sent_file(&call.body);
    assert!(
        head.contains("filename=\"offer.pdf\"") && head.contains("application/pdf"),
        "{head}"
    );
    assert_eq!(data, pdf);
    let (ctype, body) = form("voice.ogg", Some("application/octet-stream"), b"OggS....");
    let (status, _, answer) = raw(&w.gw, "POST", &upload_path(), &w.key_a, Some(&ctype), body);
    assert_eq!(
        (status, json_of(&answer)["type"].clone()),
        (200, json!("audio/ogg"))
    );
}

#[test]
fn files_over_metas_limit_or_of_other_types_are_refused_before_meta() {
    let w = World::start();
    assert_eq!(
        w.a("GET", &format!("/api/v1/phone-numbers/{PHONE_A}"), None)
            .0,
        200
    );
    let before = w.graph_calls();
    let big_image = vec![0u8; 5 * 1024 * 1024 + 1];
    let (status, _, answer) = raw(
        &w.gw,
        "POST",
        &upload_path(),
        &w.key_a,
        Some("image/jpeg"),
        big_image.clone(),
    );
    assert_eq!(status, 413, "{}", json_of(&answer));
    assert!(json_of(&answer)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("an image may be at most 5242880 bytes"));
    let (ctype, body) = form("big.jpg", Some("image/jpeg"), &big_image);
    let (status, _, _) = raw(&w.gw, "POST", &upload_path(), &w.key_a, Some(&ctype), body);
    assert_eq!(status, 413);
    let sticker = vec![0u8; 101 * 1024];
    let (status, _, answer) = raw(
        &w.gw,
        "POST",
        &upload_path(),
        &w.key_a,
        Some("image/webp"),
        sticker,
    );
    assert_eq!(status, 413, "{}", json_of(&answer));
    assert!(json_of(&answer)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("static sticker"));

    let (status, _, answer) = raw(
        &w.gw,
        "POST",
        &upload_path(),
        &w.key_a,
        Some("image/gif"),
        b"GIF89a".to_vec(),
    );
    assert_eq!(status, 400);
    assert!(json_of(&answer)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("image/jpeg"));
    let (status, _, _) = raw(
        &w.gw,
        "POST",
        &upload_path(),
        &w.key_a,
        None,
        b"data".to_vec(),
    );
    assert_eq!(status, 400);
    let (status, _, _) = raw(
        &w.gw,
        "POST",
        &upload_path(),
        &w.key_a,
        Some("image/png"),
        Vec::new(),
    );
    assert_eq!(status, 400);
    let (ctype, body) = form("notes.xyz", None, b"data");
    let (status, _, _) = raw(&w.gw, "POST", &upload_path(), &w.key_a, Some(&ctype), body);
    assert_eq!(status, 400);
    let (status, _, _) = raw(
        &w.gw,
        "POST",
        &upload_path(),
        &w.key_a,
        Some("multipart/form-data; boundary=nope"),
        b"garbage".to_vec(),
    );
    assert_eq!(status, 400);
    assert_eq!(w.graph_calls(), before);
}

#[test]
fn an_inbound_image_is_downloaded_without_the_meta_token() {
    let w = World::start();
    let jpeg: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    w.meta.add_media("5550001", "image/jpeg", &jpeg);
    w.webhook(
        PHONE_A,
        vec![json!({"profile": {"name": "Jana"}, "wa_id": "420777000007"})],
        vec![json!({"from": "420777000007", "id": "wamid.M1", "timestamp": "1764000000", "type": "image",
                    "image": {"id": "5550001", "mime_type": "image/jpeg", "sha256": "x"}})],
    );
    let before = w.graph_calls();
    let (status, ctype, bytes) = raw(
        &w.gw,
        "GET",
        "/api/v1/media/5550001",
        &w.key_a,
        None,
        Vec::new(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(ctype, "image/jpeg");
    assert_eq!(bytes, jpeg);
    let lookup = w.only_call(before, "GET", "/5550001");
    assert_eq!(bearer(&lookup), TOKEN_A);
    assert_eq!(
        lookup.query_param("phone_number_id").as_deref(),
        Some(PHONE_A)
    );
    let file = w
        .meta
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/media-file/5550001")
        .unwrap();
    assert_eq!(bearer(&file), TOKEN_A);

    // Account B may not fetch A's inbound media; unknown media is 404 without Meta.
    let before = w.graph_calls();
    let (status, _, _) = raw(
        &w.gw,
        "GET",
        "/api/v1/media/5550001",
        &w.key_b,
        None,
        Vec::new(),
    );
    assert_eq!(status, 403);
    let (status, _, _) = raw(
        &w.gw,
        "GET",
        "/api/v1/media/777",
        &w.key_a,
        None,
        Vec::new(),
    );
    assert_eq!(status, 404);
    let (status, _, _) = raw(
        &w.gw,
        "GET",
        "/api/v1/media/not-an-id",
        &w.key_a,
        None,
        Vec::new(),
    );
    assert_eq!(status, 404);
    assert_eq!(w.graph_calls(), before);

    // Media of one's own number that no webhook brought: by phoneNumberId.
    w.meta.add_media("5550002", "application/pdf", b"%PDF");
    let (status, ctype, bytes) = raw(
        &w.gw,
        "GET",
        &format!("/api/v1/media/5550002?phoneNumberId={PHONE_A}"),
        &w.key_a,
        None,
        Vec::new(),
    );
    assert_eq!(
        (status, ctype.as_str(), bytes.as_slice()),
        (200, "application/pdf", &b"%PDF"[..])
    );
    let (status, _, _) = raw(
        &w.gw,
        "GET",
        &format!("/api/v1/media/5550404?phoneNumberId={PHONE_A}"),
        &w.key_a,
        None,
        Vec::new(),
    );
    assert_eq!(status, 404);
}
