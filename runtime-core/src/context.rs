//! Which runtime a non-worker thread has entered (inside `block_on`, or
//! with `Runtime::enter`), and the runtime of the current thread, worker
//! or not.

use crate::sched::{self, worker::WorkerShared, Shared};
use std::sync::Arc;

use std::cell::{Cell, RefCell};

thread_local! {
    static ENTERED: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    /// This thread is inside `block_on` (which must not nest).
    static IN_BLOCK_ON: Cell<bool> = const { Cell::new(false) };
}

/// Puts back the runtime entered before (and, for `block_on`, clears the
/// flag) when dropped.
pub(crate) struct Enter {
    prev: Option<Arc<Shared>>,
    block_on: bool,
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        ENTERED.with(|e| *e.borrow_mut() = prev);
        if self.block_on {
            IN_BLOCK_ON.with(|b| b.set(false));
        }
    }
}

/// Enters `shared` for a `block_on` on this thread.
///
/// # Panics
/// If this thread is already inside `block_on`.
#[track_caller]
pub(crate) fn enter(shared: Arc<Shared>) -> Enter {
    if IN_BLOCK_ON.with(|b| b.replace(true)) {
        panic!("Runtime::block_on called inside another block_on on the same thread; use .await instead");
    }
    let prev = ENTERED.with(|e| e.borrow_mut().replace(shared));
    Enter {
        prev,
        block_on: true,
    }
}

/// Makes `shared` this thread's runtime until the guard drops (the one
/// entered before comes back then); guards may nest.
pub(crate) fn enter_runtime(shared: Arc<Shared>) -> Enter {
    let prev = ENTERED.with(|e| e.borrow_mut().replace(shared));
    Enter {
        prev,
        block_on: false,
    }
}

/// The runtime of this thread.
pub(crate) fn current() -> Option<Arc<Shared>> {
    sched::with_core(|c| c.map(|c| c.rt.clone())).or_else(|| ENTERED.with(|e| e.borrow().clone()))
}

/// Runs `f` with the runtime of this thread, without cloning it.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    let mut f = Some(f);
    let r =
        sched::with_core(|c| c.map(|c| (f.take().unwrap_or_else(|| unreachable!()))(Some(&c.rt))));
    match r {
        Some(r) => r,
        None => {
            let f = f.unwrap_or_else(|| unreachable!());
            ENTERED.with(|e| f(e.borrow().as_ref()))
        }
    }
}

/// The worker whose timer queue a timer polled here should join, and
/// whether that worker is this thread.
#[track_caller]
pub(crate) fn timer_worker() -> (Arc<WorkerShared>, bool) {
    if let Some(w) = sched::with_core(|c| c.map(|c| c.shared.clone())) {
        return (w, true);
    }
    match ENTERED.with(|e| e.borrow().as_ref().map(|s| s.workers[0].clone())) {
        Some(w) => (w, false),
        None => panic!("a Sprint timer was polled outside a Sprint runtime: await it in a task, in Runtime::block_on, or after Runtime::enter"),
    }
}
