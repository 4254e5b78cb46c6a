//! The memory webhook bodies may hold while they arrive.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Memory for webhook bodies being received. Meta's bodies arrive in a few
/// milliseconds; a sender that trickles one holds its share only until the
/// body deadline, and the total never exceeds the budget.
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

impl BodyBudget {
    pub fn new(total: usize) -> BodyBudget {
        // The semaphore counts in u32-sized permits per acquire; the budget is
        // counted in KiB so a budget of gigabytes still fits.
        BodyBudget {
            bytes: Arc::new(Semaphore::new(total.max(1024) / 1024)),
        }
    }

    /// A draw for one body, empty until it grows.
    pub fn draw(&self) -> Draw<'_> {
        Draw {
            budget: self,
            permit: None,
            bytes: 0,
            kib: 0,
        }
    }

    pub fn available(&self) -> usize {
        self.bytes.available_permits() * 1024
    }
}

/// What one body holds of the budget: its size rounded up to KiB once, not
/// per frame (a body sent a byte at a time costs its size, not 1 KiB a byte).
/// Given back when dropped.
pub struct Draw<'a> {
    budget: &'a BodyBudget,
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
    kib: u32,
}

impl Draw<'_> {
    /// Draws `more` bytes; false when the budget is spent.
    pub fn grow(&mut self, more: usize) -> bool {
        let Ok(want) = u32::try_from((self.bytes + more).div_ceil(1024)) else {
            return false;
        };
        if want > self.kib {
            let Ok(extra) = self
                .budget
                .bytes
                .clone()
                .try_acquire_many_owned(want - self.kib)
            else {
                return false;
            };
            match &mut self.permit {
                Some(p) => p.merge(extra),
                None => self.permit = Some(extra),
            }
            self.kib = want;
        }
        self.bytes += more;
        true
    }
}
