//! Multi-producer, single-consumer channels, bounded and unbounded.
//!
//! [`channel`] is `Send`: senders on any worker or thread, the receiver
//! anywhere. [`local::channel`] is `!Send`, for tasks of one worker, and
//! takes no lock. A send waits while the channel is full (backpressure);
//! a capacity of 0 is taken as 1. `Sender::reserve` waits for a slot
//! first and fills it later; [`unbounded_channel`] never waits (and never
//! pushes back). Receivers are `Stream`s, `recv_many` drains a batch, and
//! `Sender::closed` waits for the receiver to leave.
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     let (tx, mut rx) = sprint_core::sync::mpsc::channel(8);
//!     sprint_core::spawn(async move { tx.send(5).await.unwrap() });
//!     assert_eq!(rx.recv().await, Some(5));
//! });
//! ```

use super::bounded::{Bounded, Refused, WakeList};
use crate::coop;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
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

/// What both senders have: `is_closed`, `closed()`, `Clone`, `Drop`.
macro_rules! sender_common {
    ($name:ident, $shared:ident, $borrow:ident) => {
        impl<T> $name<T> {
            /// True once the receiver is gone (or closed).
            pub fn is_closed(&self) -> bool {
                self.chan.$borrow().is_closed()
            }

            /// Waits until the receiver is gone (or closed), e.g. to stop
            /// producing for nobody. Cancel-safe.
            pub async fn closed(&self) {
                let mut waiter = ClosedWaiter {
                    chan: &self.chan,
                    key: None,
                };
                poll_fn(|cx| {
                    let key = &mut waiter.key;
                    waiter.chan.$borrow().poll_closed(key, cx.waker())
                })
                .await
            }

            /// True when both senders feed the same channel.
            pub fn same_channel(&self, other: &Self) -> bool {
                $shared::ptr_eq(&self.chan, &other.chan)
            }
        }

        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                self.chan.$borrow().add_sender();
                $name {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for $name<T> {
            fn drop(&mut self) {
                let w = self.chan.$borrow().drop_sender();
                if let Some(w) = w {
                    w.wake();
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

/// The receiving half, the same for the bounded and unbounded channels.
macro_rules! receiver {
    ($name:ident, $shared:ident, $borrow:ident) => {
        impl<T> $name<T> {
            /// The next value; `None` once it is empty and every sender is
            /// gone. Cancel-safe.
            pub async fn recv(&mut self) -> Option<T> {
                poll_fn(|cx| self.poll_recv(cx)).await
            }

            /// Polls for the next value.
            pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
                let coop = std::task::ready!(coop::poll_proceed(cx));
                let mut wake = WakeList::default();
                let r = self.chan.$borrow().poll_pop(Some(cx.waker()), &mut wake);
                wake.wake_all();
                if r.is_ready() {
                    coop.made_progress();
                }
                r
            }

            /// Waits for at least one value, then moves up to `limit` into
            /// `buf` (appending); returns how many. 0 means the channel is
            /// closed and empty, or `limit` is 0. Cancel-safe.
            pub async fn recv_many(&mut self, buf: &mut Vec<T>, limit: usize) -> usize {
                poll_fn(|cx| self.poll_recv_many(cx, buf, limit)).await
            }

            /// Polls for up to `limit` values; see [`Self::recv_many`].
            pub fn poll_recv_many(
                &mut self,
                cx: &mut Context<'_>,
                buf: &mut Vec<T>,
                limit: usize,
            ) -> Poll<usize> {
                let coop = std::task::ready!(coop::poll_proceed(cx));
                let mut wake = WakeList::default();
                let r = self
                    .chan
                    .$borrow()
                    .poll_pop_many(cx.waker(), buf, limit, &mut wake);
                wake.wake_all();
                if r.is_ready() {
                    coop.made_progress();
                }
                r
            }

            /// A value now, or why not.
            pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
                let mut wake = WakeList::default();
                let r = self.chan.$borrow().poll_pop(None, &mut wake);
                wake.wake_all();
                match r {
                    Poll::Ready(Some(v)) => Ok(v),
                    Poll::Ready(None) => Err(TryRecvError::Disconnected),
                    Poll::Pending => Err(TryRecvError::Empty),
                }
            }

            /// Refuses further sends; what is queued can still be received.
            pub fn close(&mut self) {
                let mut wake = WakeList::default();
                self.chan.$borrow().close_rx(&mut wake);
                wake.wake_all();
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

        impl<T> futures_core::Stream for $name<T> {
            type Item = T;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
                self.get_mut().poll_recv(cx)
            }
        }

        impl<T> Drop for $name<T> {
            fn drop(&mut self) {
                let mut wake = WakeList::default();
                let queued = {
                    let mut ch = self.chan.$borrow();
                    ch.close_rx(&mut wake);
                    ch.drain()
                };
                drop(queued);
                wake.wake_all();
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

macro_rules! flavour {
    ($shared:ident, $new:expr, $borrow:ident) => {
        /// The sending half; clone it for more producers.
        pub struct Sender<T> {
            chan: $shared<Bounded<T>>,
        }

        /// The receiving half; also a `Stream` of the values.
        pub struct Receiver<T> {
            chan: $shared<Bounded<T>>,
        }

        /// One reserved slot of a bounded channel: [`Permit::send`] fills
        /// it without waiting; dropping the permit frees it.
        pub struct Permit<'a, T> {
            chan: &'a $shared<Bounded<T>>,
        }

        /// The sending half of an unbounded channel; sending never waits.
        pub struct UnboundedSender<T> {
            chan: $shared<Bounded<T>>,
        }

        /// The receiving half of an unbounded channel; also a `Stream`.
        pub struct UnboundedReceiver<T> {
            chan: $shared<Bounded<T>>,
        }

        /// A bounded channel of `capacity` values (0 is taken as 1).
        pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
            let chan = $new(Bounded::new(capacity));
            (Sender { chan: chan.clone() }, Receiver { chan })
        }

        /// A channel without a bound: sends never wait, so nothing slows a
        /// producer that outruns its consumer (memory grows instead). Pick
        /// the bounded [`channel`] unless the producer cannot wait.
        pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
            let chan = $new(Bounded::unbounded());
            (
                UnboundedSender { chan: chan.clone() },
                UnboundedReceiver { chan },
            )
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

            /// Waits for a free slot and reserves it, so the value can be
            /// made (or sent) later without waiting. Fails when the
            /// receiver is gone. Cancel-safe: dropping the future reserves
            /// nothing.
            pub async fn reserve(&self) -> Result<Permit<'_, T>, SendError<()>> {
                let mut waiter = Waiter {
                    chan: &self.chan,
                    key: None,
                };
                poll_fn(|cx: &mut Context<'_>| {
                    let coop = std::task::ready!(coop::poll_proceed(cx));
                    let mut ch = self.chan.$borrow();
                    match ch.try_reserve() {
                        Ok(()) => {
                            ch.forget(&mut waiter.key);
                            coop.made_progress();
                            Poll::Ready(Ok(Permit { chan: &self.chan }))
                        }
                        Err(true) => {
                            ch.forget(&mut waiter.key);
                            Poll::Ready(Err(SendError(())))
                        }
                        Err(false) => {
                            ch.wait(&mut waiter.key, cx.waker());
                            Poll::Pending
                        }
                    }
                })
                .await
            }

            /// Reserves a slot now, or says why not.
            pub fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
                match self.chan.$borrow().try_reserve() {
                    Ok(()) => Ok(Permit { chan: &self.chan }),
                    Err(true) => Err(TrySendError::Closed(())),
                    Err(false) => Err(TrySendError::Full(())),
                }
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

            /// The channel's capacity.
            pub fn capacity(&self) -> usize {
                self.chan.$borrow().capacity()
            }
        }

        impl<T> Permit<'_, T> {
            /// Sends into the reserved slot; never waits. If the receiver
            /// left meanwhile, the value is dropped.
            pub fn send(self, value: T) {
                let r = self.chan.$borrow().push_reserved(value);
                std::mem::forget(self);
                match r {
                    Ok(Some(w)) => w.wake(),
                    Ok(None) => {}
                    Err(v) => drop(v),
                }
            }
        }

        impl<T> Drop for Permit<'_, T> {
            fn drop(&mut self) {
                let mut wake = WakeList::default();
                self.chan.$borrow().unreserve(&mut wake);
                wake.wake_all();
            }
        }

        impl<T> fmt::Debug for Permit<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("Permit").finish_non_exhaustive()
            }
        }

        impl<T> UnboundedSender<T> {
            /// Queues `value` at once; fails only when the receiver is gone.
            pub fn send(&self, value: T) -> Result<(), SendError<T>> {
                let r = self.chan.$borrow().try_push(value);
                match r {
                    Ok(rx) => {
                        if let Some(w) = rx {
                            w.wake();
                        }
                        Ok(())
                    }
                    Err(Refused::Closed(v) | Refused::Full(v)) => Err(SendError(v)),
                }
            }
        }

        /// A send or reserve waiting for room; leaves the waiting list when
        /// dropped.
        struct Waiter<'a, T> {
            chan: &'a $shared<Bounded<T>>,
            key: Option<usize>,
        }

        impl<T> Drop for Waiter<'_, T> {
            fn drop(&mut self) {
                if self.key.is_some() {
                    self.chan.$borrow().forget(&mut self.key);
                }
            }
        }

        /// A `closed()` waiting for the receiver to leave.
        struct ClosedWaiter<'a, T> {
            chan: &'a $shared<Bounded<T>>,
            key: Option<usize>,
        }

        impl<T> Drop for ClosedWaiter<'_, T> {
            fn drop(&mut self) {
                if self.key.is_some() {
                    self.chan.$borrow().forget_closed(&mut self.key);
                }
            }
        }

        sender_common!(Sender, $shared, $borrow);
        sender_common!(UnboundedSender, $shared, $borrow);
        receiver!(Receiver, $shared, $borrow);
        receiver!(UnboundedReceiver, $shared, $borrow);
    };
}

type Locked<B> = std::sync::Arc<parking_lot::Mutex<B>>;

fn locked<B>(b: B) -> Locked<B> {
    std::sync::Arc::new(parking_lot::Mutex::new(b))
}

flavour!(Locked, locked, lock);

/// The `!Send` flavour, for tasks of one worker: no lock, no atomics.
pub mod local {
    use super::super::bounded::{Bounded, Refused, WakeList};
    use super::{SendError, TryRecvError, TrySendError};
    use crate::coop;
    use std::fmt;
    use std::future::poll_fn;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    type Local<B> = std::rc::Rc<std::cell::RefCell<B>>;

    fn local<B>(b: B) -> Local<B> {
        std::rc::Rc::new(std::cell::RefCell::new(b))
    }

    flavour!(Local, local, borrow_mut);
}
