use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use redb::backends::FileBackend;
use redb::{BackendError, Database, StorageBackend};

use super::recovery::{Backoff, HEALTHY_RESET, REOPEN_FIRST_WAIT, REOPEN_IO_WAIT, REOPEN_MAX_WAIT};
use super::*;
use crate::domain::disk::MinFreeSpace;
use crate::store::handle;
use crate::store::tables::{META, SCHEMA_VERSION, SCHEMA_VERSION_KEY};

const ENOSPC: i32 = 28;
const EIO: i32 = 5;

/// The file backend, failing every write, resize and fsync with `errno`
/// while it is not 0: a disk that fills or fails under the writer.
#[derive(Debug)]
struct Faulty {
    inner: FileBackend,
    errno: Arc<AtomicI32>,
}

impl Faulty {
    fn check(&self) -> Result<(), io::Error> {
        match self.errno.load(Ordering::SeqCst) {
            0 => Ok(()),
            code => Err(io::Error::from_raw_os_error(code)),
        }
    }
}

impl StorageBackend for Faulty {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound<u64>, e: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(s, e)
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    path: PathBuf,
    errno: Arc<AtomicI32>,
    db: Handle,
    health: Arc<Health>,
    tx: mpsc::Sender<Msg>,
}

/// A database as `Store::open` leaves it (schema version set), opened
/// through `Faulty`, with a writer running on it.
fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wabridge.redb");
    {
        let db = handle::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
            .unwrap();
        tx.commit().unwrap();
    }
    let errno = Arc::new(AtomicI32::new(0));
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let backend = Faulty {
        inner: FileBackend::new(file).unwrap(),
        errno: errno.clone(),
    };
    let db = Handle::new(Database::builder().create_with_backend(backend).unwrap());
    let health = Arc::new(Health::new(
        dir.path().to_path_buf(),
        MinFreeSpace::Bytes(0),
    ));
    let (tx, rx) = mpsc::channel();
    let w = Writer {
        db: db.clone(),
        path: path.clone(),
        file: FileId::of(&path).unwrap(),
        health: health.clone(),
    };
    std::thread::spawn(move || run(w, rx));
    Rig {
        _dir: dir,
        path,
        errno,
        db,
        health,
        tx,
    }
}

impl Rig {
    /// Stores `key` through the writer and waits for the answer.
    fn put(&self, key: &'static str) -> Result<(), Error> {
        let (job, answer) = job(move |tx: &WriteTransaction| {
            tx.open_table(META)?.insert(key, 1)?;
            Ok(())
        });
        self.tx.send(Msg::Job(job)).unwrap();
        answer.blocking_recv().unwrap()
    }

    /// Like `put`, with the fault health showed at the moment the writer
    /// answered (on its own thread, before anything else could change it).
    fn put_watching_health(&self, key: &'static str) -> (Result<(), Error>, Option<StorageFault>) {
        let (seen, answer) = std::sync::mpsc::channel();
        let job = Witness {
            key,
            health: self.health.clone(),
            seen,
        };
        self.tx.send(Msg::Job(Box::new(job))).unwrap();
        answer.recv().unwrap()
    }

    fn has(&self, key: &str) -> bool {
        let tx = self.db.begin_read().unwrap();
        let meta = tx.open_table(META).unwrap();
        meta.get(key).unwrap().is_some()
    }

