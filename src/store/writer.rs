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

mod recovery;

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use redb::WriteTransaction;
use tokio::sync::oneshot;

use super::events::IngestTables;
use super::handle::{FileId, Handle};
use super::health::Health;
use crate::error::{Error, StorageFault};
use recovery::{next, try_reopen, Backoff, Recovery};

/// Most requests in one commit: bounds the latency one commit adds.
const MAX_BATCH: usize = 1024;

pub(crate) trait Job: Send {
    fn run<'t>(&mut self, tx: &'t WriteTransaction, shared: &mut Shared<'t>) -> Result<(), Error>;
    fn finish(self: Box<Self>, result: Result<(), Error>);
}

/// Tables kept open from one ingest to the next within a commit: opening and
/// closing the dozen tables an ingest writes, once per webhook, took two
/// fifths of the writer's time (perf, December 2026). redb opens a table
/// once at a time, so any other job closes them first.
#[derive(Default)]
pub(crate) struct Shared<'t> {
    ingest: Option<IngestTables<'t>>,
}

impl<'t> Shared<'t> {
    fn ingest(&mut self, tx: &'t WriteTransaction) -> Result<&mut IngestTables<'t>, Error> {
        Ok(match self.ingest {
            Some(ref mut open) => open,
            None => self.ingest.insert(IngestTables::open(tx)?),
        })
    }

    fn close(&mut self) {
        self.ingest = None;
    }
}

pub(crate) enum Msg {
    Job(Box<dyn Job>),
    Stop,
}

/// What a job does in the batch's transaction: a closure on the transaction
/// ([`OnTx`]) or an ingest on the shared tables ([`OnIngest`]).
trait Work<T>: Send {
    fn run<'t>(&mut self, tx: &'t WriteTransaction, shared: &mut Shared<'t>) -> Result<T, Error>;
}

struct OnTx<F>(F);

impl<T, F> Work<T> for OnTx<F>
where
    F: FnMut(&WriteTransaction) -> Result<T, Error> + Send,
{
    fn run<'t>(&mut self, tx: &'t WriteTransaction, shared: &mut Shared<'t>) -> Result<T, Error> {
        shared.close();
        (self.0)(tx)
    }
}

struct OnIngest<F>(F);

impl<T, F> Work<T> for OnIngest<F>
where
    F: for<'a, 't> FnMut(&'a mut IngestTables<'t>) -> Result<T, Error> + Send,
{
    fn run<'t>(&mut self, tx: &'t WriteTransaction, shared: &mut Shared<'t>) -> Result<T, Error> {
        (self.0)(shared.ingest(tx)?)
    }
}

/// A job with its result, kept until the commit says whether it stands.
struct Packed<T, W> {
    work: W,
    out: Option<T>,
    reply: Option<oneshot::Sender<Result<T, Error>>>,
}

impl<T: Send, W: Work<T>> Job for Packed<T, W> {
    fn run<'t>(&mut self, tx: &'t WriteTransaction, shared: &mut Shared<'t>) -> Result<(), Error> {
        self.out = Some(self.work.run(tx, shared)?);
        Ok(())
    }

    fn finish(self: Box<Self>, result: Result<(), Error>) {
        let Packed { work, out, reply } = *self;
        // Let go of what the work holds before answering, so that what the
        // caller shares with it (an ingest's parsed events) is freed on the
        // caller's thread, not on this one.
        drop(work);
        let answer = match (result, out) {
            (Ok(()), Some(v)) => Ok(v),
            (Err(e), _) => Err(e),
            (Ok(()), None) => Err(Error::bug("a write succeeded without producing its result")),
        };
        if let Some(reply) = reply {
            let _ = reply.send(answer);
        }
    }
}

fn pack<T, W>(work: W) -> (Box<dyn Job>, oneshot::Receiver<Result<T, Error>>)
where
    T: Send + 'static,
    W: Work<T> + 'static,
{
    let (tx, rx) = oneshot::channel();
    let packed = Packed {
        work,
        out: None,
        reply: Some(tx),
    };
    (Box::new(packed), rx)
}

/// Packs a closure so the writer can run it, maybe twice (see module docs).
pub(crate) fn job<T, F>(f: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, Error>>)
where
    T: Send + 'static,
    F: FnMut(&WriteTransaction) -> Result<T, Error> + Send + 'static,
{
    pack(OnTx(f))
}

/// Packs an ingest (see [`Shared`]); like [`job`], it may run twice.
pub(crate) fn ingest_job<T, F>(f: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, Error>>)
where
    T: Send + 'static,
    F: for<'a, 't> FnMut(&'a mut IngestTables<'t>) -> Result<T, Error> + Send + 'static,
{
    pack(OnIngest(f))
}

pub(crate) struct Writer {
    pub db: Handle,
    pub path: PathBuf,
    /// The file opened at start: the only one a reopen may take.
    pub file: FileId,
    pub health: Arc<Health>,
}

pub(crate) fn run(w: Writer, rx: mpsc::Receiver<Msg>) {
    let mut recovery: Option<Recovery> = None;
    let mut backoff = Backoff::new();
    loop {
        let first = match next(&w, &rx, &mut recovery, &mut backoff) {
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
            try_reopen(&w, &mut recovery, &mut backoff);
        }
        if recovery.is_some() {
            let fault = w.health.fault().unwrap_or_else(|| {
                StorageFault::Io("the database is being reopened after a failed write".into())
            });
            refuse(batch, &fault);
        } else if let Some(fault) = commit(&w.db, &w.health, batch) {
            tracing::error!(error = %fault, "the database cannot write: refusing writes until it is reopened");
            let next_try = backoff.fault(&fault, Instant::now());
            // redb wants the file closed before it can be used again; closing
            // now also fails readers cleanly instead of with stale latches.
            w.db.close();
            recovery = Some(Recovery { next_try });
        }
        if stop {
            return;
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
fn commit(db: &Handle, health: &Health, mut batch: Vec<Box<dyn Job>>) -> Option<StorageFault> {
    if batch.len() > 1 {
        match run_together(db, health, &mut batch) {
            Ok(()) => {
                for job in batch {
                    job.finish(Ok(()));
                }
                return None;
            }
            // Replaying one by one would only meet the latch again.
            Err(Error::StorageUnavailable(fault)) => {
                fail(health, batch, &fault);
                return Some(fault);
            }
            Err(_) => {}
        }
    }
    let mut jobs = batch.into_iter();
    while let Some(mut job) = jobs.next() {
        let result = run_together(db, health, std::slice::from_mut(&mut job));
        if let Err(Error::StorageUnavailable(fault)) = &result {
            let fault = fault.clone();
            fail(health, std::iter::once(job).chain(jobs).collect(), &fault);
            return Some(fault);
        }
        job.finish(result);
    }
    None
}

/// Refuses the batch once the fault is known to everyone: a client answered
/// 503 must find /healthz failing and the free-space reading taken after the
/// fault, not a second old, when it looks next.
fn fail(health: &Health, batch: Vec<Box<dyn Job>>, fault: &StorageFault) {
    health.refresh_space();
    health.set_fault(fault.clone());
    refuse(batch, fault);
}

fn run_together(db: &Handle, health: &Health, jobs: &mut [Box<dyn Job>]) -> Result<(), Error> {
    let start = Instant::now();
    let tx = db.begin_write()?;
    {
        let mut shared = Shared::default();
        for job in jobs.iter_mut() {
            job.run(&tx, &mut shared)?;
        }
    }
    tx.commit()?;
    health.committed(start.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests;
