//! Task-local values: a value set for one task (one future) and visible
//! to everything that future calls while it is polled, wherever it runs.
//!
//! Declared with [`task_local!`](crate::task_local) and set with
//! [`LocalKey::scope`]. The value lives in the scope's future; each poll
//! moves it into a thread-local slot, polls, and moves it back, so a task
//! that moves between workers (at the stealing levels) takes its value
//! with it, and two tasks on one worker never see each other's. Dropping
//! the future drops the inner future inside the scope too.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Declares task-local keys (tokio's `task_local!`).
///
/// ```
/// sprint_core::task_local! {
///     static REQUEST_ID: u64;
/// }
/// # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
/// rt.block_on(REQUEST_ID.scope(7, async {
///     assert_eq!(REQUEST_ID.get(), 7);
///     assert!(sprint_core::spawn(async { REQUEST_ID.try_with(|_| ()) }).await.unwrap().is_err());
/// }));
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $crate::__task_local_key!($(#[$attr])* $vis $name, $t);
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::__task_local_key!($(#[$attr])* $vis $name, $t);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __task_local_key {
    ($(#[$attr:meta])* $vis:vis $name:ident, $t:ty) => {
        $(#[$attr])*
        $vis static $name: $crate::task::LocalKey<$t> = {
            ::std::thread_local! {
                static __SLOT: ::std::cell::RefCell<::std::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            $crate::task::LocalKey::__new(__SLOT)
        };
    };
}

/// A key declared by [`task_local!`](crate::task_local).
pub struct LocalKey<T: 'static> {
    slot: std::thread::LocalKey<RefCell<Option<T>>>,
}

impl<T: 'static> std::fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// The value was read outside any scope of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("task-local value not set: read outside a `scope` or `sync_scope` of its key")]
pub struct AccessError;

/// Moves the value back out of the thread-local slot when dropped, even
/// if the code inside the scope panicked.
struct Swapped<'a, T: 'static> {
    key: &'static LocalKey<T>,
    value: &'a mut Option<T>,
}

impl<T: 'static> Drop for Swapped<'_, T> {
    fn drop(&mut self) {
        self.key
            .slot
            .with(|s| std::mem::swap(&mut *s.borrow_mut(), self.value));
    }
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn __new(slot: std::thread::LocalKey<RefCell<Option<T>>>) -> LocalKey<T> {
        LocalKey { slot }
    }

    /// Runs `f` with `value` in the thread-local slot, then takes it back.
    fn enter<R>(&'static self, value: &mut Option<T>, f: impl FnOnce() -> R) -> R {
        self.slot.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => std::mem::swap(&mut *s, value),
            Err(_) => panic!(
                "cannot enter a task-local scope while its value is borrowed (inside `with` of the same key)"
            ),
        });
        let _back = Swapped { key: self, value };
        f()
    }

    /// `future` with `value` set for it: every poll of it (and what it
    /// calls) sees `value`.
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            key: self,
            value: Some(value),
            future: Some(future),
        }
    }

    /// Runs `f` with `value` set, on this thread, and returns what it
    /// returns.
    pub fn sync_scope<R>(&'static self, value: T, f: impl FnOnce() -> R) -> R {
        let mut value = Some(value);
        self.enter(&mut value, f)
    }

    /// Runs `f` with a reference to the value.
    ///
    /// # Panics
    /// Outside a scope of this key (use [`try_with`](Self::try_with)).
    #[track_caller]
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match self.try_with(f) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs `f` with a reference to the value, or says it is not set.
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, AccessError> {
        self.slot.with(|s| {
            let s = s.borrow();
            s.as_ref().map(f).ok_or(AccessError)
        })
    }

    /// A copy of the value.
    ///
    /// # Panics
    /// Outside a scope of this key.
    #[track_caller]
    pub fn get(&'static self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }
}

/// The future of [`LocalKey::scope`].
pub struct TaskLocalFuture<T: 'static, F> {
    key: &'static LocalKey<T>,
    value: Option<T>,
    /// `None` once dropped inside the scope (see `Drop`).
    future: Option<F>,
}

impl<T: 'static, F> std::fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskLocalFuture").finish_non_exhaustive()
    }
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out
        // of (only dropped in place, in `Drop`), and `value` and `key` are
        // not pinned (`TaskLocalFuture` is `Unpin` only if `F` is, as the
        // compiler derives).
        let this = unsafe { self.get_unchecked_mut() };
        let key = this.key;
        let (value, future) = (&mut this.value, &mut this.future);
        key.enter(value, || match future.as_mut() {
            // SAFETY: pinned projection of the structurally pinned field;
            // `this` itself is pinned.
            Some(f) => unsafe { Pin::new_unchecked(f) }.poll(cx),
            None => panic!("TaskLocalFuture polled after it was dropped"),
        })
    }
}

impl<T: 'static, F> Drop for TaskLocalFuture<T, F> {
    fn drop(&mut self) {
        if self.future.is_some() {
            let (key, value, future) = (self.key, &mut self.value, &mut self.future);
            // Dropped in place (assigning `None` runs its `Drop` where it
            // is), with the value set, as its `Drop` may read it. A slot
            // already borrowed (dropped inside `with`) drops it outside.
            if key.slot.with(|s| s.try_borrow_mut().is_ok()) {
                key.enter(value, || *future = None);
            } else {
                *future = None;
            }
        }
    }
}
