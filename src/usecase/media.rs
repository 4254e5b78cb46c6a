//! Media: uploads checked against Meta's limits before they are forwarded,
//! and inbound files fetched with the account's token so a flow tool never
//! needs it.

use bytes::Bytes;
use serde_json::Value;

use super::access::{is_meta_id, on_account, own_phone_number, AccountCall};
use super::Services;
use crate::domain::media::{self, MediaKind, MAX_MEDIA_BYTES};
use crate::domain::model::Account;
use crate::error::Error;
use crate::meta::{Download, FilePart};

/// A file ready to forward.
pub struct Upload {
    pub mime: &'static str,
    pub kind: MediaKind,
    pub filename: String,
    pub bytes: Bytes,
}

/// What Meta gave the uploaded file.
pub struct Uploaded {
    pub media_id: Value,
    pub mime: &'static str,
    pub kind: MediaKind,
    pub size: usize,
}

/// Checks the file against Meta's limits for its kind, then that the number
/// is the account's, and uploads it there.
pub async fn upload(
    app: &Services,
    account: &Account,
    phone_number_id: &str,
    upload: Upload,
) -> Result<Uploaded, Error> {
    media::check(upload.kind, &upload.bytes)?;
    let number = own_phone_number(app, account, phone_number_id).await?;
    let call = AccountCall::new(app, account);
    let path = format!("{}/media", number.id());
    let (mime, kind, size) = (upload.mime, upload.kind, upload.bytes.len());
    let answer = on_account(app, account, move || {
        call.post_multipart(
            &path,
            &[("messaging_product", "whatsapp"), ("type", upload.mime)],
            &FilePart {
                filename: &upload.filename,
                content_type: upload.mime,
                bytes: &upload.bytes,
            },
        )
    })
    .await?;
    Ok(Uploaded {
        media_id: answer.get("id").cloned().unwrap_or(Value::Null),
        mime,
        kind,
        size,
    })
}

/// The file of an inbound image, audio, video, document or sticker, with its
/// MIME type: asks Meta for its short-lived URL, then fetches it with the
/// account's token. The media must have come in to one of the account's
/// numbers, or `phone_number_id` must name one.
pub async fn download(
    app: &Services,
    account: &Account,
    media_id: &str,
    phone_number_id: Option<String>,
) -> Result<(Option<String>, Download), Error> {
    if !is_meta_id(media_id) {
        return Err(Error::NotFound("media"));
    }
    let phone = match (app.store.media_origin(media_id)?, phone_number_id) {
        (Some(origin), _) if account.waba_ids.contains(&origin.waba_id) => origin.phone_number_id,
        (Some(_), _) => {
            return Err(Error::Forbidden(
                "this media came in to a phone number of another account".into(),
            ))
        }
        (None, Some(phone)) => own_phone_number(app, account, &phone).await?.id().to_string(),
        (None, None) => return Err(Error::NotFound(
            "media among the inbound messages wabridge received (for other media of your numbers add ?phoneNumberId=)",
        )),
    };
    let call = AccountCall::new(app, account);
    let media_id = media_id.to_string();
    on_account(app, account, move || {
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
        let file = call.download(url, MAX_MEDIA_BYTES)?;
        let mime = info
            .get("mime_type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(file.content_type.clone());
        Ok((mime, file))
    })
    .await
}
