//! Which runtime a non-worker thread has entered (inside `block_on`),
//! and the runtime of the current thread, worker or not.

use crate::sched::{self, worker::WorkerShared, Shared};
use std::sync::Arc;

use std::cell::RefCell;

thread_local! {
    static ENTERED: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
}

pub(crate) struct Enter(Option<Arc<Shared>>);

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.0.take();
        ENTERED.with(|e| *e.borrow_mut() = prev);
    }
}

/// # Panics
/// If this thread is already inside `block_on`.
#[track_caller]
pub(crate) fn enter(shared: Arc<Shared>) -> Enter {
    let prev = ENTERED.with(|e| e.borrow_mut().replace(shared));
    if prev.is_some() {
        ENTERED.with(|e| *e.borrow_mut() = prev);
        panic!("Runtime::block_on called inside another block_on on the same thread; use .await instead");
    }
    Enter(None)
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
        None => panic!("a Sprint timer was polled outside a Sprint runtime: await it in a task or in Runtime::block_on"),
    }
}
