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
use std::sync::{Arc, Mutex, PoisonError};

use super::outbox::{unopened, Due, Lane};
use super::tables::LISTENERS;
use super::Store;
use crate::domain::model::Listener;
use crate::error::Error;

/// Deliveries, and bytes of their bodies, waiting per lane. Past either, new
/// ones are left to the outbox read, so memory does not grow with a backlog.
const CAP: usize = 1024;
const CAP_BYTES: usize = 8 * 1024 * 1024;

/// A delivery committed by an ingest, with the body it sends. Its listener
/// is read when the dispatcher takes it, as it is then.
pub(super) struct Fresh {
    pub due: Due,
    pub lane: Lane,
}

#[derive(Default)]
struct Waiting {
    items: VecDeque<Fresh>,
    bytes: usize,
}

pub(super) struct Handoff {
    lanes: [Mutex<Waiting>; 2],
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

/// A commit's new deliveries on their way to the handoff. Dropped before
/// `hand_over` (the request was given up while its commit went through, or
/// the commit failed), it flags their lanes for the outbox read instead.
pub(super) struct Handover {
    fresh: Vec<Fresh>,
    to: Arc<Handoff>,
}

impl Handover {
    pub fn new(to: Arc<Handoff>, fresh: Vec<Fresh>) -> Handover {
        Handover { fresh, to }
    }

    pub fn hand_over(mut self) {
        let fresh = std::mem::take(&mut self.fresh);
        self.to.push(fresh);
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        for item in &self.fresh {
            self.to.missed(item.lane);
        }
    }
}

impl Handoff {
    /// Passes deliveries on; those that do not fit stay in the outbox only.
    fn push(&self, fresh: Vec<Fresh>) {
        for item in fresh {
            let lane = item.lane;
            let size = item.due.body.len();
            let mut waiting = self.waiting(lane);
            if waiting.items.len() < CAP && waiting.bytes + size <= CAP_BYTES {
                waiting.bytes += size;
                waiting.items.push_back(item);
            } else {
                drop(waiting);
                self.missed(lane);
            }
        }
    }

    /// Rows were queued in `lane`'s outbox without being handed over.
    pub fn missed(&self, lane: Lane) {
        self.unread[slot(lane)].store(true, Ordering::Release);
    }

    fn waiting(&self, lane: Lane) -> std::sync::MutexGuard<'_, Waiting> {
        self.lanes[slot(lane)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn pop(&self, lane: Lane) -> Option<Fresh> {
        let mut waiting = self.waiting(lane);
        let item = waiting.items.pop_front()?;
        waiting.bytes -= item.due.body.len();
        Some(item)
    }
}

impl Store {
    /// Whether `lane`'s outbox must be read for rows never handed over; the
    /// answer is given once (the read that follows takes them).
    pub fn outbox_unread(&self, lane: Lane) -> bool {
        self.handoff.unread[slot(lane)].swap(false, Ordering::AcqRel)
    }

    /// `outbox_unread` without taking the answer: whether to wake for a read.
    pub fn outbox_unread_pending(&self, lane: Lane) -> bool {
        self.handoff.unread[slot(lane)].load(Ordering::Acquire)
    }

    /// Forgets what waits in `lane`: the dispatcher is reading a backlog from
    /// the outbox, where all of it is, and reads on until a read is not full.
    pub fn forget_handed(&self, lane: Lane) {
        let mut waiting = self.handoff.waiting(lane);
        waiting.items.clear();
        waiting.bytes = 0;
    }

    /// Up to `limit` deliveries handed over in `lane`, with their listeners
    /// as they are now, secrets opened (once per listener). Skipped: those in
    /// `in_flight` (read from the outbox meanwhile) and those whose row is gone
    /// (already recorded).
    pub fn handed_over(
        &self,
        lane: Lane,
        limit: usize,
        in_flight: &HashSet<u64>,
    ) -> Result<Vec<Due>, Error> {
        let read = self.read(|tx| {
            let outbox = tx.open_table(lane.table())?;
            let listeners = tx.open_table(LISTENERS)?;
            let mut opened: HashMap<String, Option<Listener>> = HashMap::new();
            let mut out = Vec::new();
            while out.len() < limit {
                let Some(Fresh { mut due, .. }) = self.handoff.pop(lane) else {
                    break;
                };
                let d = &due.delivery;
                let Some(at) = d.next_attempt_at else {
                    continue;
                };
                if in_flight.contains(&d.id) || outbox.get((at, d.id))?.is_none() {
                    continue;
                }
                let id = d.listener_id.clone();
                due.listener = match opened.get(&id) {
                    Some(listener) => listener.clone(),
                    None => {
                        let listener = match listeners.get(id.as_str())? {
                            // A record that does not decode: left to the outbox read.
                            Some(raw) => match unopened(&self.sealer, raw.value()) {
                                Some(listener) => Some(listener),
                                None => continue,
                            },
                            None => None,
                        };
                        opened.insert(id, listener.clone());
                        listener
                    }
                };
                out.push(due);
            }
            Ok(out)
        });
        if read.is_err() {
            // What was taken is still queued in the outbox; skipped ones
            // were not counted against `limit`.
            self.handoff.missed(lane);
        }
        read
    }
}

#[cfg(test)]
mod tests;
