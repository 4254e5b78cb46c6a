//! The redb database: every table and every transaction live here.

mod accounts;
mod backup;
mod codec;
mod connect;
mod directory;
mod events;
mod handle;
mod health;
mod janitor;
mod key;
mod listeners;
mod messages;
mod migrate;
mod outbox;
mod rewrite;
mod secrets;
mod settings;
mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, ReadTransaction, ReadableTable, WriteTransaction};

use crate::domain::disk::{DiskSpace, MinFreeSpace};
use crate::error::{Error, StorageFault};
use handle::Handle;
use health::Health;
use secrets::Sealer;

pub use backup::{backup_file, inspect, Summary};
pub use connect::Connected;
pub use directory::MediaOrigin;
pub use events::{IngestReport, RecentEvent};
pub use health::disk_space;
pub use key::{key_opens, locate_key, read_key, KeyLocation, KeyOrigin, SecretKey};
pub use messages::Awaiting;
pub use secrets::Resealed;

/// The schema version this build reads and writes.
pub fn tables_schema_version() -> u64 {
    tables::SCHEMA_VERSION
}
pub use outbox::{Backlog, Due, Lane, Outcome};

/// A handle on the database. Cheap to clone; all writes go through one writer thread.
#[derive(Clone)]
pub struct Store {
    db: Handle,
    path: Arc<PathBuf>,
    writer: mpsc::Sender<writer::Msg>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    health: Arc<Health>,
    /// Opens the secrets of records leaving the store and seals those coming in.
    sealer: Arc<Sealer>,
    key: Arc<KeyLocation>,
}

impl Store {
    /// Opens (or creates) the database file (mode 0600), unlocks its secrets
    /// with the key at `key` (made there for a database that has none sealed
    /// yet) and brings its schema up to date. No reserve of free space is kept
    /// (see `open_with`).
    pub fn open(path: &Path, key: &KeyLocation) -> Result<Store, Error> {
        Store::open_with(path, key, MinFreeSpace::Bytes(0))
    }

    /// Like `open`; new events are refused while the data dir's disk has less
    /// than `reserve` free.
    pub fn open_with(
        path: &Path,
        key: &KeyLocation,
        reserve: MinFreeSpace,
    ) -> Result<Store, Error> {
        let (db, sealer) = open_unlocked(path, key)?;
        let db = Handle::new(db);
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let health = Arc::new(Health::new(dir, reserve));
        let (tx, rx) = mpsc::channel();
        let writer = writer::Writer {
            db: db.clone(),
            path: path.to_path_buf(),
            health: health.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("wabridge-writer".into())
            .spawn(move || writer::run(writer, rx))
            .map_err(|e| Error::Startup(format!("cannot start the database writer: {e}")))?;
        Ok(Store {
            db,
            path: Arc::new(path.to_path_buf()),
            writer: tx,
            thread: Arc::new(Mutex::new(Some(thread))),
            health,
            sealer: Arc::new(sealer),
            key: Arc::new(key.clone()),
        })
    }

    /// Where the key of the stored secrets is: a backup needs it to be restored.
    pub fn key_location(&self) -> &KeyLocation {
        &self.key
    }

    /// The folder that holds the database file.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Why new events are refused right now: the disk failed (until the
    /// database is reopened) or the reserve of free space is reached.
    pub fn refusal(&self) -> Option<StorageFault> {
        self.health.refusal()
    }

    /// The fault that stops every write until the database is reopened.
    pub fn fault(&self) -> Option<StorageFault> {
        self.health.fault()
    }

    /// The data dir's free space (read at most once a second), if the
    /// filesystem tells, and the reserve it is held to.
    pub fn space(&self) -> (Option<DiskSpace>, MinFreeSpace) {
        (self.health.space(), self.health.reserve())
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

#[cfg(test)]
impl Store {
    /// A store with its secrets key beside it, as `serve` keeps it by default.
    pub(crate) fn open_beside(path: &Path) -> Result<Store, Error> {
        Store::open(
            path,
            &KeyLocation::in_data_dir(path.parent().unwrap_or(Path::new("."))),
        )
    }
}

/// Re-encrypts every stored secret under a new key, in one transaction, and
/// puts the new key in place of the old one (see `key::rotate`). No server
/// may hold the database meanwhile: one that does is named in the error.
pub fn rotate_key(path: &Path, key: &KeyLocation) -> Result<Resealed, Error> {
    if !path.exists() {
        return Err(Error::Startup(format!(
            "no database at {}: nothing to rotate (--data-dir names the data dir)",
            path.display()
        )));
    }
    let (db, old) = open_unlocked(path, key)?;
    let done = key::rotate(&db, &old, key)?;
    rewrite::finish(db, path, open_db)?;
    Ok(done)
}

/// The database file, private, with its key found and its schema current.
fn open_unlocked(path: &Path, key: &KeyLocation) -> Result<(Database, Sealer), Error> {
    crate::files::open_private(path)?;
    let db = open_db(path)?;
    let sealer = key::unlock(&db, path, key)?;
    migrate::run(&db, &sealer)?;
    let db = rewrite::finish(db, path, open_db)?;
    Ok((db, sealer))
}

fn open_db(path: &Path) -> Result<Database, Error> {
    handle::open(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::Startup(format!(
            "{} is already open in another process (a running wabridge? stop it first)",
            path.display()
        )),
        other => Error::Startup(format!("cannot open database {}: {other}", path.display())),
    })
}

/// Takes the next value of a named counter inside a write transaction.
fn next_id(tx: &WriteTransaction, counter: &str) -> Result<u64, Error> {
    let mut meta = tx.open_table(tables::META)?;
    let next = meta.get(counter)?.map(|v| v.value()).unwrap_or(0) + 1;
    meta.insert(counter, next)?;
    Ok(next)
}

/// Each redb error through `health::from_redb`, which tells a failing disk
/// (retry later) from any other storage error.
macro_rules! storage_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { health::from_redb(redb::Error::from(e)) }
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
