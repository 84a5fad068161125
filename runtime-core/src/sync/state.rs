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
