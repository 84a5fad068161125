//! The logic of a bounded queue with waiting senders and one receiver,
//! free of locking: the `Send` channel keeps it in a mutex, the local one
//! in a `RefCell`. The unbounded channel is the same queue with a
//! capacity it never reaches.
//!
//! A reserved slot (`Sender::reserve`) counts as taken until its permit
//! sends or is dropped; senders waiting in `closed()` have a list of their
//! own, woken only when the receiver leaves.

use slab::Slab;
use std::collections::VecDeque;
use std::task::{Poll, Waker};

/// Wakers collected under a lock and woken after it: up to four inline,
/// so a pop that frees a slot for a waiting sender does not allocate.
#[derive(Debug, Default)]
pub(crate) struct WakeList {
    inline: [Option<Waker>; 4],
    more: Vec<Waker>,
}

impl WakeList {
    pub(crate) fn push(&mut self, w: Waker) {
        match self.inline.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(w),
            None => self.more.push(w),
        }
    }

    pub(crate) fn wake_all(self) {
        // `push` fills the inline slots in order: the first empty one ends
        // them, and `more` is used only once all four are taken. Most
        // lists are empty; they return after one test.
        if self.inline[0].is_none() {
            // Nothing to wake and nothing owned (`more` never allocated):
            // skip the drop glue of four empty slots and an empty Vec.
            debug_assert_eq!(self.more.capacity(), 0);
            std::mem::forget(self);
            return;
        }
        for w in self.inline.into_iter().map_while(|w| w) {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
    }
}

#[derive(Debug)]
pub(crate) struct Bounded<T> {
    queue: VecDeque<T>,
    cap: usize,
    rx_waker: Option<Waker>,
    waiters: Slab<Option<Waker>>,
    senders: usize,
    rx_open: bool,
    /// Slots promised to permits that have not sent yet.
    reserved: usize,
    /// Senders waiting in `closed()`.
    closed_waiters: Slab<Option<Waker>>,
}

/// A send that could not complete now.
pub(crate) enum Refused<T> {
    Full(T),
    Closed(T),
}

impl<T> Bounded<T> {
    pub(crate) fn new(cap: usize) -> Bounded<T> {
        let cap = cap.max(1);
        Bounded {
            queue: VecDeque::with_capacity(cap.min(4096)),
            cap,
            rx_waker: None,
            waiters: Slab::new(),
            senders: 1,
            rx_open: true,
            reserved: 0,
            closed_waiters: Slab::new(),
        }
    }

    /// A queue that is never full.
    pub(crate) fn unbounded() -> Bounded<T> {
        Bounded {
            queue: VecDeque::new(),
            ..Bounded::new(usize::MAX)
        }
    }

    fn is_full(&self) -> bool {
        self.queue.len() + self.reserved >= self.cap
    }

    /// Promises one slot to a permit; `Err(true)` when the receiver is
    /// gone, `Err(false)` when full.
    pub(crate) fn try_reserve(&mut self) -> Result<(), bool> {
        if !self.rx_open {
            return Err(true);
        }
        if self.is_full() {
            return Err(false);
        }
        self.reserved += 1;
        Ok(())
    }

    /// A permit sends into its slot: the receiver's waker, or the value
    /// back if the receiver left meanwhile.
    pub(crate) fn push_reserved(&mut self, v: T) -> Result<Option<Waker>, T> {
        self.reserved -= 1;
        if !self.rx_open {
            return Err(v);
        }
        self.queue.push_back(v);
        Ok(self.rx_waker.take())
    }

    /// A permit was dropped unused: its slot is free again.
    pub(crate) fn unreserve(&mut self, wake: &mut WakeList) {
        self.reserved -= 1;
        self.take_waiters(wake);
    }

    /// Ready once the receiver is gone; otherwise registers `waker`.
    pub(crate) fn poll_closed(&mut self, key: &mut Option<usize>, waker: &Waker) -> Poll<()> {
        if !self.rx_open {
            self.forget_closed(key);
            return Poll::Ready(());
        }
        match key.and_then(|k| self.closed_waiters.get_mut(k)) {
            Some(slot) => *slot = Some(waker.clone()),
            None => *key = Some(self.closed_waiters.insert(Some(waker.clone()))),
        }
        Poll::Pending
    }

