//! Media: uploads checked against Meta's limits before they are forwarded, and
//! inbound files fetched with the account's token so a flow tool never needs it.

use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::header::CONTENT_TYPE;
use hyper::StatusCode;
use serde_json::json;

use crate::domain::media::{self, MediaKind, MAX_MEDIA_BYTES};
use crate::error::Error;
use crate::http::body::{read_error, read_or_drain, Paced};
use crate::http::guards::Caller;
use crate::http::request::{Body, Req};
use crate::http::response::{self, Resp};
use crate::http::AppState;
use crate::usecase::media::{self as media_files, Upload};

/// How much of an oversized upload is read and discarded so the client gets its 413.
const DRAIN_BYTES: usize = MAX_MEDIA_BYTES + 1024 * 1024;

/// UploadMedia: `multipart/form-data` with a `file` part (and optionally a
/// `type` part before it), or the raw file with its own Content-Type.
pub async fn upload(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let number = req.param("phoneNumberId").to_string();
    let content_type = req
        .header(CONTENT_TYPE.as_str())
        .unwrap_or_default()
        .to_string();
    let filename = req.query("filename");
    let upload = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        read_multipart(req.body, &content_type).await?
    } else {
        read_raw(req.body, &content_type, filename).await?
    };
    let done = media_files::upload(state, &account, &number, upload).await?;
    Ok(response::json(
        StatusCode::OK,
        &json!({"mediaId": done.media_id, "type": done.mime, "kind": done.kind.name(), "size": done.size}),
    ))
}

async fn read_raw(
    body: Body,
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

async fn read_multipart(body: Body, content_type: &str) -> Result<Upload, Error> {
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

/// The file of an inbound image, audio, video, document or sticker, fetched
/// from Meta with the account's token.
pub async fn download(state: &AppState, Caller(account): Caller, req: Req) -> Result<Resp, Error> {
    let phone = req.query("phoneNumberId");
    let (mime, file) = media_files::download(state, &account, req.param("mediaId"), phone).await?;
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
