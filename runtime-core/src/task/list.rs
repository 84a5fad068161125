//! The intrusive list of a worker's live tasks, used to cancel them all at
//! shutdown. Linking needs no allocation: the links live in the task header.

use super::raw::{Header, TaskRef};
use std::ptr;

/// Link fields inside every task header.
#[derive(Debug)]
pub(crate) struct Links {
    prev: *const Header,
    next: *const Header,
    pub(crate) linked: bool,
    /// Spawned from a thread that does not own the list: linked by the
    /// owner when the task arrives through the inbox.
    pub(crate) link_on_arrival: bool,
}

impl Links {
    pub(crate) fn new(link_on_arrival: bool) -> Links {
        Links {
            prev: ptr::null(),
            next: ptr::null(),
            linked: false,
            link_on_arrival,
        }
    }
}

/// A doubly linked list of tasks. Whoever owns the list value (one worker
/// thread, or a mutex) is the only one to touch the links of its tasks.
#[derive(Debug)]
pub(crate) struct List {
    head: *const Header,
    len: usize,
}

// SAFETY: the list holds raw pointers to task headers, which are Send; the
// list is only touched by its owner (one worker thread) or under a mutex.
unsafe impl Send for List {}

impl Default for List {
    fn default() -> Self {
        List {
            head: ptr::null(),
            len: 0,
        }
    }
}

impl List {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// # Safety
    /// The caller owns this list and the task is in no list.
    pub(crate) unsafe fn push(&mut self, task: TaskRef) {
        let h = task.as_ptr();
        // SAFETY: the caller owns the list, hence the links of every task in
        // it and of `task`, which is alive (it holds the list reference).
        unsafe {
            let links = &mut *(*h).links.get();
            debug_assert!(!links.linked);
            links.linked = true;
            links.prev = ptr::null();
            links.next = self.head;
            if !self.head.is_null() {
                (*(*self.head).links.get()).prev = h;
            }
        }
        self.head = h;
        self.len += 1;
    }

    /// # Safety
    /// The caller owns this list, and `task` is linked in it or in none.
    pub(crate) unsafe fn remove(&mut self, task: TaskRef) {
        let h = task.as_ptr();
        // SAFETY: as in `push`; neighbours are alive because linked tasks
        // hold their list reference until they are removed.
        unsafe {
            let links = &mut *(*h).links.get();
            if !links.linked {
                return;
            }
            links.linked = false;
            if links.prev.is_null() {
                self.head = links.next;
            } else {
                (*(*links.prev).links.get()).next = links.next;
            }
            if !links.next.is_null() {
                (*(*links.next).links.get()).prev = links.prev;
            }
            links.prev = ptr::null();
            links.next = ptr::null();
        }
        self.len -= 1;
    }

    /// Unlinks and returns the first task.
    pub(crate) fn pop(&mut self) -> Option<TaskRef> {
        let task = TaskRef::from_ptr(self.head)?;
        // SAFETY: the head is linked in this list, which we own (&mut self).
        unsafe { self.remove(task) };
        Some(task)
    }
}
