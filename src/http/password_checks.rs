//! Admin password checks, on two threads of their own behind a short queue.
//! An Argon2id check takes 19 MiB. On tokio's blocking pool each of up to 512
//! threads would keep its own 19 MiB afterwards (the allocator keeps a freed
//! block in the thread's arena), so a burst of logins from many addresses grew
//! memory by hundreds of MiB. Here two threads hold at most two such blocks,
//! and a login that finds the queue full is told to retry.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::domain::password;

pub struct PasswordChecks {
    queue: SyncSender<Job>,
}

struct Job {
    secret: String,
    phc: String,
    reply: oneshot::Sender<bool>,
}

impl PasswordChecks {
    /// `threads` checkers; at most `queued` checks wait for one.
    pub fn start(threads: usize, queued: usize) -> PasswordChecks {
        let (queue, jobs) = sync_channel::<Job>(queued);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..threads {
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new()
                .name("wabridge-password".into())
                .spawn(move || check_until_closed(&jobs));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-check thread");
            }
        }
        PasswordChecks { queue }
    }

    /// Whether `secret` matches the PHC string; `None` when the queue is full.
    pub async fn verify(&self, secret: String, phc: String) -> Option<bool> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Job { secret, phc, reply }).ok()?;
        answer.await.ok()
    }
}

fn check_until_closed(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        // A client that went away dropped its end: the answer is simply lost.
        let _ = job.reply.send(password::verify(&job.secret, &job.phc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_run_on_the_pool_and_a_full_queue_is_said() {
        let phc = password::hash("correct horse battery").unwrap();
        let checks = PasswordChecks::start(1, 1);
        assert_eq!(
            checks
                .verify("correct horse battery".into(), phc.clone())
                .await,
            Some(true)
        );
        assert_eq!(
            checks.verify("wrong".into(), phc.clone()).await,
            Some(false)
        );
        // A queue of one that no thread takes from.
        let (queue, _jobs) = sync_channel(1);
        let none = PasswordChecks { queue };
        let (first, second) = tokio::join!(
            tokio::time::timeout(
                std::time::Duration::from_millis(200),
                none.verify("a".into(), phc.clone())
            ),
            async { none.verify("b".into(), phc.clone()).await }
        );
        assert!(first.is_err(), "queued, with no thread to check it");
        assert_eq!(second, None, "the queue of one is full");
    }
}
