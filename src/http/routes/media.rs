//! Media: uploads checked against Meta's limits before they are forwarded, and
//! inbound files fetched with the account's token so a flow tool never needs it.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::access::{is_meta_id, on_account, own_phone_number, Call};
use crate::domain::media::{self, MediaKind, MAX_MEDIA_BYTES};
use crate::error::Error;
use crate::http::auth::require_account;
use crate::http::body::{read_error, read_or_drain, Paced};
use crate::http::query::query_value;
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::meta::FilePart;

/// How much of an oversized upload is read and discarded so the client gets its 413.
const DRAIN_BYTES: usize = MAX_MEDIA_BYTES + 1024 * 1024;

/// A file ready to forward.
struct Upload {
    mime: &'static str,
    kind: MediaKind,
    filename: String,
    bytes: Bytes,
}

/// UploadMedia: `multipart/form-data` with a `file` part (and optionally a
/// `type` part before it), or the raw file with its own Content-Type.
pub async fn upload(state: &AppState, req: Request<Incoming>, id: &str) -> Result<Resp, Error> {
    let (parts, body) = req.into_parts();
    let account = require_account(state, &parts)?;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let upload = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        read_multipart(body, &content_type).await?
    } else {
        let filename = query_value(&parts.uri, "filename");
        read_raw(body, &content_type, filename).await?
    };
    media::check(upload.kind, &upload.bytes)?;
    own_phone_number(state, &account, id).await?;
    let call = Call::new(state, &account);
    let path = format!("{id}/media");
    let (mime, size) = (upload.mime, upload.bytes.len());
    let answer = on_account(state, &account, move || {
        call.graph().post_multipart(
            &path,
            &call.token(),
            &[("messaging_product", "whatsapp"), ("type", upload.mime)],
            &FilePart {
                filename: &upload.filename,
                content_type: upload.mime,
                bytes: &upload.bytes,
            },
        )
    })
    .await?;
    let media_id = answer.get("id").cloned().unwrap_or(Value::Null);
    Ok(response::json(
        StatusCode::OK,
        &json!({"mediaId": media_id, "type": mime, "kind": upload.kind.name(), "size": size}),
    ))
}

async fn read_raw(
    body: Incoming,
    content_type: &str,
    filename: Option<String>,
) -> Result<Upload, Error> {
    if content_type.is_empty() {
        return Err(Error::invalid(
            "content-type",
            "say what the file is: send multipart/form-data with a `file` part, or the raw file with its Content-Type (e.g. image/jpeg)",
        ));
    }
    let (kind, mime) = media::kind_of(content_type)?;
    let bytes = read_or_drain(body, kind.max_bytes(), DRAIN_BYTES)
        .await
        .map_err(|e| match e {
            Error::TooLarge { limit } => media::too_large(media::article(kind), limit),
            other => other,
        })?;
    Ok(Upload {
        mime,
        kind,
        filename: filename.unwrap_or_else(|| default_name(kind)),
        bytes,
    })
}

fn default_name(kind: MediaKind) -> String {
    format!("{}-upload", kind.name())
}

async fn read_multipart(body: Incoming, content_type: &str) -> Result<Upload, Error> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| Error::invalid("content-type", "multipart/form-data needs a boundary"))?;
    let limits = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(DRAIN_BYTES as u64));
    let mut form =
        multer::Multipart::with_constraints(Paced::new(body).into_data_stream(), boundary, limits);
    let mut declared: Option<String> = None;
    while let Some(mut field) = form.next_field().await.map_err(form_error)? {
        match field.name() {
            Some("file") => {
                let filename = field.file_name().map(str::to_string);
                let part_type = field.content_type().map(|m| m.essence_str().to_string());
                let given = declared
                    .or(part_type.filter(|t| t != "application/octet-stream"))
                    .or_else(|| filename.as_deref().and_then(guess_type).map(str::to_string))
                    .unwrap_or_default();
                let (kind, mime) = media::kind_of(&given)?;
                let mut bytes = BytesMut::new();
                let mut seen = 0usize;
                // An oversized part is read on (the form's own limit bounds it) so the client gets its 413.
                while let Some(chunk) = field.chunk().await.map_err(form_error)? {
                    seen += chunk.len();
                    if seen <= kind.max_bytes() {
                        bytes.extend_from_slice(&chunk);
                    }
                }
                if seen > kind.max_bytes() {
                    return Err(media::too_large(media::article(kind), kind.max_bytes()));
                }
                return Ok(Upload {
                    mime,
                    kind,
                    filename: filename.unwrap_or_else(|| default_name(kind)),
                    bytes: bytes.freeze(),
                });
            }
            Some("type") => declared = Some(small_text(&mut field).await?),
            _ => {}
        }
    }
    Err(Error::invalid(
        "file",
        "the form has no `file` part: send the file as a part named \"file\"",
    ))
}

