//! The three-phase shutdown.
//!
//! Shutdown runs in three phases separated by barriers, so that no queue
//! entry outlives its task: (0) every worker stops polling; (1) each closes
//! its inbox and clears its queues, which hold no references; (2) each
//! cancels every task in its owned lists, dropping `!Send` futures on
//! their own thread; (3) each closes its timers and its mesh state,
//! dropping their wakers.

use super::Core;
use crate::task::harness;

impl Core {
    pub(super) fn shutdown(&self) {
        let barrier = &self.rt.shutdown_barrier;
        barrier.wait();
        // Phase 1: close and clear the queues.
        self.closed.set(true);
        let mut arrivals = Vec::new();
        self.shared.inbox.close(&mut arrivals);
        for task in arrivals {
            if !task.header().stealable {
                // Linked, so that phase 2 cancels it; REMOTE_QUEUED stays
                // set, and the closed inbox refuses later pushes.
                self.link_arrival(task);
                harness::drop_reference(task);
            }
        }
        // SAFETY: the cell's contract (owner_cell.rs); the queues hold
        // plain pointers, so `clear` calls no code of ours.
        unsafe { self.local.with(|q| q.clear()) };
        // SAFETY: as above. Stealable tasks: the owner's locked list
        // cancels them in phase 2.
        unsafe { self.overflow.with(|q| q.clear()) };
        if let Some(d) = &self.deque {
            while d.pop().is_some() {}
        }
        barrier.wait();
        // Phase 2: cancel every task this worker owns.
        // SAFETY: the cell's contract (owner_cell.rs); the borrow ends with
        // `pop`, before the task's drop code runs (which unlinks through
        // this cell).
        while let Some(task) = unsafe { self.list.with(|l| l.pop()) } {
            harness::shutdown(task);
        }
        loop {
            let task = self.shared.shared_tasks.lock().pop();
            let Some(task) = task else { break };
            harness::shutdown(task);
        }
        barrier.wait();
        // Phase 3: drop the timers' wakers.
        let wakers = self.shared.timers.lock().close();
        drop(wakers);
        // The mesh's deferred ports (publishing, and closing those whose
        // handles are gone) and the wakers waiting for its bell.
        self.mesh.close();
        // SAFETY: the cell's contract (owner_cell.rs); the borrow ends with
        // `take`, before the driver drops. Every task is gone, so no socket
        // of this worker is left to use the driver.
        drop(unsafe { self.driver.with(|d| d.take()) });
        self.publish();
    }
}
