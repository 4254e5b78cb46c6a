//! `POST /api/v1/admin/backup`: a consistent copy of the database while the
//! server runs, answered as one redb file (`application/octet-stream`).
//!
//! The copy is made inside one read transaction into a fresh file next to the
//! database (same filesystem, inside the service's sandbox), which is unlinked
//! as soon as it is open: it is streamed from the open handle and disappears
//! when sent, or when the client goes away.
//!
//! The secrets in the copy are encrypted: the `wabridge-secrets-key` header
//! names the key file that restoring it needs (`wabridge backup` says so).

use hyper::header::HeaderValue;

use crate::domain::ids::new_id;
use crate::error::Error;
use crate::http::guards::Admin;
use crate::http::request::Req;
use crate::http::response::{self, Resp};
use crate::http::AppState;

/// When to ask again after a backup refused for lack of space.
const BACKUP_RETRY_AFTER_SECS: u64 = 300;

/// Names the key file the copy's secrets are encrypted with.
pub const SECRETS_KEY_HEADER: &str = "wabridge-secrets-key";

pub async fn backup(state: &AppState, _: Admin, _: Req) -> Result<Resp, Error> {
    let store = state.store.clone();
    // The copy is written into the data dir: refused (503, retry later) when
    // it would eat into the reserve the events need. The file's size bounds
    // the copy (a compacted copy is smaller). A filesystem that does not tell
    // its free space is not checked, as for the reserve itself.
    let (space, reserve) = store.space();
    if let Some(space) = space {
        let size = store.file_size()?;
        if !reserve.room_for_copy(space, size) {
            tracing::warn!(
                free = space.free,
                reserve = reserve.bytes(space.total),
                size,
                "backup refused: the copy would not fit in the data dir above the reserve"
            );
            return Err(Error::Busy {
                message: "not enough free space in the data dir for the backup copy; free space, or stop the server and run `wabridge backup`",
                retry_after: BACKUP_RETRY_AFTER_SECS,
            });
        }
    }
    let tmp = store
        .dir()
        .join(format!(".{}.backup-tmp.redb", new_id("bak")));
    let (summary, file, len) = tokio::task::spawn_blocking(move || {
        let result = store.snapshot_to(&tmp).and_then(|summary| {
            let file = std::fs::File::open(&tmp)
                .map_err(|e| Error::storage("cannot read the copy back", e))?;
            let len = file
                .metadata()
                .map_err(|e| Error::storage("cannot read the copy back", e))?
                .len();
            Ok((summary, file, len))
        });
        let _ = std::fs::remove_file(&tmp);
        result
    })
    .await
    .map_err(|e| Error::internal("the backup did not finish", e))??;
    tracing::info!(
        bytes = len,
        events = summary.rows_of("events"),
        "backup taken"
    );
    let mut resp = response::file("application/octet-stream", file, len);
    // A path that is not a valid header value is left out; the docs say where the key is.
    let key = state.store.key_location().path.display().to_string();
    if let Ok(value) = HeaderValue::from_str(&key) {
        resp.headers_mut().insert(SECRETS_KEY_HEADER, value);
    }
    Ok(resp)
}
