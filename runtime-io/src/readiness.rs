//! Readiness of one registered socket, as the driver reports it.
//!
//! The word holds the ready bits and a tick that each dispatch advances.
//! An operation that hits `WouldBlock` clears readiness only if no event
//! arrived since it observed it (same tick), so an edge that lands between
//! the failed read and the clear is never lost (epoll is edge-triggered
//! here).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::task::{Context, Poll, Waker};

pub(crate) const READABLE: usize = 1;
pub(crate) const WRITABLE: usize = 2;
pub(crate) const READ_CLOSED: usize = 4;
pub(crate) const WRITE_CLOSED: usize = 8;
const BITS: usize = 0xff;
const TICK_ONE: usize = 0x100;

/// Which way an operation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED,
            Direction::Write => WRITABLE | WRITE_CLOSED,
        }
    }
}

/// What a `poll_ready` saw, to clear later.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyEvent {
    word: usize,
    dir: Direction,
}

#[derive(Debug, Default)]
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    waiters: Mutex<[Option<Waker>; 2]>,
}

impl ScheduledIo {
    /// The driver saw `bits`: record them and wake who waits for them.
    pub(crate) fn dispatch(&self, bits: usize) {
        let _ = self.readiness.fetch_update(AcqRel, Acquire, |w| {
            Some(((w & !BITS) + TICK_ONE) | (w & BITS) | bits)
        });
        let mut wake: [Option<Waker>; 2] = [None, None];
        {
            let mut waiters = self.waiters.lock();
            if bits & Direction::Read.mask() != 0 {
                wake[0] = waiters[0].take();
            }
            if bits & Direction::Write.mask() != 0 {
                wake[1] = waiters[1].take();
            }
        }
        for w in wake.into_iter().flatten() {
            w.wake();
        }
    }

    /// Ready for `dir`, or registers `cx`'s waker and returns `Pending`.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<ReadyEvent> {
        let w = self.readiness.load(Acquire);
        if w & dir.mask() != 0 {
            return Poll::Ready(ReadyEvent { word: w, dir });
        }
        let slot = dir as usize;
        let mut waiters = self.waiters.lock();
        match &waiters[slot] {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => waiters[slot] = Some(cx.waker().clone()),
        }
        // Re-check under the lock: a dispatch between the load and the
        // registration took no waker.
        let w = self.readiness.load(Acquire);
        if w & dir.mask() != 0 {
            waiters[slot] = None;
            return Poll::Ready(ReadyEvent { word: w, dir });
        }
        Poll::Pending
    }

    /// What the readiness word holds now for `dir`, without waiting or
    /// registering a waker (for `try_*` calls, which clear it with
    /// [`clear`](Self::clear) when the operation would block).
    pub(crate) fn snapshot(&self, dir: Direction) -> ReadyEvent {
        ReadyEvent {
            word: self.readiness.load(Acquire),
            dir,
        }
    }

    /// The operation would block: forget the readiness `ev` reported,
    /// unless an event arrived since.
    pub(crate) fn clear(&self, ev: ReadyEvent) {
        let clear = match ev.dir {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        };
        let _ = self
            .readiness
            .compare_exchange(ev.word, ev.word & !clear, AcqRel, Acquire);
    }

    /// The socket is going away: wake both waiters so nobody waits forever.
    pub(crate) fn shutdown(&self) {
        self.dispatch(READ_CLOSED | WRITE_CLOSED);
    }
}
