//! The sleep/unpark protocol of one worker.
//!
//! A worker about to sleep stores `sleeping = true` (SeqCst) and then
//! checks its inbox once more; a thread that queued something in the inbox
//! (SeqCst) then swaps `sleeping` to false and, only if it was true, unparks
//! the worker. Sequential consistency on the two flags means at least one
//! side sees the other: either the worker finds the item, or the producer
//! finds the worker asleep. An awake worker costs a producer one atomic
//! swap and no system call. Thread parking keeps a token, so an unpark that
//! arrives between the check and the park is not lost.

use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use crate::loom::thread::{self, Thread};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Parker {
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
    unparks: AtomicU64,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            sleeping: AtomicBool::new(false),
            thread: OnceLock::new(),
            unparks: AtomicU64::new(0),
        }
    }

    /// Called once, on the worker thread, before anyone can notify it.
    pub(crate) fn register_current(&self) {
        let _ = self.thread.set(thread::current());
    }

    /// Step 1 of sleeping: announce it. The caller must then re-check for
    /// work and call [`Parker::cancel`] or [`Parker::park`].
    pub(crate) fn prepare(&self) {
        self.sleeping.store(true, SeqCst);
    }

    /// Work turned up after `prepare`.
    pub(crate) fn cancel(&self) {
        self.sleeping.store(false, Relaxed);
    }

    /// Step 2: sleep until notified or until `timeout` passes.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        match timeout {
            Some(t) => thread::park_timeout(t),
            None => thread::park(),
        }
        self.sleeping.store(false, Relaxed);
    }

    /// Wakes the worker if it sleeps; no system call if it is awake.
    pub(crate) fn notify(&self) {
        if self.sleeping.load(SeqCst) && self.sleeping.swap(false, SeqCst) {
            if let Some(t) = self.thread.get() {
                self.unparks.fetch_add(1, Relaxed);
                t.unpark();
            }
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
    use crate::loom::sync::atomic::{AtomicBool, Ordering::*};
    use crate::loom::sync::Arc;
    use crate::sched::inbox::Inbox;

    /// A producer queues one item and notifies; the worker must see it,
    /// whatever the interleaving, and never sleep on a queued item.
    #[test]
    fn loom_inbox_push_is_never_lost() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::<u32>::new());
            let parker = Arc::new(Parker::new());
            let ready = Arc::new(AtomicBool::new(false));
            parker.register_current();
            let producer = {
                let (inbox, parker, ready) = (inbox.clone(), parker.clone(), ready.clone());
                loom::thread::spawn(move || {
                    while !ready.load(Acquire) {
                        loom::thread::yield_now();
                    }
                    inbox.push(7).unwrap();
                    parker.notify();
                })
            };
            ready.store(true, Release);
            let mut got = Vec::new();
            loop {
                if inbox.drain_into(&mut got) > 0 {
                    break;
                }
                parker.prepare();
                if inbox.is_nonempty() {
                    parker.cancel();
                    continue;
                }
                parker.park(None);
            }
            assert_eq!(got, vec![7]);
            producer.join().unwrap();
        });
    }

    /// Two producers race; both items arrive and the worker never sleeps
    /// forever.
    #[test]
    fn loom_two_producers_both_arrive() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::<u32>::new());
            let parker = Arc::new(Parker::new());
            parker.register_current();
            let mut producers = Vec::new();
            for v in [1, 2] {
                let (inbox, parker) = (inbox.clone(), parker.clone());
                producers.push(loom::thread::spawn(move || {
                    inbox.push(v).unwrap();
                    parker.notify();
                }));
            }
            let mut got = Vec::new();
            while got.len() < 2 {
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
            got.sort();
            assert_eq!(got, vec![1, 2]);
            for p in producers {
                p.join().unwrap();
            }
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
