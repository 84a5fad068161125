//! The transitions of a task's life, non-generic: run, complete, wake,
//! abort, shut down and release.

use super::raw::TaskRef;
use super::state::{Idle, Notify, Run, COMPLETE, JOIN_INTEREST, JOIN_WAKER};
use super::waker;
use crate::sched;
use std::task::{Context, Poll};

/// Runs a task popped from a queue: poll it, or drop it if it was aborted.
pub(crate) fn run(task: TaskRef) {
    let header = task.header();
    match header.state.transition_to_running() {
        Run::Skip => return,
        Run::Cancel => return cancel_and_complete(task),
        Run::Poll => {}
    }
    let waker = waker::borrowed(task);
    let mut cx = Context::from_waker(&waker);
    // SAFETY: we hold RUNNING, so the future is ours to poll.
    match unsafe { (header.vtable.poll)(task.raw(), &mut cx) } {
        Poll::Ready(()) => complete(task),
        Poll::Pending => match header.state.transition_to_idle() {
            Idle::Ok => {}
            Idle::Notified => sched::schedule(task),
            Idle::Cancelled => cancel_and_complete(task),
        },
    }
}

/// Drops the future of a task whose RUNNING bit the caller holds.
fn cancel_and_complete(task: TaskRef) {
    // SAFETY: the caller holds RUNNING.
    unsafe { (task.header().vtable.drop_future)(task.raw()) };
    complete(task);
}

/// Shutdown: drop the future of any task that is not running.
pub(crate) fn shutdown(task: TaskRef) {
    if task.header().state.transition_to_shutdown() {
        cancel_and_complete(task);
    }
}

/// The stage now holds the output: publish it, wake the joiner, leave the
/// owned list and drop the list's reference.
fn complete(task: TaskRef) {
    let header = task.header();
    let prev = header.state.transition_to_complete();
    if !prev.has(JOIN_INTEREST) {
        // SAFETY: no JoinHandle: the output is ours to drop.
        unsafe { (header.vtable.drop_stage)(task.raw()) };
    } else if prev.has(JOIN_WAKER) {
        // SAFETY: JOIN_WAKER gives the slot to the task side, and the
        // JoinHandle never writes it once COMPLETE is set.
        if let Some(w) = unsafe { &*header.join_waker.get() } {
            w.wake_by_ref();
        }
    }
    sched::release(task);
    drop_reference(task);
}

/// A waker fired: queue the task if it was idle.
pub(crate) fn wake_by_ref(task: TaskRef) {
    if task.header().state.transition_to_notified() == Notify::Schedule {
        sched::schedule(task);
    }
}

/// abort(): cancel the task; its owner drops the future.
pub(crate) fn abort(task: TaskRef) {
    if task.header().state.transition_to_cancelled() == Notify::Schedule {
        sched::schedule(task);
    }
}

pub(crate) fn is_complete(task: TaskRef) -> bool {
    task.header().state.load().has(COMPLETE)
}

/// Drops one reference; frees the cell with the last.
pub(crate) fn drop_reference(task: TaskRef) {
    if task.header().state.ref_dec(1) {
        // SAFETY: that was the last reference (state.rs: only complete
        // tasks can lose their last one), so nothing else reaches the cell.
        unsafe { (task.header().vtable.dealloc)(task.raw()) };
    }
}
