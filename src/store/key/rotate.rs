//! Replacing the key: every secret sealed again under a new key in one
//! transaction, with the new key's file written before and renamed after, so
//! that a crash at any point leaves one of the two files opening the database.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use redb::{Database, WriteTransaction};

use super::{read_key, write_error, KeyLocation, KeyOrigin, SecretKey};
use crate::error::Error;
use crate::files;
use crate::store::secrets::{self, Resealed, Sealer};

/// What a rotation did, and what it left for the next start to finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub resealed: Resealed,
    /// Where the new key is now: in place, or still at `<key>.new`.
    pub key_at: PathBuf,
    /// Steps after the commit that failed: the rotation is done, and the next
    /// start (or the next `rotate-key`) finishes them. One sentence each.
    pub unfinished: Vec<String>,
}

/// Re-encrypts every secret of `db` under a new key in one transaction, then
/// puts the new key in place of the old one. The new key is written first, to
/// `<key>.new`, and its dir flushed; until the transaction commits the old key
/// stays the one that works, and a crash between the commit and the rename is
/// finished by the next start (`finish_rotation`). So at every moment one of
/// the two files opens the database, and `.new` is removed only when the
/// commit was never tried.
pub(in crate::store) fn rotate(
    db: &Database,
    old: &Sealer,
    key: &KeyLocation,
) -> Result<Rotated, Error> {
    rotate_with(db, old, key, |tx| Ok(tx.commit()?), put_in_place)
}

/// `rotate`, with the commit and the rename given, so that tests can make
/// them fail.
pub(super) fn rotate_with(
    db: &Database,
    old: &Sealer,
    key: &KeyLocation,
    commit: impl FnOnce(WriteTransaction) -> Result<(), Error>,
    place: impl FnOnce(&Path, &Path) -> Result<(), Error>,
) -> Result<Rotated, Error> {
    if key.origin == KeyOrigin::Credential {
        return Err(Error::Startup(format!(
            "the secrets key comes from the systemd credential {}, which only systemd can replace: run the rotation with --secrets-key naming the credential's source file, then encrypt it again for systemd (docs/security.md)",
            key.path.display()
        )));
    }
    let pending = pending_path(&key.path);
    // A leftover did not open the database, or `unlock` would have used it.
    match fs::remove_file(&pending) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(write_error(&pending, e));
        }
        _ => {}
    }
    let fresh = SecretKey::generate();
    let file =
        files::write_new_private(&pending, fresh.bytes()).map_err(|e| write_error(&pending, e))?;
    let prepared = (|| -> Result<(WriteTransaction, Resealed), Error> {
        // `write_new_private` flushed `.new` and its dir entry: it is
        // findable after a crash that follows the commit.
        same_owner(&file, &key.path, &pending)?;
        let new = Sealer::new(&fresh);
        let tx = db.begin_write()?;
        let done = secrets::reseal(&tx, old, &new)?;
        // Freed pages still hold the secrets under the old key.
        crate::store::rewrite::mark(&tx)?;
        Ok((tx, done))
    })();
    let (tx, resealed) = match prepared {
        Ok(ready) => ready,
        Err(e) => {
            // Nothing was committed: the old key is still the only one.
            let _ = fs::remove_file(&pending);
            return Err(Error::Startup(format!(
                "{e}. Nothing was changed: the old key {} still opens the database",
                key.path.display()
            )));
        }
    };
    if let Err(e) = commit(tx) {
        // The commit may or may not be on disk: both keys stay, and the next
        // start uses whichever opens the database.
        return Err(Error::Startup(format!(
            "the commit of the re-encrypted secrets failed ({e}), so whether they are now under the new key is not known: keep both {} and {}; the next start (or rotate-key again) uses the one that opens the database",
            key.path.display(),
            pending.display()
        )));
    }
    let mut unfinished = Vec::new();
    let mut key_at = key.path.clone();
    if let Err(e) = place(&pending, &key.path) {
        key_at = pending.clone();
        unfinished.push(format!(
            "rotation done, but the new key is still at {} ({e}); it will be put in place of {} at the next start, or move it there yourself. Do not delete it: it is the only key that opens the database now",
            pending.display(),
            key.path.display()
        ));
    }
    Ok(Rotated {
        resealed,
        key_at,
        unfinished,
    })
}

/// A rotation that committed but did not rename its key: the new key is
/// still at `<key>.new`. Puts it in place when it is the one that opens.
pub(super) fn finish_rotation(path: &Path, check: &str) -> Result<Option<Sealer>, Error> {
    let pending = pending_path(path);
    let Some(found) = read_key(&pending)? else {
        return Ok(None);
    };
    let sealer = Sealer::new(&found);
    if !sealer.opens_key_check(check) {
        return Ok(None);
    }
    put_in_place(&pending, path)?;
    tracing::warn!(path = %path.display(), "finished a key rotation that was interrupted");
    Ok(Some(sealer))
}

pub(super) fn put_in_place(pending: &Path, path: &Path) -> Result<(), Error> {
    fs::rename(pending, path).map_err(|e| write_error(path, e))?;
    files::sync_dir(files::parent_dir(path)).map_err(|e| write_error(path, e))
}

/// The new key belongs to whoever owned the old one: a rotation run as root
/// must leave a key the service's user can still read.
fn same_owner(file: &fs::File, old: &Path, pending: &Path) -> Result<(), Error> {
    let Ok(was) = fs::metadata(old) else {
        return Ok(());
    };
    let now = file.metadata().map_err(|e| write_error(pending, e))?;
    if (now.uid(), now.gid()) == (was.uid(), was.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(was.uid()), Some(was.gid()))
        .and_then(|()| file.sync_all())
        .map_err(|e| write_error(pending, e))
}

pub(super) fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".new");
    PathBuf::from(name)
}
