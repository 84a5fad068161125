//! The mesh's wake-up handshake: how a side that found a ring empty (or
//! full) learns that the other side has made progress, without a lock and
//! without a system call while its worker is awake.
//!
//! Two pieces:
//!
//! - A [`WaitFlag`] per waiting side (a receiver waiting for messages on
//!   any of its rings, a sender waiting for room on one ring). The waiter
//!   registers its task's waker with its own worker (a local list, see
//!   `local.rs`), *arms* the flag, and looks at the ring once more. The
//!   other side publishes (the tail, or the head) and then *takes* the
//!   flag. Both are swaps on the one flag, so they are totally ordered: if
//!   the take comes first, the arm reads the value it wrote, acquiring the
//!   publish, and the second look finds the progress; if the arm comes
//!   first, the take sees `true` and rings the waiter's bell. (The same
//!   argument as the worker's sleep/unpark protocol in `sched/idle.rs`; a
//!   plain load on either side would need sequential consistency across
//!   two variables.)
//! - A [`Bell`] per worker: the taker sets it and then calls the worker's
//!   `Parker::notify`, which costs one swap and unparks only a sleeping
//!   worker. The worker answers the bell in its maintenance turn (and its
//!   park re-checks it after announcing sleep, by the parker's protocol):
//!   it wakes every waker registered with it on its own thread, with no
//!   lock. A woken waiter that finds nothing arms again.

use crate::loom::sync::atomic::{AtomicBool, Ordering::*};
use crate::sched::idle::Parker;

/// One waiting side's flag; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct WaitFlag(AtomicBool);

impl WaitFlag {
    pub(crate) fn new() -> WaitFlag {
        WaitFlag(AtomicBool::new(false))
    }

    /// The waiter announces it waits; it must look again afterwards.
    pub(crate) fn arm(&self) {
        self.0.swap(true, AcqRel);
    }

    /// The other side, after publishing: was someone waiting?
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, AcqRel)
    }
}

/// A worker's doorbell for the mesh; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Bell {
    rung: AtomicBool,
}

impl Bell {
    pub(crate) fn new() -> Bell {
        Bell {
            rung: AtomicBool::new(false),
        }
    }

    /// Rings the bell of the worker whose parker is `parker`: set, then
    /// notify (which publishes the set to a worker about to sleep).
    pub(crate) fn ring(&self, parker: &Parker) {
        self.rung.store(true, Release);
        parker.notify();
    }

    /// Whether it rang since it was last answered (a cheap look).
    pub(crate) fn is_rung(&self) -> bool {
        self.rung.load(Relaxed)
    }

    /// The worker answers: true if it had rung (then it is reset).
    pub(crate) fn answer(&self) -> bool {
        self.rung.load(Relaxed) && self.rung.swap(false, Acquire)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::{Bell, WaitFlag};
    use crate::loom::sync::Arc;
    use crate::mesh::ring::Ring;
    use crate::sched::idle::Parker;

    struct Target {
        ring: Ring<u32>,
        wanted: WaitFlag,
        bell: Bell,
        parker: Parker,
    }

    /// The producer's side of a send: push, publish, take the flag, ring.
    fn send(t: &Target, v: u32) {
        // SAFETY: the calling thread is the ring's only producer.
        unsafe {
            t.ring.push(v).unwrap();
            t.ring.publish();
        }
        if t.wanted.take() {
            t.bell.ring(&t.parker);
        }
    }

    /// The receiving worker: a receiver task that pops, else arms and
    /// looks again, else waits; and the worker loop around it that
    /// answers its bell, else announces sleep, re-checks the bell and
    /// parks. loom reports a deadlock if a message is left behind a
    /// sleeping worker.
    fn receive(t: &Target, n: usize) -> Vec<u32> {
        t.parker.register_current();
        let mut got = Vec::new();
        while got.len() < n {
            // The receiver task's poll.
            // SAFETY: this thread is the ring's only consumer.
            if let Some(v) = unsafe { t.ring.pop() } {
                got.push(v);
                continue;
            }
            t.wanted.arm();
            // SAFETY: as above.
            if let Some(v) = unsafe { t.ring.pop() } {
                got.push(v);
                continue;
            }
            // The task is pending; the worker has nothing else to run.
            loop {
                if t.bell.answer() {
                    break;
                }
                t.parker.prepare();
                if t.bell.is_rung() {
                    t.parker.cancel();
                    continue;
                }
                t.parker.park(None);
            }
        }
        got
    }

    fn target() -> Arc<Target> {
        Arc::new(Target {
            ring: Ring::new(2),
            wanted: WaitFlag::new(),
            bell: Bell::new(),
            parker: Parker::new(),
        })
    }

    /// One message to a worker that may be polling, arming or asleep: it
    /// arrives, and the worker never sleeps on it.
    #[test]
    fn loom_mesh_wake_handshake_never_loses_a_message() {
        loom::model(|| {
            let t = target();
            let w = {
                let t = t.clone();
                loom::thread::spawn(move || receive(&t, 1))
            };
            send(&t, 7);
            assert_eq!(w.join().unwrap(), [7]);
        });
    }

    /// Backpressure, the other way round: a sender finds the one-slot ring
    /// full, arms the room flag and sleeps on its worker's bell; the
    /// receiver pops, and at the end of its turn takes the flag and rings
    /// the sender's bell. The second message must get through.
    #[test]
    fn loom_mesh_room_handshake_wakes_a_waiting_sender() {
        loom::model(|| {
            let t = Arc::new(Target {
                ring: Ring::new(1),
                wanted: WaitFlag::new(),
                bell: Bell::new(),
                parker: Parker::new(),
            });
            let sender = {
                let t = t.clone();
                loom::thread::spawn(move || {
                    t.parker.register_current();
                    for v in [1, 2] {
                        // SAFETY: this thread is the ring's only producer.
                        while unsafe { t.ring.push(v) }.is_err() {
                            // SAFETY: as above.
                            unsafe { t.ring.publish() };
                            t.wanted.arm();
                            // SAFETY: as above.
                            if unsafe { t.ring.push(v) }.is_ok() {
                                break;
                            }
                            while !t.bell.answer() {
                                t.parker.prepare();
                                if t.bell.is_rung() {
                                    t.parker.cancel();
                                    continue;
                                }
                                t.parker.park(None);
                            }
                        }
                    }
                    // SAFETY: as above.
                    unsafe { t.ring.publish() };
                })
            };
            let mut got = Vec::new();
            while got.len() < 2 {
                // SAFETY: this thread is the ring's only consumer.
                match unsafe { t.ring.pop() } {
                    Some(v) => {
                        got.push(v);
                        // The receiver's end of turn.
                        if t.wanted.take() {
                            t.bell.ring(&t.parker);
                        }
                    }
                    None => loom::thread::yield_now(),
                }
            }
            sender.join().unwrap();
            assert_eq!(got, [1, 2]);
        });
    }

    /// Two messages in two publishes: the second may come while the
    /// receiver re-arms after the first.
    #[test]
    fn loom_mesh_wake_handshake_two_publishes() {
        loom::model(|| {
            let t = target();
            let w = {
                let t = t.clone();
                loom::thread::spawn(move || receive(&t, 2))
            };
            send(&t, 1);
            send(&t, 2);
            assert_eq!(w.join().unwrap(), [1, 2]);
        });
    }
}
