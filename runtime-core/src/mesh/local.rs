//! What each worker keeps for the mesh on its own thread: the ports that
//! have something to publish at the end of this turn, and the wakers of
//! the mesh's tasks that wait for its bell.
//!
//! A port (a sender that pushed, a receiver that popped) asks to be
//! deferred the first time it acts in a turn; the worker's maintenance
//! calls [`WorkerMesh::end_turn`], which lets each one publish once (the
//! sender its tails, the receiver its "room" wake-ups). So a burst of sends
//! from many tasks costs one release store per ring per turn. Then the
//! worker answers its bell ([`WorkerMesh::answer`]): every waker registered
//! since the last answer is woken, on this thread, which queues its task
//! without a lock. Everything here is reached only from the worker's
//! thread (the `Core` holds it), so plain `RefCell`s do.

use super::bell::Bell;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::Waker;

/// A port with work left for the end of the turn.
pub(crate) trait TurnEnd {
    /// Publish what this turn did; the port may be deferred again after.
    fn turn_end(&self);
}

/// Where a waiting future's waker sits in a worker's list: which worker's
/// list (its address), the answer it was registered for, and its index,
/// so a future polled again before the bell updates its entry instead of
/// adding one (and a future that moved to another worker adds one there).
#[derive(Debug, Default)]
pub(crate) struct WaitSlot(Cell<Option<(usize, u64, usize)>>);

/// A worker's mesh state; see the module documentation.
#[derive(Default)]
pub(crate) struct WorkerMesh {
    deferred: RefCell<Vec<Rc<dyn TurnEnd>>>,
    /// The deferred list's spare buffer, so turns do not allocate.
    spare: RefCell<Vec<Rc<dyn TurnEnd>>>,
    waiters: RefCell<Vec<Waker>>,
    /// The waiter list's spare buffer.
    spare_waiters: RefCell<Vec<Waker>>,
    /// Counts answers: a [`WaitSlot`] from an earlier one is stale.
    answers: Cell<u64>,
}

impl std::fmt::Debug for WorkerMesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMesh")
            .field("deferred", &self.deferred.borrow().len())
            .field("waiters", &self.waiters.borrow().len())
            .finish()
    }
}

impl WorkerMesh {
    /// `port` publishes at the end of this turn. The caller defers a port
    /// at most once per turn (it keeps a flag its `turn_end` clears).
    pub(crate) fn defer(&self, port: Rc<dyn TurnEnd>) {
        self.deferred.borrow_mut().push(port);
    }

    /// Lets every deferred port publish.
    pub(crate) fn end_turn(&self) {
        if self.deferred.borrow().is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut *self.spare.borrow_mut());
        std::mem::swap(&mut batch, &mut *self.deferred.borrow_mut());
        // Neither list is borrowed while ports run: a port dropped here (its
        // last handle gone) publishes and closes, and may defer nothing.
        for port in batch.drain(..) {
            port.turn_end();
        }
        *self.spare.borrow_mut() = batch;
    }

    /// Registers `waker` to be woken at the next answer of the bell.
    pub(crate) fn wait(&self, waker: &Waker, slot: &WaitSlot) {
        let mut waiters = self.waiters.borrow_mut();
        let here = self as *const WorkerMesh as usize;
        match slot.0.get() {
            Some((list, answer, i)) if list == here && answer == self.answers.get() => {
                if !waiters[i].will_wake(waker) {
                    waiters[i] = waker.clone();
                }
            }
            _ => {
                slot.0.set(Some((here, self.answers.get(), waiters.len())));
                waiters.push(waker.clone());
            }
        }
    }

    /// If `bell` rang, wakes every registered waker; true if it did.
    pub(crate) fn answer(&self, bell: &Bell) -> bool {
        if !bell.answer() {
            return false;
        }
        self.answers.set(self.answers.get().wrapping_add(1));
        let mut woken = std::mem::take(&mut *self.spare_waiters.borrow_mut());
        std::mem::swap(&mut woken, &mut *self.waiters.borrow_mut());
        let any = !woken.is_empty();
        // Not borrowed while the wakers run (a wake only queues a task, but
        // dropping the last waker of a finished task runs its drop code).
        for w in woken.drain(..) {
            w.wake();
        }
        *self.spare_waiters.borrow_mut() = woken;
        any
    }

    /// At shutdown: publish what is deferred (dropping the ports' last
    /// references closes them) and drop every waker.
    pub(crate) fn close(&self) {
        self.end_turn();
        self.answers.set(self.answers.get().wrapping_add(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        drop(waiters);
    }
}