    fn put_until_ok(&self, key: &'static str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.put(key).is_err() {
            assert!(Instant::now() < deadline, "writes never resumed");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

struct Witness {
    key: &'static str,
    health: Arc<Health>,
    seen: std::sync::mpsc::Sender<(Result<(), Error>, Option<StorageFault>)>,
}

impl Job for Witness {
    fn run<'t>(&mut self, tx: &'t WriteTransaction, _: &mut Shared<'t>) -> Result<(), Error> {
        tx.open_table(META)?.insert(self.key, 1)?;
        Ok(())
    }

    fn finish(self: Box<Self>, result: Result<(), Error>) {
        let _ = self.seen.send((result, self.health.fault()));
    }
}

#[test]
fn a_full_disk_is_refused_not_acknowledged_and_writes_resume_once_it_heals() {
    let rig = rig();
    rig.put("before").unwrap();

    rig.errno.store(ENOSPC, Ordering::SeqCst);
    let (result, fault_when_answered) = rig.put_watching_health("lost");
    assert!(matches!(
        result,
        Err(Error::StorageUnavailable(StorageFault::NoSpace))
    ));
    // Whoever hears of the refusal finds health failing too.
    assert_eq!(fault_when_answered, Some(StorageFault::NoSpace));
    // (Refusals while the disk stays full are in tests/it/disk.rs: here
    // the reopen after 200 ms finds room at once, so timing would decide.)

    rig.errno.store(0, Ordering::SeqCst);
    rig.put_until_ok("after");
    assert_eq!(rig.health.fault(), None);
    assert!(rig.has("before") && rig.has("after"));
    assert!(!rig.has("lost"), "a refused write was stored");
}

#[test]
fn a_database_file_gone_during_a_fault_is_not_recreated() {
    let rig = rig();
    rig.put("before").unwrap();
    rig.errno.store(EIO, Ordering::SeqCst);
    assert!(matches!(rig.put("lost"), Err(Error::StorageUnavailable(_))));
    let moved = rig.path.with_extension("moved");
    std::fs::rename(&rig.path, &moved).unwrap();
    rig.errno.store(0, Ordering::SeqCst);

    // The first reopen comes after 200 ms: wait (up to 10 s, for a busy
    // machine) until the fault says it found the file gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        match rig.health.fault() {
            Some(StorageFault::Io(why)) if why.contains("gone") => break why,
            other if Instant::now() > deadline => {
                panic!("expected the missing file as the fault, got {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    assert!(
        !rig.path.exists(),
        "a new, empty database was created ({gone})"
    );
    assert!(matches!(
        rig.put("refused"),
        Err(Error::StorageUnavailable(_))
    ));
    assert!(rig.health.refusal().is_some());
}

fn io_fault() -> StorageFault {
    StorageFault::Io("Input/output error".into())
}

#[test]
fn the_backoff_grows_across_faults_until_writes_stay_healthy() {
    let t0 = Instant::now();
    let mut b = Backoff::new();
    assert_eq!(b.fault(&StorageFault::NoSpace, t0), t0 + REOPEN_FIRST_WAIT);
    b.resumed(t0 + Duration::from_secs(1));
    // A new fault soon after: no starting over at 200 ms.
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(
        b.fault(&StorageFault::NoSpace, t1),
        t1 + 2 * REOPEN_FIRST_WAIT
    );
    for _ in 0..10 {
        b.next(t1);
    }
    assert_eq!(b.next(t1), t1 + REOPEN_MAX_WAIT);
    b.resumed(t1);
    // Healthy for long enough: back to the first wait.
    let t2 = t1 + HEALTHY_RESET;
    assert_eq!(b.fault(&StorageFault::NoSpace, t2), t2 + REOPEN_FIRST_WAIT);
}

#[test]
fn repeated_io_errors_wait_the_longest() {
    let t0 = Instant::now();
    let mut b = Backoff::new();
    assert_eq!(b.fault(&io_fault(), t0), t0 + REOPEN_FIRST_WAIT);
    b.resumed(t0);
    let t1 = t0 + Duration::from_secs(10);
    assert_eq!(b.fault(&io_fault(), t1), t1 + REOPEN_IO_WAIT);
    assert_eq!(b.next(t1), t1 + REOPEN_IO_WAIT);
}

#[test]
fn a_file_that_is_not_ours_waits_at_least_the_max() {
    let t0 = Instant::now();
    let mut b = Backoff::new();
    b.fault(&StorageFault::NoSpace, t0);
    assert_eq!(b.wrong_file(t0), t0 + REOPEN_MAX_WAIT);
}

#[test]
fn ingests_share_their_tables_and_a_job_between_them_gets_its_own() {
    use std::sync::atomic::AtomicUsize;
    let rig = rig();
    // Holds the writer so the next three queue up and share one commit.
    let (release, held) = mpsc::channel::<()>();
    let (blocker, blocked) = job(move |_: &WriteTransaction| {
        let _ = held.recv_timeout(Duration::from_secs(10));
        Ok(())
    });
    rig.tx.send(Msg::Job(blocker)).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let ingest = |key: &'static str| {
        let runs = runs.clone();
        ingest_job(move |t: &mut IngestTables<'_>| {
            runs.fetch_add(1, Ordering::SeqCst);
            t.count_for_test(key)
        })
    };
    let (first, first_done) = ingest("first");
    // A job of its own that opens a table the ingests hold: redb would refuse
    // it (and the batch would be replayed, each job run again) unless the
    // shared tables were closed first.
    let (between, between_done) = job(move |tx: &WriteTransaction| {
        tx.open_table(META)?.insert("between", 1)?;
        Ok(())
    });
    let (second, second_done) = ingest("second");
    for j in [first, between, second] {
        rig.tx.send(Msg::Job(j)).unwrap();
    }
    release.send(()).unwrap();
    blocked.blocking_recv().unwrap().unwrap();
    first_done.blocking_recv().unwrap().unwrap();
    between_done.blocking_recv().unwrap().unwrap();
    second_done.blocking_recv().unwrap().unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "each ingest ran once: no replay"
    );
    assert!(rig.has("first") && rig.has("between") && rig.has("second"));
}
