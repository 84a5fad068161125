//! Where a primitive keeps its state: behind a mutex for the cross-worker
//! flavour, in a `RefCell` for the local one. The primitives' logic is
//! written once over [`StateCell`]; each flavour picks the cell.
//!
//! The mutex comes from the crate's loom facade, so `--cfg loom` model
//! checks the cross-worker flavour.

use crate::loom::sync::Mutex;
use std::cell::RefCell;

/// A cell that hands out `&mut S` for the length of a closure. The closure
/// never awaits, so neither cell is held across a suspension.
pub(crate) trait StateCell<S> {
    fn new(state: S) -> Self;
    fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R;
}

impl<S> StateCell<S> for Mutex<S> {
    fn new(state: S) -> Self {
        Mutex::new(state)
    }

    fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.lock())
    }
}

impl<S> StateCell<S> for RefCell<S> {
    fn new(state: S) -> Self {
        RefCell::new(state)
    }

    fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

/// A `RefCell` under the names the channels call on their lock (`lock`,
/// `read`, `write`), so `watch` and `broadcast` stamp their local flavour
/// from the same code. A borrow is only ever held inside one call, except
/// by a `watch` `Ref` the user keeps; a conflicting borrow (where the
/// cross-worker lock would deadlock) panics with a message naming it.
#[derive(Debug)]
pub(crate) struct LocalLock<T>(RefCell<T>);

/// The read guard of a [`LocalLock`].
pub(crate) type LocalRef<'a, T> = std::cell::Ref<'a, T>;

const IN_USE: &str = "a local channel was used while borrowed: a `Ref` from `borrow()` is \
                      still alive (drop it before sending, and never keep it across an await)";

impl<T> LocalLock<T> {
    pub(crate) fn new(value: T) -> Self {
        LocalLock(RefCell::new(value))
    }

    pub(crate) fn read(&self) -> std::cell::Ref<'_, T> {
        self.0.try_borrow().expect(IN_USE)
    }

    pub(crate) fn write(&self) -> std::cell::RefMut<'_, T> {
        self.0.try_borrow_mut().expect(IN_USE)
    }

    pub(crate) fn lock(&self) -> std::cell::RefMut<'_, T> {
        self.write()
    }
}
