//! The one writer. Requests queue here; the writer commits everything that
//! waited as ONE durable transaction (group commit), then answers each.
//! If the shared transaction fails, each request is replayed on its own so
//! one bad request cannot fail its neighbours.
//!
//! A failure of the disk (full, or an I/O error) is different: redb latches it
//! and fails every later write until the database is reopened. The writer then
//! closes the database, answers every request with the fault at once, and
//! reopens the file with backoff until a probe write succeeds; then writes
//! resume with no restart. A request answered with the fault stored nothing.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::WriteTransaction;
use tokio::sync::oneshot;

use super::handle::{self, Handle};
use super::health::Health;
use crate::error::{Error, StorageFault};

/// Most requests in one commit: bounds the latency one commit adds.
const MAX_BATCH: usize = 1024;

/// First wait before reopening after a fault; doubled after each failed try
/// up to `REOPEN_MAX_WAIT`, so a disk that stays full costs a try every few
/// seconds (each may mean a repair of the file), not a busy loop.
const REOPEN_FIRST_WAIT: Duration = Duration::from_millis(200);
const REOPEN_MAX_WAIT: Duration = Duration::from_secs(5);

/// How often a full disk is looked at for freed space (the reading itself is
/// cached for a second).
const SPACE_POLL: Duration = Duration::from_secs(1);

pub(crate) trait Job: Send {
    fn run(&mut self, tx: &WriteTransaction) -> Result<(), Error>;
    fn finish(self: Box<Self>, result: Result<(), Error>);
}

pub(crate) enum Msg {
    Job(Box<dyn Job>),
    Stop,
}

struct TypedJob<T, F> {
    f: F,
    out: Option<T>,
    reply: Option<oneshot::Sender<Result<T, Error>>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnMut(&WriteTransaction) -> Result<T, Error> + Send,
{
    fn run(&mut self, tx: &WriteTransaction) -> Result<(), Error> {
        self.out = Some((self.f)(tx)?);
        Ok(())
    }

    fn finish(mut self: Box<Self>, result: Result<(), Error>) {
        let answer = match (result, self.out.take()) {
            (Ok(()), Some(v)) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(Error::Storage("write produced no result".into())),
        };
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(answer);
        }
    }
}

/// Packs a closure so the writer can run it, maybe twice (see module docs).
pub(crate) fn job<T, F>(f: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, Error>>)
where
    T: Send + 'static,
    F: FnMut(&WriteTransaction) -> Result<T, Error> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    (
        Box::new(TypedJob {
            f,
            out: None,
            reply: Some(tx),
        }),
        rx,
    )
}

pub(crate) struct Writer {
    pub db: Handle,
    pub path: PathBuf,
    pub health: Arc<Health>,
}

/// Set while the database is closed after a fault.
struct Recovery {
    next_try: Instant,
    wait: Duration,
}

pub(crate) fn run(w: Writer, rx: mpsc::Receiver<Msg>) {
    let mut recovery: Option<Recovery> = None;
    loop {
        let first = match next(&w, &rx, &mut recovery) {
            Some(Msg::Job(job)) => job,
            Some(Msg::Stop) | None => return,
        };
        let mut batch = vec![first];
        let mut stop = false;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => batch.push(job),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if recovery
            .as_ref()
            .is_some_and(|r| Instant::now() >= r.next_try)
        {
            try_reopen(&w, &mut recovery);
        }
        if recovery.is_some() {
            let fault = w.health.fault().unwrap_or_else(|| {
                StorageFault::Io("the database is being reopened after a failed write".into())
            });
            refuse(batch, &fault);
        } else if let Some(fault) = commit(&w.db, batch) {
            tracing::error!(error = %fault, "the database cannot write: refusing writes until it is reopened");
            w.health.set_fault(fault);
            // redb wants the file closed before it can be used again; closing
            // now also fails readers cleanly instead of with stale latches.
            w.db.close();
            recovery = Some(Recovery {
                next_try: Instant::now() + REOPEN_FIRST_WAIT,
                wait: REOPEN_FIRST_WAIT,
            });
        }
        if stop {
            return;
        }
    }
}

/// The next message; while recovering, wakes up to retry the reopen even when
/// no request comes, so health comes back by itself.
fn next(w: &Writer, rx: &mpsc::Receiver<Msg>, recovery: &mut Option<Recovery>) -> Option<Msg> {
    loop {
        let Some(r) = recovery.as_ref() else {
            return rx.recv().ok();
        };
        match rx.recv_timeout(r.next_try.saturating_duration_since(Instant::now())) {
            Ok(msg) => return Some(msg),
            Err(RecvTimeoutError::Timeout) => try_reopen(w, recovery),
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

fn try_reopen(w: &Writer, recovery: &mut Option<Recovery>) {
    let Some(r) = recovery.as_mut() else {
        return;
    };
    if !w.health.may_resume() {
        r.next_try = Instant::now() + SPACE_POLL;
        return;
    }
    match handle::reopen(&w.path) {
        Ok(db) => {
            w.db.replace(db);
            w.health.clear_fault();
            *recovery = None;
            tracing::info!("database reopened: writes resume");
        }
        Err(e) => {
            let fault = match e {
                Error::StorageUnavailable(fault) => fault,
                other => StorageFault::Io(other.to_string()),
            };
            tracing::warn!(error = %fault, retry_in = ?r.wait, "the database cannot be reopened yet");
            w.health.set_fault(fault);
            r.next_try = Instant::now() + r.wait;
            r.wait = (r.wait * 2).min(REOPEN_MAX_WAIT);
        }
    }
}

fn refuse(batch: Vec<Box<dyn Job>>, fault: &StorageFault) {
    for job in batch {
        job.finish(Err(Error::StorageUnavailable(fault.clone())));
    }
}

/// Commits the batch and answers each job; returns the disk's fault if there
/// was one, after which nothing more is tried.
fn commit(db: &Handle, mut batch: Vec<Box<dyn Job>>) -> Option<StorageFault> {
    if batch.len() > 1 {
        match run_together(db, &mut batch) {
            Ok(()) => {
                for job in batch {
                    job.finish(Ok(()));
                }
                return None;
            }
            // Replaying one by one would only meet the latch again.
            Err(Error::StorageUnavailable(fault)) => {
                refuse(batch, &fault);
                return Some(fault);
            }
            Err(_) => {}
        }
    }
    let mut jobs = batch.into_iter();
    while let Some(mut job) = jobs.next() {
        let result = run_together(db, std::slice::from_mut(&mut job));
        if let Err(Error::StorageUnavailable(fault)) = &result {
            let fault = fault.clone();
            job.finish(result);
            refuse(jobs.collect(), &fault);
            return Some(fault);
        }
        job.finish(result);
    }
    None
}

fn run_together(db: &Handle, jobs: &mut [Box<dyn Job>]) -> Result<(), Error> {
    let tx = db.begin_write()?;
    for job in jobs.iter_mut() {
        job.run(&tx)?;
    }
    tx.commit()?;
    Ok(())
}
