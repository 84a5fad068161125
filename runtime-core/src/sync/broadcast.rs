//! `broadcast`: every value sent reaches every receiver alive when it was
//! sent. The channel is a bounded ring of the last `capacity` values, as
//! tokio's: a sender never waits; a receiver that falls more than
//! `capacity` values behind loses the oldest ones and is told how many
//! with `RecvError::Lagged(n)`, then goes on from the oldest value kept.
//!
//! The ring, the positions and the waiting receivers sit behind one
//! mutex; a receiver clones a value out under it (`T: Clone`). Values stay
//! in the ring until overwritten, so a quiet channel keeps up to
//! `capacity` values alive. A capacity of 0 is taken as 1.
//!
//! The receiver keeps its place in the waiting queue itself, so `recv()`
//! is cancel-safe and the receiver is a `Stream` (of
//! `Result<T, Lagged>`, ending when every sender is gone).
//!
//! The code is stamped twice by one macro: here with `Arc`, a mutex and
//! the cross-worker `Notify`, and in [`local`] (also
//! `sync::local::broadcast`) with `Rc`, a `RefCell` and the local
//! `Notify`, for tasks of one worker.
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     let (tx, mut a) = sprint_core::sync::broadcast::channel(16);
//!     let mut b = tx.subscribe();
//!     tx.send("hello").unwrap();
//!     assert_eq!(a.recv().await, Ok("hello"));
//!     assert_eq!(b.recv().await, Ok("hello"));
//! });
//! ```

use std::fmt;

/// No receiver is alive; the value comes back.
#[derive(PartialEq, Eq, Clone, thiserror::Error)]
#[error("no receiver is alive")]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

/// Why `recv` gave no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Every sender is gone and every value was received.
    #[error("every sender was dropped")]
    Closed,
    /// The receiver fell behind and lost this many values.
    #[error("the receiver lagged behind and lost {0} values")]
    Lagged(u64),
}

/// Why `try_recv` gave no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// No new value now.
    #[error("no value is waiting")]
    Empty,
    /// Every sender is gone and every value was received.
    #[error("every sender was dropped")]
    Closed,
    /// The receiver fell behind and lost this many values.
    #[error("the receiver lagged behind and lost {0} values")]
    Lagged(u64),
}

/// The stream's error item: this many values were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the receiver lagged behind and lost {0} values")]
pub struct Lagged(pub u64);