    pub(crate) fn forget_closed(&mut self, key: &mut Option<usize>) {
        if let Some(k) = key.take() {
            self.closed_waiters.try_remove(k);
        }
    }

    /// Moves up to `limit` values into `buf`; `Ready(0)` when closed and
    /// empty (or `limit` is 0).
    pub(crate) fn poll_pop_many(
        &mut self,
        waker: &Waker,
        buf: &mut Vec<T>,
        limit: usize,
        wake: &mut WakeList,
    ) -> Poll<usize> {
        if limit == 0 {
            return Poll::Ready(0);
        }
        if !self.queue.is_empty() {
            let n = limit.min(self.queue.len());
            buf.extend(self.queue.drain(..n));
            self.take_waiters(wake);
            return Poll::Ready(n);
        }
        match self.poll_pop(Some(waker), wake) {
            Poll::Ready(_) => Poll::Ready(0),
            Poll::Pending => Poll::Pending,
        }
    }

    pub(crate) fn try_push(&mut self, v: T) -> Result<Option<Waker>, Refused<T>> {
        if !self.rx_open {
            return Err(Refused::Closed(v));
        }
        if self.is_full() {
            return Err(Refused::Full(v));
        }
        self.queue.push_back(v);
        Ok(self.rx_waker.take())
    }

    /// Registers (or refreshes) a waiting sender's waker.
    pub(crate) fn wait(&mut self, key: &mut Option<usize>, waker: &Waker) {
        match key {
            Some(k) => match self.waiters.get_mut(*k) {
                Some(Some(w)) if w.will_wake(waker) => {}
                Some(slot) => *slot = Some(waker.clone()),
                None => *key = Some(self.waiters.insert(Some(waker.clone()))),
            },
            None => *key = Some(self.waiters.insert(Some(waker.clone()))),
        }
    }

    pub(crate) fn forget(&mut self, key: &mut Option<usize>) {
        if let Some(k) = key.take() {
            self.waiters.try_remove(k);
        }
    }

    /// Takes the wakers of every waiting sender (a slot freed, or the
    /// receiver left). Their keys stay registered until they finish.
    fn take_waiters(&mut self, out: &mut WakeList) {
        for (_, w) in self.waiters.iter_mut() {
            if let Some(w) = w.take() {
                out.push(w);
            }
        }
    }

    /// Pops a value; `Ready(None)` when empty and every sender is gone.
    pub(crate) fn poll_pop(
        &mut self,
        waker: Option<&Waker>,
        wake: &mut WakeList,
    ) -> Poll<Option<T>> {
        if let Some(v) = self.queue.pop_front() {
            self.take_waiters(wake);
            return Poll::Ready(Some(v));
        }
        if self.senders == 0 {
            return Poll::Ready(None);
        }
        if let Some(w) = waker {
            match &self.rx_waker {
                Some(old) if old.will_wake(w) => {}
                _ => self.rx_waker = Some(w.clone()),
            }
        }
        Poll::Pending
    }

    pub(crate) fn add_sender(&mut self) {
        self.senders += 1;
    }

    /// A sender left; the receiver's waker if it was the last.
    pub(crate) fn drop_sender(&mut self) -> Option<Waker> {
        self.senders -= 1;
        if self.senders == 0 {
            self.rx_waker.take()
        } else {
            None
        }
    }

    /// The receiver left (or closed): refuse further sends.
    pub(crate) fn close_rx(&mut self, wake: &mut WakeList) {
        self.rx_open = false;
        self.take_waiters(wake);
        for (_, w) in self.closed_waiters.iter_mut() {
            if let Some(w) = w.take() {
                wake.push(w);
            }
        }
    }

    pub(crate) fn drain(&mut self) -> VecDeque<T> {
        std::mem::take(&mut self.queue)
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    pub(crate) fn is_closed(&self) -> bool {
        !self.rx_open
    }
}