/// A short form field such as `type`.
async fn small_text(field: &mut multer::Field<'_>) -> Result<String, Error> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        out.extend_from_slice(&chunk);
        if out.len() > 256 {
            return Err(Error::invalid(
                "type",
                "must be a MIME type such as image/jpeg",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

fn form_error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamSizeExceeded { limit } => Error::TooLarge {
            limit: limit as usize,
        },
        multer::Error::StreamReadFailed(e) => read_error(&*e),
        other => Error::invalid("body", format!("not a readable multipart form: {other}")),
    }
}

/// The MIME type of a file name's extension, for forms that send none.
fn guess_type(filename: &str) -> Option<&'static str> {
    let ext = filename.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "3gp" => "video/3gpp",
        "aac" => "audio/aac",
        "amr" => "audio/amr",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "opus" => "audio/ogg",
        "txt" => "text/plain",
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => return None,
    })
}

/// The file of an inbound image, audio, video, document or sticker: asks Meta
/// for its short-lived URL, then fetches it with the account's token.
pub async fn download(
    state: &AppState,
    req: Request<Incoming>,
    media_id: &str,
) -> Result<Resp, Error> {
    let phone_param = query_value(req.uri(), "phoneNumberId");
    let account = require_account(state, &req.into_parts().0)?;
    if !is_meta_id(media_id) {
        return Err(Error::NotFound("media"));
    }
    let phone = match (state.store.media_origin(media_id)?, phone_param) {
        (Some(origin), _) if account.waba_ids.contains(&origin.waba_id) => origin.phone_number_id,
        (Some(_), _) => {
            return Err(Error::Forbidden(
                "this media came in to a phone number of another account".into(),
            ))
        }
        (None, Some(phone)) => {
            own_phone_number(state, &account, &phone).await?;
            phone
        }
        (None, None) => return Err(Error::NotFound(
            "media among the inbound messages wabridge received (for other media of your numbers add ?phoneNumberId=)",
        )),
    };
    let call = Call::new(state, &account);
    let media_id = media_id.to_string();
    let (mime, file) = on_account(state, &account, move || {
        let info = call
            .get(&media_id, &[("phone_number_id", &phone)])
            .map_err(|e| match e {
                // Meta's "object does not exist": an unknown or expired media id.
                Error::Meta(m) if m.code == 100 => Error::NotFound(
                    "media at Meta for this phone number (media ids expire after 30 days)",
                ),
                other => other,
            })?;
        let url = info
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::MetaUnreachable("Meta's media answer has no url".into()))?;
        let file = call
            .graph()
            .download(url, call.raw_token(), MAX_MEDIA_BYTES)?;
        let mime = info
            .get("mime_type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(file.content_type.clone());
        Ok((mime, file))
    })
    .await?;
    Ok(response::file(
        mime.as_deref().unwrap_or("application/octet-stream"),
        file.file,
        file.len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_give_a_type_when_the_form_gives_none() {
        assert_eq!(guess_type("photo.JPG"), Some("image/jpeg"));
        assert_eq!(guess_type("offer.pdf"), Some("application/pdf"));
        assert_eq!(guess_type("noext"), None);
        assert_eq!(guess_type("x.exe"), None);
    }
}
