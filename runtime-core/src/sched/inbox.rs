//! The inbox: how other threads hand a worker a task (a cross-worker wake,
//! `spawn_on`, a spawn from outside the runtime).
//!
//! A mutex-protected queue plus a `nonempty` flag the owner reads without
//! the lock. The queue keeps its capacity, so steady-state pushes do not
//! allocate. Closing it at shutdown makes later pushes fail, and the caller
//! then knows the task will never run there.

use crate::loom::sync::atomic::{AtomicBool, Ordering::*};
use crate::loom::sync::Mutex;
use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) struct Inbox<T> {
    queue: Mutex<Queue<T>>,
    nonempty: AtomicBool,
}

#[derive(Debug)]
struct Queue<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> Inbox<T> {
    pub(crate) fn new() -> Inbox<T> {
        Inbox {
            queue: Mutex::new(Queue {
                // A burst of cross-thread wakes or spawns up to this many
                // never makes the queue grow (it keeps what it grew to).
                items: VecDeque::with_capacity(crate::sched::worker::QUEUE_ROOM),
                closed: false,
            }),
            nonempty: AtomicBool::new(false),
        }
    }

    /// Queues `item`; gives it back if the inbox is closed.
    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let mut q = self.queue.lock();
        if q.closed {
            return Err(item);
        }
        q.items.push_back(item);
        // Published to a sleeping owner by the swap in `Parker::notify`
        // (idle.rs).
        self.nonempty.store(true, Release);
        Ok(())
    }

    /// Cheap check, without the lock.
    pub(crate) fn is_nonempty(&self) -> bool {
        self.nonempty.load(Acquire)
    }

    /// Moves everything queued into `out`; returns how many.
    pub(crate) fn drain_into(&self, out: &mut impl Extend<T>) -> usize {
        if !self.nonempty.load(Acquire) {
            return 0;
        }
        let mut q = self.queue.lock();
        self.nonempty.store(false, Relaxed);
        let n = q.items.len();
        out.extend(q.items.drain(..));
        n
    }

    /// Takes up to `max` of the items `movable` allows, oldest first,
    /// leaving the others in their order: an idle worker takes the
    /// stealable tasks that wait in a busy (or blocked) worker's inbox.
    pub(crate) fn steal_into(
        &self,
        out: &mut impl Extend<T>,
        max: usize,
        movable: impl Fn(&T) -> bool,
    ) -> usize
    where
        T: Copy,
    {
        if max == 0 || !self.nonempty.load(Acquire) {
            return 0;
        }
        let mut q = self.queue.lock();
        let mut n = 0;
        q.items.retain(|item| {
            if n < max && movable(item) {
                out.extend(std::iter::once(*item));
                n += 1;
                false
            } else {
                true
            }
        });
        if q.items.is_empty() {
            // Under the lock, as every write of the flag: a push that comes
            // later sets it again.
            self.nonempty.store(false, Relaxed);
        }
        n
    }

    /// Refuses every later push and returns what was queued.
    pub(crate) fn close(&self, out: &mut impl Extend<T>) {
        let mut q = self.queue.lock();
        q.closed = true;
        self.nonempty.store(false, Relaxed);
        out.extend(q.items.drain(..));
    }
}
