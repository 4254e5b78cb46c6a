//! The one open `Database`, shared by readers and the writer, and replaceable:
//! after an I/O error redb refuses everything until it is closed and opened
//! again, which the writer does here without the rest of the program noticing
//! more than a few refused requests.

use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};

use super::tables::META;
use crate::error::{Error, StorageFault};

/// redb's page cache (1 GiB by default) would let a busy gateway grow towards
/// that; hot pages of the tables we touch per request fit well within this.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A key the reopen probe writes and removes again.
const PROBE_KEY: &str = "reopen_probe";

/// Cheap to clone. `None` while the writer reopens the file.
#[derive(Clone)]
pub(crate) struct Handle(Arc<RwLock<Option<Database>>>);

impl Handle {
    pub fn new(db: Database) -> Handle {
        Handle(Arc::new(RwLock::new(Some(db))))
    }

    /// A read transaction; it stays usable after the lock here is released
    /// (redb keeps what it needs), and fails cleanly if the file is closed under it.
    pub fn begin_read(&self) -> Result<ReadTransaction, Error> {
        let slot = self.0.read().map_err(|_| poisoned())?;
        match slot.as_ref() {
            Some(db) => Ok(db.begin_read()?),
            None => Err(reopening()),
        }
    }

    pub fn begin_write(&self) -> Result<WriteTransaction, Error> {
        let slot = self.0.read().map_err(|_| poisoned())?;
        match slot.as_ref() {
            Some(db) => Ok(db.begin_write()?),
            None => Err(reopening()),
        }
    }

    /// Closes the database, releasing the file for a reopen. Transactions still
    /// open fail from here on (redb's `DatabaseClosed`), which is a fault too.
    pub fn close(&self) {
        let db = match self.0.write() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(db) = db {
            // After a latched I/O error this reports it again; the next open recovers.
            if let Err(e) = db.close() {
                tracing::debug!(error = %e, "closing the failed database");
            }
        }
    }

    /// Puts a freshly opened database in place of the closed one.
    pub fn replace(&self, db: Database) {
        match self.0.write() {
            Ok(mut slot) => *slot = Some(db),
            Err(poisoned) => *poisoned.into_inner() = Some(db),
        }
    }
}

/// Opens (or creates) the file; redb repairs it if the last process left it
/// in the middle of a write.
pub(crate) fn open(path: &Path) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(CACHE_BYTES).create(path)
}

/// Opens the file again after a fault and proves that a durable write that
/// allocates pages succeeds, so writes are not resumed onto a disk that still
/// refuses them.
pub(crate) fn reopen(path: &Path) -> Result<Database, Error> {
    let db = open(path)?;
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(META)?;
        meta.insert(PROBE_KEY, 0)?;
        meta.remove(PROBE_KEY)?;
    }
    tx.commit()?;
    Ok(db)
}

fn reopening() -> Error {
    Error::StorageUnavailable(StorageFault::Io(
        "the database is being reopened after a failed write".into(),
    ))
}

fn poisoned() -> Error {
    Error::Storage("the database handle was poisoned by a panic".into())
}
