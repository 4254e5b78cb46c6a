//! A consistent copy of the database while the server runs (the admin API's
//! backup). The copy is made in one read transaction into a fresh file next
//! to the database (same filesystem, inside the service's sandbox), which is
//! unlinked as soon as it is open: it is read from the open handle and
//! disappears when dropped.

use std::fs::File;

use super::{blocking, Services};
use crate::domain::ids::new_id;
use crate::error::Error;

/// When to ask again after a backup refused for lack of space.
const BACKUP_RETRY_AFTER_SECS: u64 = 300;

/// The copy, open and already unlinked, and where the key its secrets need is.
pub struct Copy {
    pub file: File,
    pub len: u64,
    pub key_path: String,
}

pub async fn take(app: &Services) -> Result<Copy, Error> {
    let store = app.store.clone();
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
    let (summary, file, len) = blocking(move || {
        let result = store.snapshot_to(&tmp).and_then(|summary| {
            let file =
                File::open(&tmp).map_err(|e| Error::storage("cannot read the copy back", e))?;
            let len = file
                .metadata()
                .map_err(|e| Error::storage("cannot read the copy back", e))?
                .len();
            Ok((summary, file, len))
        });
        let _ = std::fs::remove_file(&tmp);
        result
    })
    .await?;
    tracing::info!(
        bytes = len,
        events = summary.rows_of("events"),
        "backup taken"
    );
    Ok(Copy {
        file,
        len,
        key_path: app.store.key_location().path.display().to_string(),
    })
}
