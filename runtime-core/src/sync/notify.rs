//! `Notify`: wakes one waiting task (`notify_one`) or all of them
//! (`notify_waiters`), with tokio's semantics, so it can build other
//! primitives (`watch` is one):
//!
//! - `notify_one` with nobody waiting stores one permit; the next
//!   `notified().await` consumes it and returns at once. Permits do not
//!   add up: many calls store one.
//! - `notify_waiters` wakes every `Notified` future that exists at the
//!   time of the call, even one not yet polled (each future records the
//!   count of `notify_waiters` calls when it is created); it stores no
//!   permit.
//! - A `Notified` chosen by `notify_one` and dropped before it saw the
//!   wake passes the notification on, so it is never lost.
//!
//! The state (permit, call count, FIFO of waiters) is written once over a
//! [`StateCell`], for the cross-worker and the local flavours.
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     let n = std::sync::Arc::new(sprint_core::sync::Notify::new());
//!     let n2 = n.clone();
//!     let t = sprint_core::spawn(async move { n2.notified().await });
//!     n.notify_one();
//!     t.await.unwrap();
//! });
//! ```

use super::bounded::WakeList;
use super::state::StateCell;
use super::waitq::WaitQueue;
use std::fmt;
use std::task::{Context, Poll};

#[derive(Debug, Default)]
pub(crate) struct NotifyState {
    permit: bool,
    /// Calls of `notify_waiters` so far.
    calls: u64,
    /// Each waiter's payload: chosen by `notify_one`.
    waiters: WaitQueue<bool>,
}

impl NotifyState {
    fn notify_one(&mut self) -> Option<std::task::Waker> {
        match self.waiters.front() {
            Some(k) => {
                *self.waiters.state_mut(k) = true;
                self.waiters.unlink(k)
            }
            None => {
                self.permit = true;
                None
            }
        }
    }
}

pub(crate) struct NotifyCore<C> {
    cell: C,
}

impl<C: StateCell<NotifyState>> NotifyCore<C> {
    pub(crate) fn new() -> Self {
        NotifyCore {
            cell: C::new(NotifyState::default()),
        }
    }

    pub(crate) fn notify_one(&self) {
        if let Some(w) = self.cell.with(NotifyState::notify_one) {
            w.wake();
        }
    }

    pub(crate) fn notify_waiters(&self) {
        let mut wake = WakeList::default();
        self.cell.with(|s| {
            s.calls += 1;
            s.waiters.unlink_all(&mut wake);
        });
        wake.wake_all();
    }

    pub(crate) fn notified(&self) -> NotifiedCore<'_, C> {
        NotifiedCore {
            core: self,
            calls: self.cell.with(|s| s.calls),
            key: None,
            done: false,
        }
    }
}

impl<C> fmt::Debug for NotifyCore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify").finish_non_exhaustive()
    }
}

/// The state of one `notified()` future.
pub(crate) struct NotifiedCore<'a, C: StateCell<NotifyState>> {
    core: &'a NotifyCore<C>,
    calls: u64,
    key: Option<usize>,
    done: bool,
}

impl<C: StateCell<NotifyState>> NotifiedCore<'_, C> {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done {
            return Poll::Ready(());
        }
        let (calls, key) = (self.calls, &mut self.key);
        let r = self.core.cell.with(|s| match *key {
            None if s.calls != calls => Poll::Ready(()),
            None if s.permit => {
                s.permit = false;
                Poll::Ready(())
            }
            None => {
                *key = Some(s.waiters.push_back(cx.waker(), false));
                Poll::Pending
            }
            Some(k) if !s.waiters.is_linked(k) => {
                s.waiters.remove(k);
                *key = None;
                Poll::Ready(())
            }
            Some(k) => {
                s.waiters.set_waker(k, cx.waker());
                Poll::Pending
            }
        });
        self.done = r.is_ready();
        r
    }

    /// Registers the future for `notify_one` without a waker (the first
    /// poll sets one); true when a notification already reached it, so
    /// the next poll completes.
    pub(crate) fn enable(&mut self) -> bool {
        if self.done {
            return true;
        }
        let (calls, key) = (self.calls, &mut self.key);
        let notified = self.core.cell.with(|s| match *key {
            None if s.calls != calls => true,
            None if s.permit => {
                s.permit = false;
                true
            }
            None => {
                *key = Some(s.waiters.push_back(std::task::Waker::noop(), false));
                false
            }
            Some(k) if !s.waiters.is_linked(k) => {
                // Chosen: the entry goes now, so a drop has nothing to
                // pass on.
                s.waiters.remove(k);
                *key = None;
                true
            }
            Some(_) => false,
        });
        self.done = notified;
        notified
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<C: StateCell<NotifyState>> Drop for NotifiedCore<'_, C> {
    fn drop(&mut self) {
        let Some(k) = self.key.take() else { return };
        let pass_on = self.core.cell.with(|s| {
            let linked = s.waiters.is_linked(k);
            let chosen_by_one = s.waiters.remove(k);
            if !linked && chosen_by_one {
                s.notify_one()
            } else {
                None
            }
        });
        if let Some(w) = pass_on {
            w.wake();
        }
    }
}

