//! The redb database: every table and every transaction live here.

mod accounts;
mod backup;
mod codec;
mod connect;
mod directory;
mod events;
mod flows;
mod handle;
mod handoff;
mod health;
mod janitor;
mod key;
mod listeners;
mod messages;
mod migrate;
mod outbox;
mod rewrite;
mod scoped;
mod secrets;
mod settings;
mod status_row;
mod tables;
mod traffic;
mod wabas;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, ReadTransaction, ReadableTable, Table, WriteTransaction};
use tokio::sync::oneshot;

use crate::domain::disk::{DiskSpace, MinFreeSpace};
use crate::error::{Error, StorageFault};
use crate::metrics::Histogram;
use handle::Handle;
use health::Health;
use secrets::Sealer;

pub use backup::{backup_file, inspect, Summary};
pub use connect::Connected;
pub use directory::MediaOrigin;
pub use events::{IngestReport, RecentEvent};
pub use health::disk_space;
pub use janitor::Pruned;
pub use key::{key_opens, locate_key, read_key, KeyLocation, KeyOrigin, Rotated, SecretKey};
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
    /// Bumped after every committed change to a listener (added, paused,
    /// stopped, removed), so what was read of listeners before can be told stale.
    listeners_version: Arc<AtomicU64>,
    /// New deliveries on their way to the dispatcher, beside their outbox rows.
    handoff: Arc<handoff::Handoff>,
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
        // After `open_unlocked`, which may have put a rewritten file in place.
        let file = handle::FileId::of(path).map_err(|e| {
            Error::Startup(format!("cannot look at database {}: {e}", path.display()))
        })?;
        let db = Handle::new(db);
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let health = Arc::new(Health::new(dir, reserve));
        health::watch(Arc::downgrade(&health))
            .map_err(|e| Error::Startup(format!("cannot start the free-space watcher: {e}")))?;
        let (tx, rx) = mpsc::channel();
        let writer = writer::Writer {
            db: db.clone(),
            path: path.to_path_buf(),
            file,
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
            listeners_version: Arc::new(AtomicU64::new(0)),
            handoff: Arc::default(),
        })
    }

    /// Changes with every committed change to a listener: what a reader took
    /// of listeners (the delivery queue) is stale once this moved on.
    pub fn listeners_version(&self) -> u64 {
        self.listeners_version.load(Ordering::Acquire)
    }

    /// After a commit that changed listeners (never before it: a reader that
    /// saw the old version must not have read the new rows under it).
    fn listeners_changed(&self) {
        self.listeners_version.fetch_add(1, Ordering::AcqRel);
    }

    /// Where the key of the stored secrets is: a backup needs it to be restored.
    pub fn key_location(&self) -> &KeyLocation {
        &self.key
    }

    /// The size of the database file: what a backup copy takes, at most.
    pub fn file_size(&self) -> Result<u64, Error> {
        std::fs::metadata(self.path.as_path())
            .map(|m| m.len())
            .map_err(|e| Error::storage(format!("cannot look at {}", self.path.display()), e))
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

    /// The data dir's free space (read once a second), if the
    /// filesystem tells, and the reserve it is held to.
    pub fn space(&self) -> (Option<DiskSpace>, MinFreeSpace) {
        (self.health.space(), self.health.reserve())
    }

    /// How long the writer's commits took, each from the start of its
    /// transaction to the end of its `fsync`.
    pub fn commit_times(&self) -> &Histogram {
        self.health.commit_times()
    }

    /// Runs `f` in a durable write transaction, possibly sharing the commit with
    /// other writers. `f` may run more than once, so it must not consume its captures.
    pub async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, Error> + Send + 'static,
    {
        self.submit(writer::job(f)).await
    }

    /// Like [`Store::write`], on the tables every ingest of the commit shares.
    async fn write_ingest<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'a, 't> FnMut(&'a mut events::IngestTables<'t>) -> Result<T, Error> + Send + 'static,
    {
        self.submit(writer::ingest_job(f)).await
    }

    async fn submit<T>(
        &self,
        (job, answer): (Box<dyn writer::Job>, oneshot::Receiver<Result<T, Error>>),
    ) -> Result<T, Error> {
        self.writer
            .send(writer::Msg::Job(job))
            .map_err(|_| Error::storage("a write", "the database is closed"))?;
        answer.await.map_err(|_| {
            Error::storage("a write", "the database writer stopped before answering")
        })?
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
/// puts the new key in place of the old one (see `key::rotate`), then rewrites
/// the file without the pages that held the old ones. Holds the data dir's
/// lock throughout, as `serve` does: a server that runs is named in the error.
/// Once the commit is done the rotation is reported done; a step after it that
/// failed is in `unfinished`, and the next start finishes it.
pub fn rotate_key(path: &Path, key: &KeyLocation) -> Result<Rotated, Error> {
    let db_meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) => {
            return Err(Error::Startup(format!(
                "no database at {}: nothing to rotate (--data-dir names the data dir)",
                path.display()
            )))
        }
    };
    owner_or_root(path, &db_meta)?;
    let _lock = lock_for_rotation(crate::files::parent_dir(path), &db_meta)?;
    let (db, old) = open_unlocked(path, key)?;
    let mut done = key::rotate(&db, &old, key)?;
    match rewrite::finish(db, path, open_db) {
        Ok((_, rewrite::Rewrite::Done)) => {}
        Ok((_, rewrite::Rewrite::Postponed(why))) => done.unfinished.push(format!("rotation done; {why}")),
        Err(e) => done.unfinished.push(format!(
            "rotation done, but rewriting the file without the old secrets' pages failed ({e}); it will be finished at the next start"
        )),
    }
    Ok(done)
}

