//! After a fault: when to try reopening the file again, and the try itself.
//! The backoff outlives one fault, so a disk that fails again and again is
//! not hammered.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{Msg, Writer};
use crate::error::{Error, StorageFault};
use crate::store::handle::{self, ReopenError};

/// First wait before reopening after a fault; doubled after each failed try
/// and after each new fault up to `REOPEN_MAX_WAIT`, so a disk that stays full
/// costs a try every few seconds (each may mean a repair of the file), not a
/// busy loop, and a disk that fails again and again does not flap at 200 ms.
pub(super) const REOPEN_FIRST_WAIT: Duration = Duration::from_millis(200);
pub(super) const REOPEN_MAX_WAIT: Duration = Duration::from_secs(5);

/// Writes must have gone well this long since the last reopen before the
/// backoff starts again from `REOPEN_FIRST_WAIT`.
pub(super) const HEALTHY_RESET: Duration = Duration::from_secs(180);

/// Repeated I/O errors (not a full disk) wait this long between reopens: a disk
/// that answers EIO again after a reopen is failing, and each reopen writes to it.
pub(super) const REOPEN_IO_WAIT: Duration = Duration::from_secs(60);

/// How often a full disk is looked at for freed space (the reading itself is
/// cached for a second).
const SPACE_POLL: Duration = Duration::from_secs(1);
/// Set while the database is closed after a fault.
pub(super) struct Recovery {
    pub(super) next_try: Instant,
}

/// How long to wait before the next reopen. It outlives one fault: only writes
/// that stay healthy for `HEALTHY_RESET` bring it back to the first wait.
#[derive(Debug)]
pub(super) struct Backoff {
    wait: Duration,
    /// When writes last resumed after a fault.
    resumed_at: Option<Instant>,
    /// I/O faults (not a full disk) since the backoff last started over.
    io_faults: u32,
}

impl Backoff {
    pub(super) fn new() -> Backoff {
        Backoff {
            wait: REOPEN_FIRST_WAIT,
            resumed_at: None,
            io_faults: 0,
        }
    }

    /// A new fault at `now`: when to try the first reopen.
    pub(super) fn fault(&mut self, fault: &StorageFault, now: Instant) -> Instant {
        if self
            .resumed_at
            .is_some_and(|at| now.saturating_duration_since(at) >= HEALTHY_RESET)
        {
            *self = Backoff::new();
        }
        if matches!(fault, StorageFault::Io(_)) {
            self.io_faults += 1;
            if self.io_faults > 1 {
                // After a failed fsync the kernel may have dropped the pages it
                // could not write: a disk doing that again is not retried often.
                self.wait = self.wait.max(REOPEN_IO_WAIT);
            }
        }
        self.next(now)
    }

    /// A reopen failed at `now`, or a fault began: the time of the next try,
    /// and a longer wait for the one after.
    pub(super) fn next(&mut self, now: Instant) -> Instant {
        let at = now + self.wait;
        let cap = if self.io_faults > 1 {
            REOPEN_IO_WAIT
        } else {
            REOPEN_MAX_WAIT
        };
        self.wait = (self.wait * 2).min(cap).max(self.wait);
        at
    }

    /// A file that is not ours: waiting is for an operator, not a few seconds.
    pub(super) fn wrong_file(&mut self, now: Instant) -> Instant {
        self.wait = self.wait.max(REOPEN_MAX_WAIT);
        self.next(now)
    }

    pub(super) fn resumed(&mut self, now: Instant) {
        self.resumed_at = Some(now);
    }
}
/// The next message; while recovering, wakes up to retry the reopen even when
/// no request comes, so health comes back by itself.
pub(super) fn next(
    w: &Writer,
    rx: &mpsc::Receiver<Msg>,
    recovery: &mut Option<Recovery>,
    backoff: &mut Backoff,
) -> Option<Msg> {
    loop {
        let Some(r) = recovery.as_ref() else {
            return rx.recv().ok();
        };
        match rx.recv_timeout(r.next_try.saturating_duration_since(Instant::now())) {
            Ok(msg) => return Some(msg),
            Err(RecvTimeoutError::Timeout) => try_reopen(w, recovery, backoff),
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

pub(super) fn try_reopen(w: &Writer, recovery: &mut Option<Recovery>, backoff: &mut Backoff) {
    let Some(r) = recovery.as_mut() else {
        return;
    };
    // Read here, on the writer thread, not on a request's.
    w.health.refresh_space();
    if !w.health.may_resume() {
        r.next_try = Instant::now() + SPACE_POLL;
        return;
    }
    match handle::reopen(&w.path, w.file) {
        Ok(db) => {
            w.db.replace(db);
            w.health.clear_fault();
            *recovery = None;
            backoff.resumed(Instant::now());
            tracing::info!("database reopened: writes resume");
        }
        Err(e) => {
            let now = Instant::now();
            if e.is_wrong_file() {
                r.next_try = backoff.wrong_file(now);
                tracing::error!(error = %e, path = %w.path.display(), "the database cannot be reopened: new events stay refused (503) until the file is back");
                w.health.set_fault(StorageFault::Io(e.to_string()));
                return;
            }
            let fault = match e {
                ReopenError::Store(Error::StorageUnavailable(fault)) => fault,
                other => StorageFault::Io(other.to_string()),
            };
            r.next_try = backoff.next(now);
            tracing::warn!(error = %fault, retry_in = ?r.next_try.saturating_duration_since(now), "the database cannot be reopened yet");
            w.health.set_fault(fault);
        }
    }
}
