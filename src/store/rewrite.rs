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
use std::os::unix::fs::MetadataExt;
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

/// What `finish` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rewrite {
    /// None was pending, or it is done.
    Done,
    /// Left pending for the next start; why, in one sentence.
    Postponed(String),
}

/// Rewrites the file at `path` when a rewrite is pending; the database handle
/// to use from now on comes back.
pub(super) fn finish(
    db: Database,
    path: &Path,
    reopen: impl Fn(&Path) -> Result<Database, Error>,
) -> Result<(Database, Rewrite), Error> {
    finish_with(db, path, reopen, free_bytes)
}

/// `finish`, with the free space of a dir given, so tests can fake a full disk.
fn finish_with(
    db: Database,
    path: &Path,
    reopen: impl Fn(&Path) -> Result<Database, Error>,
    free: impl Fn(&Path) -> std::io::Result<u64>,
) -> Result<(Database, Rewrite), Error> {
    let pending = db.begin_read()?.open_table(META)?.get(PENDING)?.is_some();
    if !pending {
        return Ok((db, Rewrite::Done));
    }
    let dir = crate::files::parent_dir(path);
    let old = fs::metadata(path)
        .map_err(|e| Error::Startup(format!("cannot read {}: {e}", path.display())))?;
    // The copy is at most as big as the file; filling the disk with it would
    // stop the server it is meant to protect. The secrets are sealed already,
    // only freed pages hold old ones: waiting for room is safe.
    if let Some(short) = too_little_room(free(dir), old.len()) {
        let why = format!(
            "the database {} still holds freed pages with its old secrets: rewriting it needs {} bytes free in {}, {short}; it is retried at the next start",
            path.display(),
            needed(old.len()),
            dir.display()
        );
        tracing::warn!("{why}");
        return Ok((db, Rewrite::Postponed(why)));
    }
    extend_systemd_timeout(old.len());
    let fresh = temp_path(path);
    let _ = fs::remove_file(&fresh);
    let copied = {
        let tx = db.begin_read()?;
        super::backup::copy_into(&tx, &fresh)
    };
    // Run as root (rotate-key under sudo), the copy would be root's and the
    // service's user could no longer open its own database.
    let copied = copied.and_then(|_| same_owner(&fresh, &old));
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
    crate::files::sync_dir(dir).map_err(io)?;
    let db = reopen(path)?;
    let tx = db.begin_write()?;
    tx.open_table(META)?.remove(PENDING)?;
    tx.commit()?;
    tracing::info!(path = %path.display(), "rewrote the database without the pages its old secrets were in");
    Ok((db, Rewrite::Done))
}

/// Room for a copy of a file of `size` bytes, and a margin for redb's own
/// pages and whatever else writes to the disk meanwhile.
fn needed(size: u64) -> u64 {
    const MARGIN: u64 = 64 * 1024 * 1024;
    size.saturating_add((size / 10).max(MARGIN))
}

/// Why a rewrite of a file of `size` bytes must wait, if it must.
fn too_little_room(free: std::io::Result<u64>, size: u64) -> Option<String> {
    match free {
        Ok(free) if free >= needed(size) => None,
        Ok(free) => Some(format!("only {free} are")),
        Err(e) => Some(format!("and its free space cannot be read ({e})")),
    }
}

/// What an unprivileged writer may still use on the filesystem of `dir`.
pub(super) fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// A copy (or a migration) comes before READY; systemd's start timeout (90 s
/// by default) must not kill a start that goes through `size` bytes. Asks
/// for room at a pessimistic 10 MiB/s plus a minute. Nothing without systemd.
pub(super) fn extend_systemd_timeout(size: u64) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let secs = 60 + size / (10 * 1024 * 1024);
    let usec = u32::try_from(secs.saturating_mul(1_000_000)).unwrap_or(u32::MAX);
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::ExtendTimeoutUsec(usec)]) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Gives the copy at `fresh` the owner of the file it replaces.
fn same_owner(fresh: &Path, old: &fs::Metadata) -> Result<(), Error> {
    let now = fs::metadata(fresh)
        .map_err(|e| Error::Startup(format!("cannot read {}: {e}", fresh.display())))?;
    if (now.uid(), now.gid()) == (old.uid(), old.gid()) {
        return Ok(());
    }
    std::os::unix::fs::chown(fresh, Some(old.uid()), Some(old.gid())).map_err(|e| {
        Error::Startup(format!(
            "cannot give the rewritten database {} the owner of the old one (uid {}, gid {}): {e}; run as that user or as root",
            fresh.display(),
            old.uid(),
            old.gid()
        ))
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".rewrite");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the rewrite is still marked to do.
    fn pending(db: &Database) -> bool {
        db.begin_read()
            .unwrap()
            .open_table(META)
            .unwrap()
            .get(PENDING)
            .unwrap()
            .is_some()
    }

    #[test]
    fn a_rewrite_waits_for_room_for_the_copy_and_a_margin() {
        let size = 1 << 30;
        assert!(too_little_room(Ok(needed(size)), size).is_none());
        assert!(too_little_room(Ok(size), size).is_some(), "no margin");
        assert!(too_little_room(Ok(u64::MAX), 0).is_none());
        let unknown = std::io::Error::from_raw_os_error(5);
        assert!(too_little_room(Err(unknown), 0).is_some());
        assert_eq!(needed(0), 64 * 1024 * 1024);
    }

    #[tokio::test]
    async fn a_rewrite_without_room_is_postponed_and_stays_pending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wabridge.redb");
        let store = crate::store::Store::open_beside(&path).unwrap();
        store.close();
        drop(store);
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        mark(&tx).unwrap();
        tx.commit().unwrap();
        let before = fs::metadata(&path).unwrap().ino();

        let (db, done) = finish_with(db, &path, |p| Ok(Database::open(p)?), |_| Ok(1024)).unwrap();
        assert!(
            matches!(done, Rewrite::Postponed(ref why) if why.contains("next start")),
            "{done:?}"
        );
        assert!(!temp_path(&path).exists(), "no copy begun");
        let still = pending(&db);
        assert!(still, "retried at the next start");
        drop(db);
        assert_eq!(fs::metadata(&path).unwrap().ino(), before, "not replaced");

        let db = Database::open(&path).unwrap();
        let (db, done) =
            finish_with(db, &path, |p| Ok(Database::open(p)?), |_| Ok(u64::MAX)).unwrap();
        assert_eq!(done, Rewrite::Done);
        let still = pending(&db);
        assert!(!still);
    }
}