/// Files written as another user would lock the service's user out of its
/// own data; root can give them the right owner (see `rewrite`, `key`).
fn owner_or_root(path: &Path, db: &std::fs::Metadata) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let euid = rustix::process::geteuid();
    if euid.is_root() || euid.as_raw() == db.uid() {
        return Ok(());
    }
    Err(Error::Startup(format!(
        "{} belongs to uid {}, not to this user (uid {}): run rotate-key as that user (e.g. `sudo -u wabridge wabridge secrets rotate-key …`) or as root",
        path.display(),
        db.uid(),
        euid.as_raw()
    )))
}

/// The lock `serve` holds for its whole life (see `app::lock_data_dir`). The
/// database's own lock is not enough: a server recovering from a full disk
/// closes the file for a moment and would find it rewritten under it.
fn lock_for_rotation(dir: &Path, db: &std::fs::Metadata) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::MetadataExt;
    let path = dir.join("wabridge.lock");
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let file = crate::files::open_private(&path)?;
            // Made by root, it would keep the service's user from locking it.
            if let Err(e) = std::os::unix::fs::fchown(&file, Some(db.uid()), Some(db.gid())) {
                tracing::debug!(error = %e, "cannot give the lock file the database's owner");
            }
            file
        }
        Err(e) => {
            return Err(Error::Startup(format!(
                "cannot open {}: {e}",
                path.display()
            )))
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Startup(format!(
            "data dir {} is in use by a running wabridge (it holds {}): stop it first (e.g. `systemctl stop wabridge`), then rotate, then start it again",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Startup(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// The database file, private, with its key found and its schema current.
fn open_unlocked(path: &Path, key: &KeyLocation) -> Result<(Database, Sealer), Error> {
    crate::files::open_private(path)?;
    let db = open_db(path)?;
    let sealer = key::unlock(&db, path, key)?;
    let dir = crate::files::parent_dir(path);
    let free = || rewrite::free_bytes(dir);
    migrate::run(&db, &sealer, &migrate::Disk { dir, free: &free })?;
    // A postponed rewrite was logged; the pending mark stays for the next start.
    let (db, _) = rewrite::finish(db, path, open_db)?;
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
    next_id_in(&mut tx.open_table(tables::META)?, counter)
}

/// [`next_id`] on the `meta` table already open.
fn next_id_in(meta: &mut Table<'_, &'static str, u64>, counter: &str) -> Result<u64, Error> {
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
