//! Taking work from other workers, at the stealing levels.
//!
//! A worker that ran dry takes half of another worker's deque, and failing
//! that, the stealable tasks waiting in another worker's inbox: a worker
//! that is busy, or blocked in a task, would not take those before it is
//! free again. Pinned tasks are never taken.

use super::{bump, Core};
use crossbeam_deque::Steal;

impl Core {
    /// Takes work from another worker: from its deque, else the stealable
    /// tasks waiting in its inbox (spawned or woken from another thread),
    /// which a worker that is busy, or blocked in a task for seconds, would
    /// not take before it is free again.
    pub(super) fn steal(&self) -> bool {
        let Some(deque) = &self.deque else {
            return false;
        };
        let n = self.rt.stealers.len();
        for k in 1..n {
            let victim = (self.shared.index + k) % n;
            loop {
                match self.rt.stealers[victim].steal_batch_and_pop(deque) {
                    Steal::Success(t) => {
                        bump(&self.shared.counters.steals, 1);
                        deque.push(t);
                        return true;
                    }
                    Steal::Retry => continue,
                    Steal::Empty => break,
                }
            }
        }
        for k in 1..n {
            let victim = &self.rt.workers[(self.shared.index + k) % n];
            // SAFETY: the cell's contract (owner_cell.rs), as in
            // `maintenance`: the loop alone borrows the arrivals, and
            // `push_local` only queues. Empty between uses (`maintenance`
            // drains it before it returns).
            let got = unsafe {
                self.arrivals.with(|arrivals| {
                    // Within the vector's capacity, so this never allocates.
                    let room = (arrivals.capacity() - arrivals.len()).min(32);
                    let got = victim
                        .inbox
                        .steal_into(arrivals, room, |t| t.header().stealable);
                    if got > 0 {
                        bump(&self.shared.counters.steals, got as u64);
                    }
                    for task in arrivals.drain(..) {
                        // A stealable task needs nothing from the worker it
                        // was sent to (`arrive` only queues it).
                        self.push_local(task);
                    }
                    got
                })
            };
            if got > 0 {
                return true;
            }
        }
        false
    }
}