macro_rules! notify_surface {
    ($cell:ty, $marker:ty) => {
        /// Wakes waiting tasks; see the module notes.
        pub struct Notify {
            core: $crate::sync::notify::NotifyCore<$cell>,
            _marker: std::marker::PhantomData<$marker>,
        }

        /// The future of [`Notify::notified`]. Fused: after it completed,
        /// `futures::select!` skips it.
        #[must_use = "futures do nothing unless awaited"]
        pub struct Notified<'a> {
            inner: $crate::sync::notify::NotifiedCore<'a, $cell>,
        }

        impl Notify {
            /// A `Notify` with no stored permit.
            pub fn new() -> Notify {
                Notify {
                    core: $crate::sync::notify::NotifyCore::new(),
                    _marker: std::marker::PhantomData,
                }
            }

            /// Wakes the oldest waiter, or stores one permit for the next.
            pub fn notify_one(&self) {
                self.core.notify_one()
            }

            /// Wakes every `Notified` that exists now; stores no permit.
            pub fn notify_waiters(&self) {
                self.core.notify_waiters()
            }

            /// A future that completes on the next notification meant for
            /// it. Creating it before checking a condition closes the race
            /// with `notify_waiters`.
            pub fn notified(&self) -> Notified<'_> {
                Notified {
                    inner: self.core.notified(),
                }
            }
        }

        impl Notified<'_> {
            /// Puts this future in line for [`Notify::notify_one`] now,
            /// before it is first polled, as tokio's `Notified::enable`:
            /// a `notify_one` from here on reaches it (or the permit
            /// stored before is taken now) instead of storing a permit
            /// for some other future. Returns true when it has already
            /// been notified, so the next poll completes. (A
            /// `notify_waiters` reaches every `Notified` from its
            /// creation, enabled or not.)
            ///
            /// Check the condition after `enable` and before the await;
            /// then neither kind of wake-up can slip between the check
            /// and the wait.
            pub fn enable(self: std::pin::Pin<&mut Self>) -> bool {
                self.get_mut().inner.enable()
            }
        }

        impl Default for Notify {
            fn default() -> Self {
                Notify::new()
            }
        }

        impl std::future::Future for Notified<'_> {
            type Output = ();
            fn poll(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<()> {
                self.get_mut().inner.poll(cx)
            }
        }

        impl futures_core::future::FusedFuture for Notified<'_> {
            fn is_terminated(&self) -> bool {
                self.inner.is_terminated()
            }
        }

        impl std::fmt::Debug for Notify {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Notify").finish_non_exhaustive()
            }
        }

        impl std::fmt::Debug for Notified<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Notified").finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use notify_surface;

notify_surface!(crate::loom::sync::Mutex<NotifyState>, ());

#[cfg(all(test, loom))]
mod loom_tests {
    use super::Notify;
    use loom::future::block_on;
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Waker};

    /// `notify_one` racing a waiter: the wake or the stored permit
    /// reaches it.
    #[test]
    fn loom_notify_one_is_never_lost() {
        loom::model(|| {
            let n = Arc::new(Notify::new());
            let t = {
                let n = n.clone();
                loom::thread::spawn(move || n.notify_one())
            };
            block_on(n.notified());
            t.join().unwrap();
        });
    }

    /// `notify_waiters` wakes a future created before it, polled or not.
    #[test]
    fn loom_notify_waiters_reaches_a_future_made_before() {
        loom::model(|| {
            let n = Arc::new(Notify::new());
            let fut = n.notified();
            let t = {
                let n = n.clone();
                loom::thread::spawn(move || n.notify_waiters())
            };
            block_on(fut);
            t.join().unwrap();
        });
    }

    /// `enable` racing `notify_one`: whichever comes first, the enabled
    /// future gets the notification (enable takes the stored permit, or
    /// `notify_one` picks the queued future), and a future made later
    /// finds no permit left.
    #[test]
    fn loom_notify_enable_races_notify_one() {
        loom::model(|| {
            let n = Arc::new(Notify::new());
            let t = {
                let n = n.clone();
                loom::thread::spawn(move || n.notify_one())
            };
            let mut first = Box::pin(n.notified());
            first.as_mut().enable();
            t.join().unwrap();
            let mut cx = Context::from_waker(Waker::noop());
            assert!(first.as_mut().poll(&mut cx).is_ready());
            let mut later = Box::pin(n.notified());
            assert!(later.as_mut().poll(&mut cx).is_pending());
        });
    }

    /// A waiter chosen by `notify_one` and dropped passes the wake on to
    /// the next waiter.
    #[test]
    fn loom_notify_dropped_waiter_passes_the_wake_on() {
        loom::model(|| {
            let n = Arc::new(Notify::new());
            let mut cx = Context::from_waker(Waker::noop());
            let mut first = Box::pin(n.notified());
            let mut second = Box::pin(n.notified());
            assert!(first.as_mut().poll(&mut cx).is_pending());
            assert!(second.as_mut().poll(&mut cx).is_pending());
            let t = {
                let n = n.clone();
                loom::thread::spawn(move || n.notify_one())
            };
            drop(first);
            block_on(second);
            t.join().unwrap();
        });
    }
}
