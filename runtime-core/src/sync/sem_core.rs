//! The fair counting semaphore that `Semaphore`, `Mutex` and `RwLock` are
//! built on, written once over a [`StateCell`] so that the cross-worker
//! and the local flavours share it.
//!
//! Fairness is FIFO, as tokio promises: permits go to the oldest waiter
//! first. When the oldest wants more than is free it takes what is free
//! and keeps its place, so a large request is never starved by a stream of
//! small ones (and a small one never overtakes it). `try_acquire` only
//! succeeds when nobody waits, which is the same rule.
//!
//! Cancellation: an `Acquire` dropped while queued leaves the queue and
//! hands back the permits it had been given so far; one dropped after its
//! permits were granted but before it saw them hands them all back. A
//! dropped acquire never leaks a permit.
//!
//! Why not `async-lock`/`event-listener`: the local flavour must share
//! this logic without atomics, every ready acquire spends the worker's
//! cooperative budget like Sprint's channels do, and the state sits behind
//! the crate's loom facade so the loom models check it.

use super::bounded::WakeList;
use super::state::StateCell;
use super::waitq::WaitQueue;
use crate::coop;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The most permits a semaphore holds (as tokio: `usize::MAX >> 3`).
pub const MAX_PERMITS: usize = usize::MAX >> 3;

/// The semaphore was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the semaphore was closed")]
pub struct AcquireError(());

/// Why `try_acquire` gave no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryAcquireError {
    /// The semaphore was closed.
    #[error("the semaphore was closed")]
    Closed,
    /// Not enough permits are free now (or others wait before this one).
    #[error("no permits are free now")]
    NoPermits,
}

#[derive(Debug)]
pub(crate) struct SemState {
    permits: usize,
    closed: bool,
    /// Each waiter's payload: the permits it still needs.
    queue: WaitQueue<usize>,
}

impl SemState {
    /// Hands free permits to waiters, oldest first.
    fn assign(&mut self, out: &mut WakeList) {
        while let Some(head) = self.queue.front() {
            let need = self.queue.state_mut(head);
            if *need <= self.permits {
                self.permits -= *need;
                *need = 0;
                if let Some(w) = self.queue.unlink(head) {
                    out.push(w);
                }
            } else {
                *need -= self.permits;
                self.permits = 0;
                break;
            }
        }
    }
}

/// The semaphore's state in its cell.
pub(crate) struct SemCore<C> {
    cell: C,
}

impl<C: StateCell<SemState>> SemCore<C> {
    pub(crate) fn new(permits: usize) -> Self {
        assert!(
            permits <= MAX_PERMITS,
            "a semaphore holds at most {MAX_PERMITS} permits; {permits} were asked for"
        );
        SemCore {
            cell: C::new(SemState {
                permits,
                closed: false,
                queue: WaitQueue::default(),
            }),
        }
    }

    pub(crate) fn available(&self) -> usize {
        self.cell.with(|s| s.permits)
    }

    /// Returns `n` permits (a dropped permit, or `add_permits`).
    pub(crate) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut wake = WakeList::default();
        self.cell.with(|s| {
            s.permits = s.permits.saturating_add(n).min(MAX_PERMITS);
            if !s.queue.is_empty() {
                s.assign(&mut wake);
            }
        });
        wake.wake_all();
    }

    pub(crate) fn try_acquire(&self, n: usize) -> Result<(), TryAcquireError> {
        self.cell.with(|s| {
            if s.closed {
                Err(TryAcquireError::Closed)
            } else if s.queue.is_empty() && s.permits >= n {
                s.permits -= n;
                Ok(())
            } else {
                Err(TryAcquireError::NoPermits)
            }
        })
    }

    pub(crate) fn close(&self) {
        let mut wake = WakeList::default();
        self.cell.with(|s| {
            s.closed = true;
            s.queue.unlink_all(&mut wake);
        });
        wake.wake_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.cell.with(|s| s.closed)
    }

    /// A future for `n` permits.
    pub(crate) fn acquire(&self, n: usize) -> Acquire<'_, C> {
        Acquire {
            core: self,
            n,
            key: None,
        }
    }
}

impl<C> fmt::Debug for SemCore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").finish_non_exhaustive()
    }
}

/// Waits for `n` permits; cancel-safe (see the module notes).
pub(crate) struct Acquire<'a, C: StateCell<SemState>> {
    core: &'a SemCore<C>,
    n: usize,
    key: Option<usize>,
}

impl<C: StateCell<SemState>> Future for Acquire<'_, C> {
    type Output = Result<(), AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let coop = std::task::ready!(coop::poll_proceed(cx));
        let n = this.n;
        let key = &mut this.key;
        let r = this.core.cell.with(|s| match *key {
            None if s.closed => Poll::Ready(Err(AcquireError(()))),
            None if s.queue.is_empty() && s.permits >= n => {
                s.permits -= n;
                Poll::Ready(Ok(()))
            }
            None => {
                let mut need = n;
                if s.queue.is_empty() {
                    need -= s.permits;
                    s.permits = 0;
                }
                *key = Some(s.queue.push_back(cx.waker(), need));
                Poll::Pending
            }
            Some(k) if !s.queue.is_linked(k) && *s.queue.state_mut(k) == 0 => {
                s.queue.remove(k);
                *key = None;
                Poll::Ready(Ok(()))
            }
            Some(k) if s.closed => {
                let need = s.queue.remove(k);
                *key = None;
                s.permits += n - need;
                Poll::Ready(Err(AcquireError(())))
            }
            Some(k) => {
                s.queue.set_waker(k, cx.waker());
                Poll::Pending
            }
        });
        if r.is_ready() {
            coop.made_progress();
        }
        r
    }
}

impl<C: StateCell<SemState>> Drop for Acquire<'_, C> {
    fn drop(&mut self) {
        let Some(k) = self.key.take() else { return };
        let mut wake = WakeList::default();
        self.core.cell.with(|s| {
            let need = s.queue.remove(k);
            let got = self.n - need;
            if got > 0 {
                s.permits += got;
                s.assign(&mut wake);
            }
        });
        wake.wake_all();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use crate::sync::Semaphore;
    use loom::future::block_on;
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Waker};

    /// Two threads take the one permit in turn; neither is lost, and the
    /// permit is back at the end.
    #[test]
    fn loom_semaphore_two_acquirers_one_permit() {
        loom::model(|| {
            let sem = Arc::new(Semaphore::new(1));
            let t = {
                let sem = sem.clone();
                loom::thread::spawn(move || {
                    drop(block_on(sem.acquire()).unwrap());
                })
            };
            drop(block_on(sem.acquire()).unwrap());
            t.join().unwrap();
            assert_eq!(sem.available_permits(), 1);
        });
    }

    /// A queued acquire dropped while the holder releases: whether the
    /// permit was handed to it or not, it comes back.
    #[test]
    fn loom_semaphore_dropped_acquire_leaks_nothing() {
        loom::model(|| {
            let sem = Arc::new(Semaphore::new(1));
            let held = sem.try_acquire().unwrap();
            let mut acquire = Box::pin(sem.acquire());
            let mut cx = Context::from_waker(Waker::noop());
            assert!(acquire.as_mut().poll(&mut cx).is_pending());
            let t = {
                let sem = sem.clone();
                loom::thread::spawn(move || sem.close())
            };
            drop(held);
            drop(acquire);
            t.join().unwrap();
            assert_eq!(sem.available_permits(), 1);
        });
    }
}
