//! A broadcast event: something that happens (a signal arrives, shutdown
//! begins), and every future waiting for it wakes.
//!
//! The event counts its occurrences. A waiter remembers the count when it
//! was made and is ready once the count has moved past it, so an
//! occurrence between making the waiter and polling it is never lost, and
//! any number of waiters, on any threads, see each occurrence. Waiters
//! park their wakers in a slab under a mutex; `fire` bumps the count
//! first and then wakes every parked waker, and a waiter checks the count
//! under the same mutex before parking, so no wake slips between the two.
//! A waiter removes its own slab entry when it completes or is dropped.

use slab::Slab;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Counts occurrences and wakes the waiters of each.
#[derive(Debug)]
pub(crate) struct Event {
    count: AtomicU64,
    waiters: Mutex<Slab<Waker>>,
}

impl Event {
    pub(crate) const fn new() -> Event {
        Event {
            count: AtomicU64::new(0),
            waiters: Mutex::new(Slab::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slab<Waker>> {
        // A waker that panicked in `wake` leaves the slab itself intact.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many times it has happened.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(SeqCst)
    }

    /// It happened: wake every waiter.
    pub(crate) fn fire(&self) {
        self.count.fetch_add(1, SeqCst);
        let wakers: Vec<Waker> = self.lock().iter().map(|(_, w)| w.clone()).collect();
        // Woken outside the lock: a waker may run code that polls a waiter.
        for w in wakers {
            w.wake();
        }
    }

    /// A waiter ready once the count passes `seen`.
    pub(crate) fn waiter(&'static self, seen: u64) -> Waiter {
        Waiter {
            event: self,
            seen,
            key: None,
        }
    }
}

/// Waits for the next occurrence of an [`Event`] after a given count.
#[derive(Debug)]
pub(crate) struct Waiter {
    event: &'static Event,
    seen: u64,
    key: Option<usize>,
}

impl Waiter {
    /// The count this waiter saw happen, once ready.
    pub(crate) fn poll_count(&mut self, cx: &mut Context<'_>) -> Poll<u64> {
        let now = self.event.count();
        if now > self.seen {
            self.forget();
            return Poll::Ready(now);
        }
        let mut waiters = self.event.lock();
        let now = self.event.count();
        if now > self.seen {
            drop(waiters);
            self.forget();
            return Poll::Ready(now);
        }
        match self.key.and_then(|k| waiters.get_mut(k)) {
            Some(w) => w.clone_from(cx.waker()),
            None => self.key = Some(waiters.insert(cx.waker().clone())),
        }
        Poll::Pending
    }

    /// Waits again, for an occurrence after `seen`.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn rearm(&mut self, seen: u64) {
        self.seen = seen;
    }

    fn forget(&mut self) {
        if let Some(k) = self.key.take() {
            self.event.lock().try_remove(k);
        }
    }
}

impl Future for Waiter {
    type Output = u64;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        self.get_mut().poll_count(cx)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn every_waiter_wakes_and_an_early_fire_is_not_lost() {
        static E: Event = Event::new();
        let counts: Vec<Arc<Count>> = (0..3)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let mut ws: Vec<Waiter> = (0..3).map(|_| E.waiter(E.count())).collect();
        for (w, c) in ws.iter_mut().zip(&counts) {
            let waker = Waker::from(c.clone());
            assert!(w.poll_count(&mut Context::from_waker(&waker)).is_pending());
        }
        // Made before the fire, never polled: still sees it.
        let mut late = E.waiter(E.count());
        E.fire();
        for c in &counts {
            assert_eq!(c.0.load(SeqCst), 1);
        }
        let waker = Waker::from(counts[0].clone());
        let mut cx = Context::from_waker(&waker);
        for w in &mut ws {
            assert_eq!(w.poll_count(&mut cx), Poll::Ready(1));
        }
        assert_eq!(late.poll_count(&mut cx), Poll::Ready(1));
        drop(ws);
        assert!(
            E.lock().is_empty(),
            "completed waiters leave no waker behind"
        );
    }

    #[test]
    fn a_dropped_waiter_removes_its_waker() {
        static E: Event = Event::new();
        let c = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(c.clone());
        let mut w = E.waiter(E.count());
        assert!(w.poll_count(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(E.lock().len(), 1);
        drop(w);
        assert!(E.lock().is_empty());
        E.fire();
        assert_eq!(c.0.load(SeqCst), 0);
    }
}