/// Stamps the channel for one flavour: `$rc` shares it (`Arc` or `Rc`);
/// `RingLock` and `Notify` at the call site name the lock around the ring
/// and the wake-up for `Sender::closed`.
macro_rules! broadcast_surface {
    ($rc:ident) => {
        struct Ring<T> {
            buf: std::collections::VecDeque<T>,
            cap: usize,
            /// The position of `buf[0]`; positions count every value ever sent.
            head: u64,
            senders: usize,
            receivers: usize,
            waiters: $crate::sync::waitq::WaitQueue<()>,
        }

        impl<T> Ring<T> {
            fn tail(&self) -> u64 {
                self.head + self.buf.len() as u64
            }
        }

        /// The ring behind its mutex, and the wake-up for `Sender::closed`.
        struct Chan<T> {
            ring: RingLock<Ring<T>>,
            rx_gone: Notify,
        }

        /// Sends to every receiver; clone it for more senders.
        pub struct Sender<T> {
            chan: $rc<Chan<T>>,
        }

        /// Receives every value sent after it subscribed.
        pub struct Receiver<T> {
            chan: $rc<Chan<T>>,
            next: u64,
            key: Option<usize>,
        }

        /// A channel keeping the last `capacity` values (0 is taken as 1).
        pub fn channel<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
            let cap = capacity.max(1);
            let chan = $rc::new(Chan {
                ring: RingLock::new(Ring {
                    buf: std::collections::VecDeque::with_capacity(cap.min(4096)),
                    cap,
                    head: 0,
                    senders: 1,
                    receivers: 1,
                    waiters: $crate::sync::waitq::WaitQueue::default(),
                }),
                rx_gone: Notify::new(),
            });
            (
                Sender { chan: chan.clone() },
                Receiver {
                    chan,
                    next: 0,
                    key: None,
                },
            )
        }

        impl<T> Sender<T> {
            /// Sends to every receiver alive now; returns how many. Never waits:
            /// a full ring drops its oldest value.
            pub fn send(&self, value: T) -> Result<usize, SendError<T>> {
                let mut wake = $crate::sync::bounded::WakeList::default();
                let (receivers, dropped) = {
                    let mut r = self.chan.ring.lock();
                    if r.receivers == 0 {
                        return Err(SendError(value));
                    }
                    let dropped = if r.buf.len() == r.cap {
                        r.head += 1;
                        r.buf.pop_front()
                    } else {
                        None
                    };
                    r.buf.push_back(value);
                    r.waiters.unlink_all(&mut wake);
                    (r.receivers, dropped)
                };
                drop(dropped);
                wake.wake_all();
                Ok(receivers)
            }

            /// A receiver of the values sent from now on.
            pub fn subscribe(&self) -> Receiver<T> {
                Receiver::from_now(&self.chan)
            }

            /// Receivers alive now.
            pub fn receiver_count(&self) -> usize {
                self.chan.ring.lock().receivers
            }

            /// True when no receiver is alive (a send would be refused).
            pub fn is_closed(&self) -> bool {
                self.receiver_count() == 0
            }

            /// Waits until every receiver is gone (at once if none is alive),
            /// so a producer can stop making values nobody will see.
            /// Cancel-safe.
            pub async fn closed(&self) {
                loop {
                    // Made before the check, so a last drop between the check and
                    // the await still wakes it.
                    let gone = self.chan.rx_gone.notified();
                    if self.is_closed() {
                        return;
                    }
                    gone.await;
                }
            }

            /// Values in the ring now.
            pub fn len(&self) -> usize {
                self.chan.ring.lock().buf.len()
            }

            /// True when the ring is empty.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                self.chan.ring.lock().senders += 1;
                Sender {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for Sender<T> {
            fn drop(&mut self) {
                let mut wake = $crate::sync::bounded::WakeList::default();
                {
                    let mut r = self.chan.ring.lock();
                    r.senders -= 1;
                    if r.senders == 0 {
                        r.waiters.unlink_all(&mut wake);
                    }
                }
                wake.wake_all();
            }
        }

        impl<T: Clone> Receiver<T> {
            /// The next value; `Lagged(n)` if `n` values were lost since the last
            /// call, `Closed` when every sender is gone and nothing is left.
            /// Cancel-safe.
            pub async fn recv(&mut self) -> Result<T, RecvError> {
                std::future::poll_fn(|cx| self.poll_recv(cx)).await
            }

            /// Polls for the next value.
            pub fn poll_recv(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<T, RecvError>> {
                let coop = std::task::ready!($crate::coop::poll_proceed(cx));
                let r = match self.take(Some(cx)) {
                    Ok(v) => std::task::Poll::Ready(Ok(v)),
                    Err(TryRecvError::Lagged(n)) => {
                        std::task::Poll::Ready(Err(RecvError::Lagged(n)))
                    }
                    Err(TryRecvError::Closed) => std::task::Poll::Ready(Err(RecvError::Closed)),
                    Err(TryRecvError::Empty) => std::task::Poll::Pending,
                };
                if r.is_ready() {
                    coop.made_progress();
                }
                r
            }

            /// A value now, or why not.
            pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
                self.take(None)
            }

            /// Takes the next value; with `cx`, waits for one when there is none.
            fn take(&mut self, cx: Option<&mut std::task::Context<'_>>) -> Result<T, TryRecvError> {
                let mut r = self.chan.ring.lock();
                let r = &mut *r;
                let ready = if self.next < r.head {
                    let lost = r.head - self.next;
                    self.next = r.head;
                    Err(TryRecvError::Lagged(lost))
                } else if self.next < r.tail() {
                    let v = r.buf[(self.next - r.head) as usize].clone();
                    self.next += 1;
                    Ok(v)
                } else if r.senders == 0 {
                    Err(TryRecvError::Closed)
                } else {
                    if let Some(cx) = cx {
                        match self.key {
                            Some(k) if r.waiters.is_linked(k) => r.waiters.set_waker(k, cx.waker()),
                            _ => {
                                if let Some(k) = self.key.take() {
                                    r.waiters.remove(k);
                                }
                                self.key = Some(r.waiters.push_back(cx.waker(), ()));
                            }
                        }
                    }
                    return Err(TryRecvError::Empty);
                };
                if let Some(k) = self.key.take() {
                    r.waiters.remove(k);
                }
                ready
            }
        }

        impl<T> Receiver<T> {
            /// A new receiver starting at the next value sent, like
            /// `Sender::subscribe`.
            pub fn resubscribe(&self) -> Receiver<T> {
                Receiver::from_now(&self.chan)
            }

            /// A new receiver of `chan`, starting at the next value sent.
            fn from_now(chan: &$rc<Chan<T>>) -> Receiver<T> {
                let mut r = chan.ring.lock();
                r.receivers += 1;
                Receiver {
                    chan: chan.clone(),
                    next: r.tail(),
                    key: None,
                }
            }

            /// Values this receiver has not received yet (lost ones included).
            pub fn len(&self) -> usize {
                let r = self.chan.ring.lock();
                (r.tail() - self.next) as usize
            }

            /// True when nothing waits for this receiver.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }

        impl<T> Drop for Receiver<T> {
            fn drop(&mut self) {
                let last = {
                    let mut r = self.chan.ring.lock();
                    r.receivers -= 1;
                    if let Some(k) = self.key.take() {
                        r.waiters.remove(k);
                    }
                    r.receivers == 0
                };
                if last {
                    self.chan.rx_gone.notify_waiters();
                }
            }
        }

        impl<T: Clone> futures_core::Stream for Receiver<T> {
            type Item = Result<T, Lagged>;

            fn poll_next(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                self.get_mut().poll_recv(cx).map(|r| match r {
                    Ok(v) => Some(Ok(v)),
                    Err(RecvError::Lagged(n)) => Some(Err(Lagged(n))),
                    Err(RecvError::Closed) => None,
                })
            }
        }

        impl<T> std::fmt::Debug for Sender<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("broadcast::Sender").finish_non_exhaustive()
            }
        }

        impl<T> std::fmt::Debug for Receiver<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("broadcast::Receiver")
                    .field("next", &self.next)
                    .finish_non_exhaustive()
            }
        }
    };
}

