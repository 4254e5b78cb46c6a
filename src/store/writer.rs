//! The one writer. Requests queue here; the writer commits everything that
//! waited as ONE durable transaction (group commit), then answers each.
//! If the shared transaction fails, each request is replayed on its own so
//! one bad request cannot fail its neighbours.

use std::sync::mpsc;
use std::sync::Arc;

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use crate::error::Error;

/// Most requests in one commit: bounds the latency one commit adds.
const MAX_BATCH: usize = 1024;

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

pub(crate) fn run(db: Arc<Database>, rx: mpsc::Receiver<Msg>) {
    loop {
        let first = match rx.recv() {
            Ok(Msg::Job(job)) => job,
            Ok(Msg::Stop) | Err(_) => return,
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
        commit(&db, batch);
        if stop {
            return;
        }
    }
}

fn commit(db: &Database, mut batch: Vec<Box<dyn Job>>) {
    if batch.len() > 1 && run_together(db, &mut batch).is_ok() {
        for job in batch {
            job.finish(Ok(()));
        }
        return;
    }
    for mut job in batch {
        let result = run_together(db, std::slice::from_mut(&mut job));
        job.finish(result);
    }
}

fn run_together(db: &Database, jobs: &mut [Box<dyn Job>]) -> Result<(), Error> {
    let tx = db.begin_write()?;
    for job in jobs.iter_mut() {
        job.run(&tx)?;
    }
    tx.commit()?;
    Ok(())
}
