//! Whether the store can take writes: the data dir's free space, read once a
//! second off the request path, the fault that stopped the writer, if any,
//! and how long its commits take (a slow disk shows there first).
//!
//! redb latches an I/O error: after one failed write every later one fails
//! until the database is closed and opened again. The writer thread does that
//! (see `writer.rs`); this is where it records what went wrong, so that
//! `/healthz`, `/metrics`, the backoffice and the webhook can say so.
//!
//! The webhook asks on every request, so asking costs a few atomic loads: no
//! lock, and never a `statvfs` (which a hung NFS mount can block for minutes)
//! on a request's thread. A thread of its own (`watch`) and the writer, while
//! it recovers, read the disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use crate::domain::disk::{DiskSpace, MinFreeSpace};
use crate::error::{Error, StorageFault};
use crate::metrics::Histogram;

/// How often the data dir's free space is read.
const SPACE_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Health {
    dir: PathBuf,
    reserve: MinFreeSpace,
    /// The last reading; `known` false when the filesystem cannot tell.
    free: AtomicU64,
    total: AtomicU64,
    known: AtomicBool,
    /// Refusing new events for the reserve. Set below the reserve, cleared only
    /// with a margin above it (`MinFreeSpace::still_short`).
    short: AtomicBool,
    /// Mirrors `fault.is_some()`, so the ingest path checks it without a lock.
    failing: AtomicBool,
    fault: Mutex<Option<StorageFault>>,
    /// Each committed write transaction, from its start to the end of its
    /// `fsync` (one that failed shows as the fault instead).
    commits: Histogram,
}

impl Health {
    /// Reads the disk once, on the caller's thread (start-up).
    pub fn new(dir: PathBuf, reserve: MinFreeSpace) -> Health {
        let health = Health {
            dir,
            reserve,
            free: AtomicU64::new(0),
            total: AtomicU64::new(0),
            known: AtomicBool::new(false),
            short: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            fault: Mutex::new(None),
            commits: Histogram::default(),
        };
        health.refresh_space();
        health
    }

    pub fn reserve(&self) -> MinFreeSpace {
        self.reserve
    }

    /// Reads the data dir's free space now (blocking: never on a request's
    /// thread) and updates what `space` and `refusal` answer.
    pub fn refresh_space(&self) {
        match disk_space(&self.dir) {
            Ok(space) => {
                self.free.store(space.free, Ordering::Relaxed);
                self.total.store(space.total, Ordering::Relaxed);
                self.known.store(true, Ordering::Release);
                let was_short = self.short.load(Ordering::Relaxed);
                let short = self.reserve.still_short(space, was_short);
                if short != was_short {
                    self.short.store(short, Ordering::Release);
                    // The public 503 is generic: the log says why.
                    let reserve = self.reserve.bytes(space.total);
                    if short {
                        tracing::warn!(free = space.free, reserve, "the data dir is short of its reserve (--min-free-space): new events are refused (503)");
                    } else {
                        tracing::info!(
                            free = space.free,
                            reserve,
                            "the data dir has room again: new events are taken"
                        );
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, dir = %self.dir.display(), "cannot read free space");
                // The reserve is not enforced on a filesystem that cannot tell.
                self.known.store(false, Ordering::Release);
                self.short.store(false, Ordering::Release);
            }
        }
    }

    /// The data dir's free space as last read (at most about a second old);
    /// `None` when the filesystem cannot tell (the reserve is then not enforced).
    pub fn space(&self) -> Option<DiskSpace> {
        self.known.load(Ordering::Acquire).then(|| DiskSpace {
            free: self.free.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
        })
    }

    /// The fault that stops writes right now, if any. The lock is only taken
    /// while the store fails, and is never held across I/O.
    pub fn fault(&self) -> Option<StorageFault> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    /// After the disk ran full: whether it has room enough again to try a
    /// reopen (see `MinFreeSpace::room_to_resume`). Any other fault: yes.
    pub fn may_resume(&self) -> bool {
        if self.fault() != Some(StorageFault::NoSpace) {
            return true;
        }
        self.space()
            .is_none_or(|space| self.reserve.room_to_resume(space))
    }

    /// Why new events are refused: a fault, or the reserve reached.
    pub fn refusal(&self) -> Option<StorageFault> {
        if let Some(fault) = self.fault() {
            return Some(fault);
        }
        if !self.short.load(Ordering::Acquire) {
            return None;
        }
        let space = self.space()?;
        Some(StorageFault::LowSpace {
            free: space.free,
            reserve: self.reserve.bytes(space.total),
        })
    }

    /// Refuses new events (`Error::StorageUnavailable`) while `refusal` says so.
    pub fn admit(&self) -> Result<(), Error> {
        match self.refusal() {
            Some(fault) => Err(Error::StorageUnavailable(fault)),
            None => Ok(()),
        }
    }

    pub fn committed(&self, took: Duration) {
        self.commits.observe(took);
    }

    pub fn commit_times(&self) -> &Histogram {
        &self.commits
    }

    pub fn set_fault(&self, fault: StorageFault) {
        if let Ok(mut f) = self.fault.lock() {
            *f = Some(fault);
        }
        self.failing.store(true, Ordering::Release);
    }

    pub fn clear_fault(&self) {
        self.failing.store(false, Ordering::Release);
        if let Ok(mut f) = self.fault.lock() {
            *f = None;
        }
    }
}

/// Reads the free space every `SPACE_EVERY` until the store is gone. On a
/// thread of its own: a `statvfs` that hangs holds up only this thread, and
/// the last reading stays in place meanwhile.
pub(crate) fn watch(health: Weak<Health>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("wabridge-disk".into())
        .spawn(move || loop {
            std::thread::sleep(SPACE_EVERY);
            match health.upgrade() {
                Some(health) => health.refresh_space(),
                None => return,
            }
        })
        .map(drop)
}

/// `statvfs` on `dir`: what the data dir's filesystem has left for us.
pub fn disk_space(dir: &Path) -> io::Result<DiskSpace> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(DiskSpace {
        free: st.f_bavail.saturating_mul(st.f_frsize),
        total: st.f_blocks.saturating_mul(st.f_frsize),
    })
}