use super::notify::Notify;
use crate::loom::sync::Mutex as RingLock;
use std::sync::Arc;

broadcast_surface!(Arc);

/// The `!Send` flavour (also `sync::local::broadcast`), for tasks of one
/// worker: the same ring in a `RefCell`, `Rc` for `Arc` and the local
/// `Notify`, so no atomic instruction and no lock.
pub mod local {
    pub use super::{Lagged, RecvError, SendError, TryRecvError};
    use crate::sync::local::Notify;
    use crate::sync::state::LocalLock as RingLock;
    use std::rc::Rc;

    broadcast_surface!(Rc);
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::{channel, RecvError};
    use loom::future::block_on;

    /// A send racing a waiting `recv` is never missed.
    #[test]
    fn loom_broadcast_send_races_recv() {
        loom::model(|| {
            let (tx, mut rx) = channel(2);
            let t = loom::thread::spawn(move || {
                tx.send(1).unwrap();
            });
            assert_eq!(block_on(rx.recv()), Ok(1));
            assert_eq!(block_on(rx.recv()), Err(RecvError::Closed));
            t.join().unwrap();
        });
    }

    /// The last receiver dropped on another thread while the sender
    /// waits in `closed()`: the wait ends (the drop's wake or the count
    /// reaches it), and sends are refused after.
    #[test]
    fn loom_broadcast_closed_sees_the_last_receiver_go() {
        loom::model(|| {
            let (tx, rx) = channel::<i32>(1);
            let rx2 = rx.resubscribe();
            let t = loom::thread::spawn(move || drop(rx2));
            drop(rx);
            block_on(tx.closed());
            t.join().unwrap();
            assert!(tx.send(1).is_err());
        });
    }

    /// Two senders overrun a ring of one while a receiver reads: it sees
    /// every value or is told how many it lost, never both, never twice.
    #[test]
    fn loom_broadcast_lag_accounts_for_every_value() {
        loom::model(|| {
            let (tx, mut rx) = channel(1);
            let tx2 = tx.clone();
            let t = loom::thread::spawn(move || {
                tx2.send(2).unwrap();
            });
            tx.send(1).unwrap();
            drop(tx);
            let (mut got, mut lost) = (Vec::new(), 0);
            loop {
                match block_on(rx.recv()) {
                    Ok(v) => got.push(v),
                    Err(RecvError::Lagged(n)) => lost += n,
                    Err(RecvError::Closed) => break,
                }
            }
            t.join().unwrap();
            assert_eq!(got.len() as u64 + lost, 2, "got {got:?}, lost {lost}");
        });
    }
}
