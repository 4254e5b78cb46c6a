//! A copy-on-write database keeps freed pages in the file until they are
//! reused. After the migration that encrypted the plaintext secrets, or a key
//! rotation, those pages may still hold the secrets in plaintext or under the
//! retired key; the file is then rewritten from its live rows only, the way a
//! backup is made, and put in place of the old one.
//!
//! The need is recorded in the same transaction that freed the pages, and
//! cleared only once the rewritten file is in place: a crash in between
//! rewrites again at the next start.

use std::fs;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, WriteTransaction};

use super::tables::META;
use crate::error::Error;

const PENDING: &str = "rewrite_pending";

/// Records, in `tx`, that the file must be rewritten once `tx` is committed.
pub(super) fn mark(tx: &WriteTransaction) -> Result<(), Error> {
    tx.open_table(META)?.insert(PENDING, 1)?;
    Ok(())
}

/// Rewrites the file at `path` when a rewrite is pending; the database handle
/// to use from now on comes back.
pub(super) fn finish(
    db: Database,
    path: &Path,
    reopen: impl Fn(&Path) -> Result<Database, Error>,
) -> Result<Database, Error> {
    let pending = db.begin_read()?.open_table(META)?.get(PENDING)?.is_some();
    if !pending {
        return Ok(db);
    }
    let fresh = temp_path(path);
    let _ = fs::remove_file(&fresh);
    let copied = {
        let tx = db.begin_read()?;
        super::backup::copy_into(&tx, &fresh)
    };
    if let Err(e) = copied {
        let _ = fs::remove_file(&fresh);
        return Err(e);
    }
    drop(db);
    let io = |e: std::io::Error| {
        Error::Startup(format!(
            "cannot put the rewritten database {} in place of {}: {e}",
            fresh.display(),
            path.display()
        ))
    };
    fs::rename(&fresh, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        crate::files::sync_dir(dir).map_err(io)?;
    }
    let db = reopen(path)?;
    let tx = db.begin_write()?;
    tx.open_table(META)?.remove(PENDING)?;
    tx.commit()?;
    tracing::info!(path = %path.display(), "rewrote the database without the pages its old secrets were in");
    Ok(db)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".rewrite");
    PathBuf::from(name)
}
