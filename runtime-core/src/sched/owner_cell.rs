//! The owner-thread cell: state that one worker thread mutates through a
//! shared reference, with its one safety argument written here once.
//!
//! A worker's core (its run queues, owned list, scratch vectors, cell cache
//! and driver) is reached through `&Core` from many places on the worker's
//! thread: the loop, wakers firing there, spawns from inside tasks, cells
//! freed there. None of those can take `&mut Core`, and a `RefCell` would
//! pay a borrow flag on the hot path, so each piece sits in an
//! [`OwnerCell`], whose accessor [`with`](OwnerCell::with) lends `&mut T`
//! to a closure under a contract the caller upholds:
//!
//! 1. **Owner thread.** Only the thread that made the cell calls `with`.
//!    (The cell is `!Sync`, so no two threads reach it at once anyway; the
//!    worker's cells are also never moved to another thread.)
//! 2. **No reentrant borrow.** The closure does not reach the same cell
//!    again: it runs no code that could (no task poll, no user `Drop` that
//!    could get back to this cell). Different cells may nest: a waker run
//!    while the timers' scratch vector is lent queues a task on the run
//!    queue, a different cell.
//!
//! In release builds the cell is an `UnsafeCell` and nothing more: `with`
//! inlines to a plain pointer dereference, with no flag and no atomic.
//! Debug builds and `--cfg loom` check both rules at every call: the
//! calling thread against the one that made the cell, and a borrow flag
//! against reentrancy; a broken rule panics, naming it.
//!
//! Every `unsafe { cell.with(..) }` in the worker says `// SAFETY:` which
//! of its callees could reach the cell again, if any, and why not.

use std::cell::UnsafeCell;

/// A value that only its owner thread mutates, through `&self`. See the
/// module documentation for the contract of [`with`](Self::with).
pub(crate) struct OwnerCell<T> {
    value: UnsafeCell<T>,
    #[cfg(any(debug_assertions, loom))]
    check: check::Check,
}

impl<T> OwnerCell<T> {
    /// A cell owned by the calling thread.
    pub(crate) fn new(value: T) -> OwnerCell<T> {
        OwnerCell {
            value: UnsafeCell::new(value),
            #[cfg(any(debug_assertions, loom))]
            check: check::Check::new(),
        }
    }

    /// Lends the value to `f`.
    ///
    /// # Safety
    /// The caller is on the thread that made this cell, and `f` does not
    /// reach this cell again (module documentation, rules 1 and 2).
    #[inline(always)]
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(any(debug_assertions, loom))]
        let _borrow = self.check.enter();
        // SAFETY: the caller's contract: this thread alone reaches the cell
        // (rule 1), and no other borrow of it is live while `f` runs (rule
        // 2), so this `&mut` is unique for its lifetime.
        f(unsafe { &mut *self.value.get() })
    }
}

// Release builds: the cell is its value, with no flag beside it.
#[cfg(not(any(debug_assertions, loom)))]
const _: () = assert!(std::mem::size_of::<OwnerCell<u64>>() == std::mem::size_of::<u64>());

impl<T> std::fmt::Debug for OwnerCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnerCell { .. }")
    }
}

/// The checks of debug builds and loom models.
#[cfg(any(debug_assertions, loom))]
mod check {
    use std::cell::Cell;

    /// Who may borrow, and whether someone does.
    pub(super) struct Check {
        owner: Mark,
        borrowed: Cell<bool>,
    }

    /// Clears the borrow flag when the borrow ends, unwinding included.
    pub(super) struct Borrow<'a>(&'a Cell<bool>);

    impl Drop for Borrow<'_> {
        fn drop(&mut self) {
            self.0.set(false);
        }
    }

    impl Check {
        pub(super) fn new() -> Check {
            Check {
                owner: this_thread(),
                borrowed: Cell::new(false),
            }
        }

        pub(super) fn enter(&self) -> Borrow<'_> {
            assert!(
                this_thread() == self.owner,
                "OwnerCell borrowed on a thread that does not own it (rule 1)"
            );
            assert!(
                !self.borrowed.replace(true),
                "OwnerCell borrowed again while lent (rule 2: reentrant borrow)"
            );
            Borrow(&self.borrowed)
        }
    }

    /// Names the running thread: in a loom model, loom's thread (its
    /// threads share one OS thread); else the address of a thread-local,
    /// which costs no allocation and no atomic.
    #[cfg(loom)]
    type Mark = loom::thread::ThreadId;

    #[cfg(loom)]
    fn this_thread() -> Mark {
        loom::thread::current().id()
    }

    #[cfg(not(loom))]
    type Mark = usize;

    #[cfg(not(loom))]
    fn this_thread() -> Mark {
        thread_local! {
            static MARK: u8 = const { 0 };
        }
        MARK.with(|m| m as *const u8 as usize)
    }
}

#[cfg(all(test, debug_assertions, not(loom)))]
mod tests {
    use super::OwnerCell;

    #[test]
    fn lends_the_value_and_keeps_changes() {
        let cell = OwnerCell::new(vec![1]);
        // SAFETY: this thread made the cell; the closure does not reach it.
        unsafe { cell.with(|v| v.push(2)) };
        // SAFETY: as above.
        assert_eq!(unsafe { cell.with(|v| v.clone()) }, vec![1, 2]);
    }

    #[test]
    fn nested_borrows_of_different_cells_are_allowed() {
        let a = OwnerCell::new(1);
        let b = OwnerCell::new(2);
        // SAFETY: this thread made both; each closure reaches only the
        // other cell.
        let sum = unsafe { a.with(|x| b.with(|y| *x + *y)) };
        assert_eq!(sum, 3);
    }

    #[test]
    #[should_panic(expected = "rule 2: reentrant borrow")]
    fn a_reentrant_borrow_panics_in_debug_builds() {
        let cell = OwnerCell::new(0);
        // SAFETY: deliberately broken (rule 2) to see the check fire; the
        // check panics before the second `&mut` exists.
        unsafe { cell.with(|_| cell.with(|_| ())) };
    }

    #[test]
    fn the_borrow_ends_when_the_closure_unwinds() {
        let cell = OwnerCell::new(0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: this thread made the cell; the closure does not reach it.
            unsafe { cell.with(|_| panic!("inside")) }
        }));
        assert!(caught.is_err());
        // SAFETY: as above.
        assert_eq!(unsafe { cell.with(|v| *v) }, 0);
    }

    #[test]
    fn a_borrow_on_another_thread_panics_in_debug_builds() {
        let cell = OwnerCell::new(0);
        let r = std::thread::spawn(move || {
            // SAFETY: deliberately broken (rule 1: `cell` was made on the
            // test's thread) to see the check fire; it panics before the
            // `&mut` exists.
            unsafe { cell.with(|v| *v) }
        })
        .join();
        let msg = r.expect_err("the borrow must panic");
        let msg = msg.downcast_ref::<&str>().copied().unwrap_or_default();
        assert!(msg.contains("rule 1"), "{msg}");
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::OwnerCell;

    /// Under loom the owner check tells loom's threads apart, though they
    /// share one OS thread.
    #[test]
    #[should_panic(expected = "rule 1")]
    fn loom_owner_cell_refuses_another_model_thread() {
        loom::model(|| {
            let cell = OwnerCell::new(0);
            // SAFETY: this thread made the cell; the closure does not reach it.
            unsafe { cell.with(|v| *v += 1) };
            let t = loom::thread::spawn(move || {
                // SAFETY: deliberately broken (rule 1); the check panics
                // before the `&mut` exists.
                unsafe { cell.with(|v| *v) }
            });
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        });
    }
}
