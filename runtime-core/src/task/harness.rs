//! The transitions of a task's life, non-generic: run, complete, wake,
//! abort, shut down and release. Stealable tasks go through the atomic
//! protocol; pinned tasks through their owner-local flags (state.rs).

use super::raw::{TaskRef, L_NOTIFIED, L_QUEUED, L_RUNNING};
use super::state::{Idle, Notify, Run, CANCELLED, COMPLETE, JOIN_INTEREST, JOIN_WAKER};
use super::waker;
use crate::sched::{self, worker::Core};
use std::task::Context;

/// Runs a task popped from a queue: poll it, or drop it if it was aborted.
/// A pinned task is only ever run by its owner. `after_poll` runs right
/// after the future's poll returns, while the task is still alive (the
/// worker times the poll and names a stall there).
#[inline]
pub(crate) fn run(task: TaskRef, after_poll: impl FnOnce(&super::raw::Header)) {
    let header = task.header();
    if header.stealable {
        match header.state.transition_to_running() {
            Run::Skip => return,
            Run::Cancel => return cancel_and_complete(task),
            Run::Poll => {}
        }
    } else {
        header.local.set(L_RUNNING);
        let s = header.state.load();
        if s.has(COMPLETE) {
            header.local.set(0);
            return;
        }
        if s.has(CANCELLED) {
            return cancel_and_complete(task);
        }
    }
    let waker = waker::borrowed(task);
    let mut cx = Context::from_waker(&waker);
    // SAFETY: we hold RUNNING (atomic or local), so the future is ours.
    let ready = unsafe { (header.vtable.poll)(task.raw(), &mut cx) }.is_ready();
    after_poll(header);
    if ready {
        return complete(task);
    }
    if header.stealable {
        match header.state.transition_to_idle() {
            Idle::Ok => {}
            Idle::Notified => sched::schedule(task),
            Idle::Cancelled => cancel_and_complete(task),
        }
    } else if header.state.load().has(CANCELLED) {
        cancel_and_complete(task);
    } else if header.local.get() & L_NOTIFIED != 0 {
        header.local.set(L_QUEUED);
        sched::requeue_pinned(task);
    } else {
        header.local.set(0);
    }
}

/// Drops the future of a task whose RUNNING bit the caller holds.
fn cancel_and_complete(task: TaskRef) {
    // SAFETY: the caller holds RUNNING.
    unsafe { (task.header().vtable.drop_future)(task.raw()) };
    complete(task);
}

/// Shutdown: drop the future of a task that is not running. For a pinned
/// task, call it on the owner's thread (or where nothing else can reach it).
pub(crate) fn shutdown(task: TaskRef) {
    let header = task.header();
    if header.stealable {
        if header.state.transition_to_shutdown() {
            cancel_and_complete(task);
        }
        return;
    }
    if header.local.get() & L_RUNNING != 0 || header.state.load().has(COMPLETE) {
        return;
    }
    header.local.set(L_RUNNING);
    header.state.set_cancelled();
    cancel_and_complete(task);
}

/// The stage now holds the output: leave the owned list, publish, wake
/// the joiner, and drop the list's reference.
fn complete(task: TaskRef) {
    let header = task.header();
    header.local.set(0);
    sched::release(task);
    let (prev, released) = header.state.transition_to_complete();
    if released {
        // A JoinHandle without waker owns the output now, and the list's
        // reference is gone: the task may already be freed.
        return;
    }
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
    drop_reference(task);
}

/// A wake of a pinned task on its owner's thread: no atomic operation.
pub(crate) fn wake_local(core: &Core, task: TaskRef) {
    let header = task.header();
    let l = header.local.get();
    if l & L_QUEUED != 0 || header.state.load().has(COMPLETE) {
        return;
    }
    if l & L_RUNNING != 0 {
        header.local.set(l | L_NOTIFIED);
        return;
    }
    header.local.set(L_QUEUED);
    core.push_local(task);
}

/// A waker fired: queue the task if it was idle.
pub(crate) fn wake_by_ref(task: TaskRef) {
    let header = task.header();
    if header.stealable {
        if header.state.transition_to_notified() == Notify::Schedule {
            sched::schedule(task);
        }
    } else {
        sched::wake_pinned(task);
    }
}

/// abort(): cancel the task; its owner drops the future.
pub(crate) fn abort(task: TaskRef) {
    let header = task.header();
    if header.stealable {
        if header.state.transition_to_cancelled() == Notify::Schedule {
            sched::schedule(task);
        }
    } else if header.state.set_cancelled() {
        sched::wake_pinned(task);
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
