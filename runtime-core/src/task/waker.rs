//! The waker of a task: its data pointer is the task header.

use super::harness;
use super::raw::{Header, TaskRef};
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn task(data: *const ()) -> TaskRef {
    // SAFETY: every RawWaker built here carries a non-null header pointer.
    TaskRef::from_ptr(data as *const Header).unwrap_or_else(|| unreachable!())
}

unsafe fn clone(data: *const ()) -> RawWaker {
    task(data).header().state.ref_inc();
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    let t = task(data);
    harness::wake_by_ref(t);
    harness::drop_reference(t);
}

unsafe fn wake_by_ref(data: *const ()) {
    harness::wake_by_ref(task(data));
}

unsafe fn drop_waker(data: *const ()) {
    harness::drop_reference(task(data));
}

/// A waker borrowed for one poll: built without touching the count, and
/// never dropped (ManuallyDrop), so that a poll costs no atomic operation.
pub(crate) fn borrowed(task: TaskRef) -> ManuallyDrop<Waker> {
    let raw = RawWaker::new(task.as_ptr() as *const (), &VTABLE);
    // SAFETY: the vtable's functions uphold RawWaker's contract for a
    // header pointer, and the caller keeps the task alive (it holds
    // RUNNING) for as long as the borrowed waker is used; clones take their
    // own reference.
    ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
}

/// The header behind a waker, if it is one of ours.
pub(crate) fn header_of(waker: &Waker) -> Option<NonNull<Header>> {
    if std::ptr::eq(waker.vtable(), &VTABLE) {
        NonNull::new(waker.data() as *mut Header)
    } else {
        None
    }
}
