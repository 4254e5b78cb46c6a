//! The outbox's fast path: the deliveries an ingest has just committed are
//! passed to the dispatcher in memory, so it does not read back (decode,
//! decrypt, copy) what was written a moment ago.
//!
//! The outbox row stays the truth. A delivery handed over is started only
//! while its row is still queued and its listener unchanged; what the queue
//! cannot hold, what it drops and whatever else is queued (redeliveries, test
//! events, anything from before a restart) the dispatcher reads from the
//! outbox as before, told so by `unread`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::outbox::{Due, Lane};
use super::Store;
use crate::domain::model::Listener;
use crate::error::Error;

/// Deliveries waiting per lane. Past it, new ones are left to the outbox read,
/// so memory does not grow with a backlog.
const CAP: usize = 1024;

/// A delivery committed by an ingest, with its listener as routed there
/// (secret still sealed) and the body it sends.
pub(super) struct Fresh {
    pub due: Due,
    pub lane: Lane,
    /// `Store::listeners_version` when the ingest was committed.
    pub version: u64,
}

pub(super) struct Handoff {
    lanes: [Mutex<VecDeque<Fresh>>; 2],
    /// The lane's outbox may hold due rows that were never handed over.
    unread: [AtomicBool; 2],
}

impl Default for Handoff {
    fn default() -> Handoff {
        Handoff {
            lanes: Default::default(),
            // After a start, the outbox holds whatever was queued before it.
            unread: [AtomicBool::new(true), AtomicBool::new(true)],
        }
    }
}

fn slot(lane: Lane) -> usize {
    match lane {
        Lane::Urgent => 0,
        Lane::Normal => 1,
    }
}

impl Handoff {
    /// Passes a commit's deliveries on; those that do not fit stay in the outbox only.
    pub fn push(&self, fresh: Vec<Fresh>) {
        for item in fresh {
            let lane = item.lane;
            let mut queue = self.queue(lane);
            if queue.len() < CAP {
                queue.push_back(item);
            } else {
                drop(queue);
                self.missed(lane);
            }
        }
    }

    /// Rows were queued in `lane`'s outbox without being handed over.
    pub fn missed(&self, lane: Lane) {
        self.unread[slot(lane)].store(true, Ordering::Release);
    }

    fn queue(&self, lane: Lane) -> std::sync::MutexGuard<'_, VecDeque<Fresh>> {
        self.lanes[slot(lane)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store {
    /// Whether `lane`'s outbox must be read for rows never handed over; the
    /// answer is given once (the read that follows takes them).
    pub fn outbox_unread(&self, lane: Lane) -> bool {
        self.handoff.unread[slot(lane)].swap(false, Ordering::AcqRel)
    }

    /// Up to `limit` deliveries handed over in `lane`, with their listeners'
    /// secrets opened (once per listener). Skipped: those in `in_flight` (read
    /// from the outbox meanwhile), those whose row is gone (already recorded),
    /// and those routed under another listeners' `version` than the caller's
    /// (left to the outbox read, which sees the listener as it is now).
    pub fn handed_over(
        &self,
        lane: Lane,
        limit: usize,
        version: u64,
        in_flight: &HashSet<u64>,
    ) -> Result<Vec<Due>, Error> {
        let taken: Vec<Fresh> = {
            let mut queue = self.handoff.queue(lane);
            let n = queue.len().min(limit);
            queue.drain(..n).collect()
        };
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        let read = self.read(|tx| {
            let outbox = tx.open_table(lane.table())?;
            let mut opened: HashMap<String, Listener> = HashMap::new();
            let mut out = Vec::with_capacity(taken.len());
            for Fresh {
                mut due,
                version: routed,
                ..
            } in taken
            {
                let d = &due.delivery;
                if in_flight.contains(&d.id) {
                    continue;
                }
                if routed != version {
                    self.handoff.missed(lane);
                    continue;
                }
                let Some(at) = d.next_attempt_at else {
                    continue;
                };
                if outbox.get((at, d.id))?.is_none() {
                    continue;
                }
                if let Some(sealed) = due.listener.take() {
                    due.listener = Some(self.opened(&mut opened, sealed));
                }
                out.push(due);
            }
            Ok(out)
        });
        if read.is_err() {
            // What was taken is still queued in the outbox.
            self.handoff.missed(lane);
        }
        read
    }

    /// `sealed` with its secret opened, once per listener per batch. One that
    /// does not open is sent as stopped, as the outbox read does.
    fn opened(&self, cache: &mut HashMap<String, Listener>, sealed: Listener) -> Listener {
        if let Some(listener) = cache.get(&sealed.id) {
            return listener.clone();
        }
        let id = sealed.id.clone();
        let listener = super::outbox::unsealed(&self.sealer, sealed);
        cache.insert(id, listener.clone());
        listener
    }
}

#[cfg(test)]
mod tests;
