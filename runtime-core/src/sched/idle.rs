//! The sleep/unpark protocol of one worker.
//!
//! A worker about to sleep swaps `sleeping` to true and then checks its
//! inbox once more; a thread that queued something in the inbox then swaps
//! `sleeping` to false and, only if it was true, unparks the worker. Both
//! sides use a read-modify-write on the one flag, so the two swaps are
//! totally ordered (every write to the flag is a swap, so release sequences
//! are never broken): if the producer's comes first, the worker's swap reads
//! the value the producer wrote after queueing (acquire/release), and its
//! check finds the item; if the worker's comes first, the producer sees
//! `true` and unparks. (A plain load would need sequential consistency
//! across two variables, which loom cannot check.) An awake worker costs a
//! producer one atomic swap and no system call. Thread parking keeps a
//! token, so an unpark that arrives between the check and the park is not
//! lost.

use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use crate::loom::thread::{self, Thread};
use std::sync::OnceLock;
use std::time::Duration;

/// How a sleeping worker is woken: its thread's park token, or its I/O
/// driver (an eventfd write, a ring message).
#[derive(Debug)]
pub(crate) enum Waker {
    Thread(Thread),
    #[cfg_attr(loom, allow(dead_code))]
    Driver(std::sync::Arc<dyn crate::driver::Unpark>),
}

#[derive(Debug)]
pub(crate) struct Parker {
    sleeping: AtomicBool,
    waker: OnceLock<Waker>,
    unparks: AtomicU64,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            sleeping: AtomicBool::new(false),
            waker: OnceLock::new(),
            unparks: AtomicU64::new(0),
        }
    }

    /// Called once, on the worker thread, before anyone can notify it:
    /// wake it through its park token.
    pub(crate) fn register_current(&self) {
        let _ = self.waker.set(Waker::Thread(thread::current()));
    }

    /// Called once, on the worker thread: wake it through its driver.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn register_driver(&self, unpark: std::sync::Arc<dyn crate::driver::Unpark>) {
        let _ = self.waker.set(Waker::Driver(unpark));
    }

    /// Step 1 of sleeping: announce it. The caller must then re-check for
    /// work and call [`Parker::cancel`] or [`Parker::park`].
    pub(crate) fn prepare(&self) {
        self.sleeping.swap(true, AcqRel);
    }

    /// Work turned up after `prepare`.
    pub(crate) fn cancel(&self) {
        self.sleeping.swap(false, AcqRel);
    }

    /// Step 2: sleep until notified or until `timeout` passes, on the
    /// thread's park token.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        self.park_with(|| match timeout {
            Some(t) => thread::park_timeout(t),
            None => thread::park(),
        })
    }

    /// Step 2, sleeping in `wait` (the driver's blocking turn).
    pub(crate) fn park_with(&self, wait: impl FnOnce()) {
        wait();
        // A swap, not a store: every write to the flag is a read-modify-write,
        // so a producer's release reaches the next `prepare` through the
        // release sequence (loom found the lost wake-up a plain store allows).
        self.sleeping.swap(false, AcqRel);
    }

    /// Wakes the worker if it sleeps; no system call if it is awake.
    pub(crate) fn notify(&self) {
        if self.sleeping.swap(false, AcqRel) {
            match self.waker.get() {
                Some(Waker::Thread(t)) => t.unpark(),
                Some(Waker::Driver(d)) => d.unpark(),
                None => return,
            }
            self.unparks.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn is_sleeping(&self) -> bool {
        self.sleeping.load(Relaxed)
    }

    /// How many times `notify` had to unpark the thread.
    pub(crate) fn unparks(&self) -> u64 {
        self.unparks.load(Relaxed)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::Parker;
    use crate::loom::sync::Arc;
    use crate::sched::inbox::Inbox;

    /// The worker side: drain, announce sleep, re-check, park; until `n`
    /// items arrived. Returns them.
    fn worker(inbox: &Inbox<u32>, parker: &Parker, n: usize) -> Vec<u32> {
        parker.register_current();
        let mut got = Vec::new();
        while got.len() < n {
            if inbox.drain_into(&mut got) > 0 {
                continue;
            }
            parker.prepare();
            if inbox.is_nonempty() {
                parker.cancel();
                continue;
            }
            parker.park(None);
        }
        got
    }

    /// A producer queues one item and notifies; the worker must see it,
    /// whatever the interleaving, and never sleep on a queued item (loom
    /// reports a deadlock if it does).
    #[test]
    fn loom_inbox_push_is_never_lost() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::<u32>::new());
            let parker = Arc::new(Parker::new());
            let w = {
                let (inbox, parker) = (inbox.clone(), parker.clone());
                loom::thread::spawn(move || worker(&inbox, &parker, 1))
            };
            inbox.push(7).unwrap();
            parker.notify();
            assert_eq!(w.join().unwrap(), vec![7]);
        });
    }

    /// Two producers race; both items arrive.
    #[test]
    fn loom_two_producers_both_arrive() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::<u32>::new());
            let parker = Arc::new(Parker::new());
            let w = {
                let (inbox, parker) = (inbox.clone(), parker.clone());
                loom::thread::spawn(move || worker(&inbox, &parker, 2))
            };
            let p = {
                let (inbox, parker) = (inbox.clone(), parker.clone());
                loom::thread::spawn(move || {
                    inbox.push(1).unwrap();
                    parker.notify();
                })
            };
            inbox.push(2).unwrap();
            parker.notify();
            p.join().unwrap();
            let mut got = w.join().unwrap();
            got.sort();
            assert_eq!(got, vec![1, 2]);
        });
    }

    /// An idle worker steals the stealable (odd) items from a busy
    /// worker's inbox while a producer pushes and the owner drains: every
    /// item is taken exactly once, and a pinned (even) one only by its
    /// owner.
    #[test]
    fn loom_steal_from_inbox_races_drain_and_push() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::<u32>::new());
            inbox.push(1).unwrap();
            let producer = {
                let inbox = inbox.clone();
                loom::thread::spawn(move || {
                    inbox.push(2).unwrap();
                    inbox.push(3).unwrap();
                })
            };
            let stealer = {
                let inbox = inbox.clone();
                loom::thread::spawn(move || {
                    let mut got = Vec::new();
                    inbox.steal_into(&mut got, 8, |i| i % 2 == 1);
                    got
                })
            };
            let mut owned = Vec::new();
            inbox.drain_into(&mut owned);
            producer.join().unwrap();
            let stolen = stealer.join().unwrap();
            inbox.drain_into(&mut owned);
            assert!(stolen.iter().all(|i| i % 2 == 1), "stole a pinned item");
            let mut all: Vec<u32> = owned.into_iter().chain(stolen).collect();
            all.sort();
            assert_eq!(all, vec![1, 2, 3]);
            assert!(!inbox.is_nonempty());
        });
    }

    /// A push after close is refused and handed back, so a shutting-down
    /// worker never leaves an item behind unseen.
    #[test]
    fn loom_close_races_push() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::<u32>::new());
            let producer = {
                let inbox = inbox.clone();
                loom::thread::spawn(move || inbox.push(9).is_ok())
            };
            let mut drained = Vec::new();
            inbox.close(&mut drained);
            let accepted = producer.join().unwrap();
            assert_eq!(accepted, drained == vec![9]);
        });
    }
}
