//! Bounded multi-producer, single-consumer channels.
//!
//! [`channel`] is `Send`: senders on any worker or thread, the receiver
//! anywhere. [`local::channel`] is `!Send`, for tasks of one worker, and
//! takes no lock. A send waits while the channel is full (backpressure);
//! a capacity of 0 is taken as 1.
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     let (tx, mut rx) = sprint_core::sync::mpsc::channel(8);
//!     sprint_core::spawn(async move { tx.send(5).await.unwrap() });
//!     assert_eq!(rx.recv().await, Some(5));
//! });
//! ```

use super::bounded::{Bounded, Refused};
use crate::coop;
use std::fmt;
use std::future::poll_fn;
use std::task::{Context, Poll};

/// The receiver is gone; the value comes back.
#[derive(PartialEq, Eq, Clone)]
pub struct SendError<T>(pub T);

/// Why `try_send` did not send.
#[derive(PartialEq, Eq, Clone)]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why `try_recv` gave nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing queued now.
    Empty,
    /// Nothing queued and every sender is gone.
    Disconnected,
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiver was dropped")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the channel is full"),
            TrySendError::Closed(_) => f.write_str("the receiver was dropped"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("the channel is empty"),
            TryRecvError::Disconnected => {
                f.write_str("the channel is empty and every sender was dropped")
            }
        }
    }
}

impl std::error::Error for TryRecvError {}

fn wake_all(wakers: crate::sync::bounded::WakeList) {
    wakers.wake_all();
}

macro_rules! flavour {
    ($shared:ident, $new:expr, $borrow:ident) => {
        /// The sending half; clone it for more producers.
        pub struct Sender<T> {
            chan: $shared<T>,
        }

        /// The receiving half.
        pub struct Receiver<T> {
            chan: $shared<T>,
        }

        /// A bounded channel of `capacity` values.
        pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
            let chan = $new(Bounded::new(capacity));
            (Sender { chan: chan.clone() }, Receiver { chan })
        }

        impl<T> Sender<T> {
            /// Sends, waiting while the channel is full. Fails only when
            /// the receiver is gone. Dropping the future gives up the send;
            /// nothing is queued then.
            pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
                let mut value = Some(value);
                let mut waiter = Waiter {
                    chan: &self.chan,
                    key: None,
                };
                poll_fn(|cx: &mut Context<'_>| {
                    let coop = std::task::ready!(coop::poll_proceed(cx));
                    let v = value
                        .take()
                        .unwrap_or_else(|| unreachable!("polled after completion"));
                    let mut ch = self.chan.$borrow();
                    match ch.try_push(v) {
                        Ok(rx) => {
                            ch.forget(&mut waiter.key);
                            drop(ch);
                            if let Some(w) = rx {
                                w.wake();
                            }
                            coop.made_progress();
                            Poll::Ready(Ok(()))
                        }
                        Err(Refused::Closed(v)) => {
                            ch.forget(&mut waiter.key);
                            Poll::Ready(Err(SendError(v)))
                        }
                        Err(Refused::Full(v)) => {
                            ch.wait(&mut waiter.key, cx.waker());
                            value = Some(v);
                            Poll::Pending
                        }
                    }
                })
                .await
            }

            /// Sends now or says why not.
            pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
                let mut ch = self.chan.$borrow();
                match ch.try_push(value) {
                    Ok(rx) => {
                        drop(ch);
                        if let Some(w) = rx {
                            w.wake();
                        }
                        Ok(())
                    }
                    Err(Refused::Full(v)) => Err(TrySendError::Full(v)),
                    Err(Refused::Closed(v)) => Err(TrySendError::Closed(v)),
                }
            }

            /// True once the receiver is gone.
            pub fn is_closed(&self) -> bool {
                self.chan.$borrow().is_closed()
            }

            /// The channel's capacity.
            pub fn capacity(&self) -> usize {
                self.chan.$borrow().capacity()
            }
        }

        /// A send waiting for room; leaves the waiting list when dropped.
        struct Waiter<'a, T> {
            chan: &'a $shared<T>,
            key: Option<usize>,
        }

        impl<T> Drop for Waiter<'_, T> {
            fn drop(&mut self) {
                if self.key.is_some() {
                    self.chan.$borrow().forget(&mut self.key);
                }
            }
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                self.chan.$borrow().add_sender();
                Sender {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for Sender<T> {
            fn drop(&mut self) {
                let w = self.chan.$borrow().drop_sender();
                if let Some(w) = w {
                    w.wake();
                }
            }
        }

        impl<T> Receiver<T> {
            /// The next value; `None` once it is empty and every sender is
            /// gone.
            pub async fn recv(&mut self) -> Option<T> {
                poll_fn(|cx| self.poll_recv(cx)).await
            }

            /// Polls for the next value.
            pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
                let coop = std::task::ready!(coop::poll_proceed(cx));
                let mut wake = crate::sync::bounded::WakeList::default();
                let r = self.chan.$borrow().poll_pop(Some(cx.waker()), &mut wake);
                wake_all(wake);
                if r.is_ready() {
                    coop.made_progress();
                }
                r
            }

            /// A value now, or why not.
            pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
                let mut wake = crate::sync::bounded::WakeList::default();
                let r = self.chan.$borrow().poll_pop(None, &mut wake);
                wake_all(wake);
                match r {
                    Poll::Ready(Some(v)) => Ok(v),
                    Poll::Ready(None) => Err(TryRecvError::Disconnected),
                    Poll::Pending => Err(TryRecvError::Empty),
                }
            }

            /// Refuses further sends; what is queued can still be received.
            pub fn close(&mut self) {
                let mut wake = crate::sync::bounded::WakeList::default();
                self.chan.$borrow().close_rx(&mut wake);
                wake_all(wake);
            }

            /// Values queued now.
            pub fn len(&self) -> usize {
                self.chan.$borrow().len()
            }

            /// True when nothing is queued.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }

        impl<T> Drop for Receiver<T> {
            fn drop(&mut self) {
                let mut wake = crate::sync::bounded::WakeList::default();
                let queued = {
                    let mut ch = self.chan.$borrow();
                    ch.close_rx(&mut wake);
                    ch.drain()
                };
                drop(queued);
                wake_all(wake);
            }
        }

        impl<T> fmt::Debug for Sender<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("Sender").finish_non_exhaustive()
            }
        }

        impl<T> fmt::Debug for Receiver<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("Receiver").finish_non_exhaustive()
            }
        }
    };
}

type Locked<T> = std::sync::Arc<parking_lot::Mutex<Bounded<T>>>;

fn locked<T>(b: Bounded<T>) -> Locked<T> {
    std::sync::Arc::new(parking_lot::Mutex::new(b))
}

flavour!(Locked, locked, lock);

/// The `!Send` flavour, for tasks of one worker: no lock, no atomics.
pub mod local {
    use super::super::bounded::{Bounded, Refused};
    use super::{wake_all, SendError, TryRecvError, TrySendError};
    use crate::coop;
    use std::fmt;
    use std::future::poll_fn;
    use std::task::{Context, Poll};

    type Local<T> = std::rc::Rc<std::cell::RefCell<Bounded<T>>>;

    fn local<T>(b: Bounded<T>) -> Local<T> {
        std::rc::Rc::new(std::cell::RefCell::new(b))
    }

    flavour!(Local, local, borrow_mut);
}
