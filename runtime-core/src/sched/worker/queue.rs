//! The worker's run queues, and the order the loop takes tasks from them.
//!
//! Pinned tasks (spawned with `spawn_local` or `spawn_on`, and every task
//! at the thread-per-core levels) wait in `local`, a plain FIFO only this
//! thread touches. Stealable tasks wait in the crossbeam deque other
//! workers steal from, kept at most [`DEQUE_ROOM`] long so that it never
//! reallocates; the rest wait in order in `overflow` and move into the
//! deque as it drains. The loop takes `local` first, then the deque, then
//! refills the deque from `overflow`.

use super::{stamp, Core};
use crate::task::raw::TaskRef;

/// Tasks a work-stealing deque holds at most. crossbeam-deque's buffer
/// starts with room for 64 and doubles when a push finds it full, and
/// halves when a pop leaves it under a quarter full: each step allocates
/// a buffer (and retires the old one through the epoch collector), so a
/// burst of 1,000 spawns allocated on every burst. Kept at or under its
/// first buffer it never resizes; what does not fit waits in the worker's
/// overflow queue (stealable once it moves into the deque).
pub(super) const DEQUE_ROOM: usize = 64;

impl Core {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Queues a task on this worker.
    pub(crate) fn push_local(&self, task: TaskRef) {
        if self.closed.get() {
            return;
        }
        // Queueings during a timed poll (and the maintenance after it)
        // are timed (`sampling` is false with metrics off).
        if crate::metrics::sampling() {
            stamp(task);
        }
        match &self.deque {
            Some(d) if task.header().stealable => {
                // SAFETY: the cell's contract (owner_cell.rs); the closure
                // touches only the deque.
                unsafe {
                    self.overflow.with(|overflow| {
                        if overflow.is_empty() && d.len() < DEQUE_ROOM {
                            d.push(task);
                        } else {
                            overflow.push_back(task);
                        }
                    })
                };
                self.rt.wake_a_sleeper(self.shared.index);
            }
            // SAFETY: the cell's contract (owner_cell.rs); `push_back`
            // calls no code of ours.
            _ => unsafe { self.local.with(|q| q.push_back(task)) },
        }
    }

    pub(super) fn next_task(&self) -> Option<TaskRef> {
        // SAFETY: the cell's contract (owner_cell.rs); a queue operation
        // calls no code of ours.
        if let Some(t) = unsafe {
            self.local.with(|q| {
                let t = q.pop_front();
                match q.front() {
                    // The task after this one is polled next: its header
                    // is fetched while this one runs (a deep queue is far
                    // larger than the caches; the spawn_join_deep
                    // benchmark).
                    Some(next) => sprint_alloc::slab::prefetch_cell(next.header_ptr()),
                    // Empty: the ring starts again at the front of its
                    // buffer, so a queue that once grew deep keeps using
                    // the same few lines when shallow, and reaching that
                    // depth again touches only what it touched before (no
                    // page fault on the buffer's untouched tail).
                    None => q.clear(),
                }
                t
            })
        } {
            return Some(t);
        }
        let d = self.deque.as_ref()?;
        if let Some(t) = d.pop() {
            return Some(t);
        }
        // The deque is empty: the oldest of the overflow go into it (where
        // other workers can steal them), up to half its room.
        // SAFETY: as above; the closure touches only the deque besides.
        unsafe {
            self.overflow.with(|overflow| {
                for _ in 0..DEQUE_ROOM / 2 {
                    match overflow.pop_front() {
                        Some(t) => d.push(t),
                        None => break,
                    }
                }
            })
        };
        d.pop()
    }

    pub(super) fn has_local_work(&self) -> bool {
        // SAFETY: the cell's contract (owner_cell.rs); `is_empty` calls no
        // code of ours.
        !unsafe { self.local.with(|q| q.is_empty()) }
            || self.deque.as_ref().is_some_and(|d| !d.is_empty())
            // SAFETY: as above.
            || !unsafe { self.overflow.with(|q| q.is_empty()) }
    }
}
