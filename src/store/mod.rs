//! The redb database: every table and every transaction live here.

mod accounts;
mod backup;
mod codec;
mod connect;
mod directory;
mod events;
mod janitor;
mod listeners;
mod messages;
mod migrate;
mod outbox;
mod settings;
mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::error::Error;

pub use backup::{backup_file, inspect, Summary};
pub use connect::Connected;
pub use directory::MediaOrigin;
pub use events::{IngestReport, RecentEvent};
pub use messages::Awaiting;

/// The schema version this build reads and writes.
pub fn tables_schema_version() -> u64 {
    tables::SCHEMA_VERSION
}
pub use outbox::{Backlog, Due, Lane, Outcome};

/// redb's page cache (1 GiB by default) would let a busy gateway grow towards
/// that; hot pages of the tables we touch per request fit well within this.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A handle on the database. Cheap to clone; all writes go through one writer thread.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: Arc<PathBuf>,
    writer: mpsc::Sender<writer::Msg>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Store {
    /// Opens (or creates) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => Error::Startup(format!(
                    "{} is already open in another process",
                    path.display()
                )),
                other => {
                    Error::Startup(format!("cannot open database {}: {other}", path.display()))
                }
            })?;
        migrate::run(&db)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel();
        let writer_db = db.clone();
        let thread = std::thread::Builder::new()
            .name("wabridge-writer".into())
            .spawn(move || writer::run(writer_db, rx))
            .map_err(|e| Error::Startup(format!("cannot start the database writer: {e}")))?;
        Ok(Store {
            db,
            path: Arc::new(path.to_path_buf()),
            writer: tx,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// The folder that holds the database file.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Runs `f` in a durable write transaction, possibly sharing the commit with
    /// other writers. `f` may run more than once, so it must not consume its captures.
    pub async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, Error> + Send + 'static,
    {
        let (job, answer) = writer::job(f);
        self.writer
            .send(writer::Msg::Job(job))
            .map_err(|_| Error::Storage("the database is closed".into()))?;
        answer
            .await
            .map_err(|_| Error::Storage("the database writer stopped".into()))?
    }

    /// A short read-only look; never hold it across an await.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let tx = self.db.begin_read()?;
        f(&tx)
    }

    /// Lets queued writes finish, then stops the writer. Later writes fail.
    pub fn close(&self) {
        let _ = self.writer.send(writer::Msg::Stop);
        let handle = self.thread.lock().ok().and_then(|mut h| h.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// Takes the next value of a named counter inside a write transaction.
fn next_id(tx: &WriteTransaction, counter: &str) -> Result<u64, Error> {
    let mut meta = tx.open_table(tables::META)?;
    let next = meta.get(counter)?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert(counter, next)?;
    Ok(next)
}

macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { Error::Storage(e.to_string()) }
        }
    )*};
}

storage_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