/// The fault behind a redb error, when it is one that a working disk ends:
/// redb's own I/O error, or the latch it leaves after one.
pub(crate) fn fault_of(e: &redb::Error) -> Option<StorageFault> {
    match e {
        redb::Error::Io(io) => Some(io_fault(io)),
        redb::Error::PreviousIo => Some(StorageFault::Io(
            "an earlier write failed; the database is being reopened".into(),
        )),
        redb::Error::DatabaseClosed => Some(StorageFault::Io(
            "the database was closed after a failed write and is being reopened".into(),
        )),
        _ => None,
    }
}

fn io_fault(e: &io::Error) -> StorageFault {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StorageFault::NoSpace,
        _ => StorageFault::Io(e.to_string()),
    }
}

/// A redb error as ours: a fault that passes (`StorageUnavailable`), or a plain
/// storage error.
pub(crate) fn from_redb(e: redb::Error) -> Error {
    match fault_of(&e) {
        Some(fault) => Error::StorageUnavailable(fault),
        None => Error::storage("the database", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> redb::Error {
        redb::Error::Io(io::Error::from_raw_os_error(code))
    }

    #[test]
    fn a_full_disk_or_quota_is_no_space() {
        assert_eq!(fault_of(&os(28)), Some(StorageFault::NoSpace)); // ENOSPC
        assert_eq!(fault_of(&os(122)), Some(StorageFault::NoSpace)); // EDQUOT
    }

    #[test]
    fn other_io_errors_and_the_latch_are_faults_too() {
        assert!(
            matches!(fault_of(&os(5)), Some(StorageFault::Io(m)) if m.contains("Input/output"))
        ); // EIO
        assert!(matches!(
            fault_of(&redb::Error::PreviousIo),
            Some(StorageFault::Io(_))
        ));
        assert!(matches!(
            fault_of(&redb::Error::DatabaseClosed),
            Some(StorageFault::Io(_))
        ));
    }

    #[test]
    fn a_logic_error_is_not_a_fault() {
        let e = redb::Error::TableDoesNotExist("events".into());
        assert_eq!(fault_of(&e), None);
        assert!(matches!(
            from_redb(e),
            Error::Storage { source, .. } if source.downcast_ref::<redb::Error>().is_some()
        ));
        assert!(matches!(
            from_redb(os(28)),
            Error::StorageUnavailable(StorageFault::NoSpace)
        ));
    }

    #[test]
    fn a_fault_refuses_events_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let health = Health::new(dir.path().to_path_buf(), MinFreeSpace::Bytes(0));
        assert!(health.admit().is_ok());
        health.set_fault(StorageFault::NoSpace);
        assert!(matches!(
            health.admit(),
            Err(Error::StorageUnavailable(StorageFault::NoSpace))
        ));
        health.clear_fault();
        assert!(health.admit().is_ok());
        assert_eq!(health.fault(), None);
    }

    #[test]
    fn a_reserve_larger_than_the_disk_refuses_events() {
        let dir = tempfile::tempdir().unwrap();
        let health = Health::new(dir.path().to_path_buf(), MinFreeSpace::Bytes(u64::MAX));
        let space = health.space().expect("statvfs works on a temp dir");
        assert!(space.total > 0 && space.free <= space.total);
        match health.admit() {
            Err(Error::StorageUnavailable(StorageFault::LowSpace { free, reserve })) => {
                assert_eq!(reserve, u64::MAX);
                assert!(free < reserve);
            }
            other => panic!("expected LowSpace, got {other:?}"),
        }
    }
}
