//! Meta's media kinds: which file types each accepts and how large they may be,
//! checked before an upload is forwarded.

use crate::error::Error;

const KB: usize = 1024;
const MB: usize = 1024 * 1024;

/// The largest file Meta accepts of any kind (documents): the bound on any
/// upload or download wabridge holds in memory.
pub const MAX_MEDIA_BYTES: usize = 100 * MB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Document,
    Image,
    Sticker,
    Video,
}

impl MediaKind {
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Image => "image",
            MediaKind::Sticker => "sticker",
            MediaKind::Video => "video",
        }
    }

    /// The largest file of this kind; for stickers, the animated limit (see `check`).
    pub fn max_bytes(self) -> usize {
        match self {
            MediaKind::Audio | MediaKind::Video => 16 * MB,
            MediaKind::Document => MAX_MEDIA_BYTES,
            MediaKind::Image => 5 * MB,
            MediaKind::Sticker => 500 * KB,
        }
    }
}

/// The MIME types Meta accepts, and their kind.
const TYPES: &[(&str, MediaKind)] = &[
    ("audio/aac", MediaKind::Audio),
    ("audio/amr", MediaKind::Audio),
    ("audio/mpeg", MediaKind::Audio),
    ("audio/mp4", MediaKind::Audio),
    ("audio/ogg", MediaKind::Audio),
    ("text/plain", MediaKind::Document),
    ("application/pdf", MediaKind::Document),
    ("application/msword", MediaKind::Document),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        MediaKind::Document,
    ),
    ("application/vnd.ms-excel", MediaKind::Document),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        MediaKind::Document,
    ),
    ("application/vnd.ms-powerpoint", MediaKind::Document),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        MediaKind::Document,
    ),
    ("image/jpeg", MediaKind::Image),
    ("image/png", MediaKind::Image),
    ("image/webp", MediaKind::Sticker),
    ("video/mp4", MediaKind::Video),
    ("video/3gpp", MediaKind::Video),
];

const STATIC_STICKER_BYTES: usize = 100 * KB;

/// The kind of a MIME type (parameters such as `; codecs=opus` ignored) and the
/// type as Meta wants it, or a 400 that lists what Meta accepts.
pub fn kind_of(content_type: &str) -> Result<(MediaKind, &'static str), Error> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let essence = if essence == "video/3gp" {
        "video/3gpp".to_string()
    } else {
        essence
    };
    TYPES
        .iter()
        .find(|(mime, _)| *mime == essence)
        .map(|(mime, kind)| (*kind, *mime))
        .ok_or_else(|| {
            Error::invalid(
                "type",
                format!(
                    "{content_type:?} is not a media type WhatsApp accepts; use one of {}",
                    TYPES.iter().map(|(m, _)| *m).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

/// Checks a whole file against its kind's limit: 413 when it is too large,
/// 400 when it is empty.
pub fn check(kind: MediaKind, bytes: &[u8]) -> Result<(), Error> {
    if bytes.is_empty() {
        return Err(Error::invalid("file", "the file is empty"));
    }
    let (limit, what) = match kind {
        MediaKind::Sticker if !is_animated_webp(bytes) => {
            (STATIC_STICKER_BYTES, "a static sticker")
        }
        MediaKind::Sticker => (kind.max_bytes(), "an animated sticker"),
        _ => (kind.max_bytes(), article(kind)),
    };
    if bytes.len() > limit {
        return Err(too_large(what, limit));
    }
    Ok(())
}

/// The refusal for a file over its kind's limit.
pub fn too_large(what: &str, limit: usize) -> Error {
    Error::TooLargeFor {
        what: what.to_string(),
        limit,
    }
}

pub fn article(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "an audio file",
        MediaKind::Document => "a document",
        MediaKind::Image => "an image",
        MediaKind::Sticker => "a sticker",
        MediaKind::Video => "a video",
    }
}

/// An extended WebP (`VP8X` chunk) with the animation flag set.
fn is_animated_webp(b: &[u8]) -> bool {
    b.len() > 20
        && &b[0..4] == b"RIFF"
        && &b[8..12] == b"WEBP"
        && &b[12..16] == b"VP8X"
        && b[20] & 0x02 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_map_to_metas_kinds() {
        assert_eq!(kind_of("image/jpeg").unwrap().0, MediaKind::Image);
        assert_eq!(
            kind_of("audio/ogg; codecs=opus").unwrap(),
            (MediaKind::Audio, "audio/ogg")
        );
        assert_eq!(kind_of("Application/PDF").unwrap().0, MediaKind::Document);
        assert_eq!(
            kind_of("video/3gp").unwrap(),
            (MediaKind::Video, "video/3gpp")
        );
        assert_eq!(kind_of("image/webp").unwrap().0, MediaKind::Sticker);
        assert!(matches!(kind_of("image/gif"), Err(Error::Invalid { .. })));
        assert!(kind_of("").is_err());
    }

    #[test]
    fn each_kind_has_its_limit() {
        assert!(check(MediaKind::Image, &vec![0; 5 * MB]).is_ok());
        assert!(matches!(
            check(MediaKind::Image, &vec![0; 5 * MB + 1]),
            Err(Error::TooLargeFor { .. })
        ));
        assert!(check(MediaKind::Audio, &vec![0; 16 * MB]).is_ok());
        assert!(check(MediaKind::Video, &vec![0; 16 * MB + 1]).is_err());
        assert!(check(MediaKind::Document, &[1]).is_ok());
        assert!(matches!(
            check(MediaKind::Document, &[]),
            Err(Error::Invalid { .. })
        ));
    }

    fn webp(animated: bool, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[0..4].copy_from_slice(b"RIFF");
        b[8..12].copy_from_slice(b"WEBP");
        b[12..16].copy_from_slice(b"VP8X");
        if animated {
            b[20] = 0x02;
        }
        b
    }

    #[test]
    fn static_stickers_are_smaller_than_animated_ones() {
        assert!(check(MediaKind::Sticker, &webp(false, 100 * KB)).is_ok());
        assert!(check(MediaKind::Sticker, &webp(false, 100 * KB + 1)).is_err());
        assert!(check(MediaKind::Sticker, &webp(true, 500 * KB)).is_ok());
        assert!(check(MediaKind::Sticker, &webp(true, 500 * KB + 1)).is_err());
    }
}
