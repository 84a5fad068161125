//! A channel for one value.
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     let (tx, rx) = sprint_core::sync::oneshot::channel();
//!     sprint_core::spawn(async move { tx.send("done").unwrap() });
//!     assert_eq!(rx.await, Ok("done"));
//! });
//! ```

use crate::coop;
use parking_lot::Mutex;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

struct Inner<T> {
    value: Option<T>,
    rx_waker: Option<Waker>,
    /// The sender waiting in `closed()`.
    tx_waker: Option<Waker>,
    tx_gone: bool,
    rx_gone: bool,
}

/// Sends the one value.
pub struct Sender<T> {
    inner: Option<Arc<Mutex<Inner<T>>>>,
}

/// Receives the one value: await it. Fused: once it has completed,
/// `futures::select!` skips it.
pub struct Receiver<T> {
    inner: Arc<Mutex<Inner<T>>>,
    /// Completed as a future (for `FusedFuture`).
    done: bool,
}

/// The sender was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the sender was dropped without sending")
    }
}

impl std::error::Error for RecvError {}

/// A new oneshot channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Mutex::new(Inner {
        value: None,
        rx_waker: None,
        tx_waker: None,
        tx_gone: false,
        rx_gone: false,
    }));
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner, done: false },
    )
}

impl<T> Sender<T> {
    /// Sends the value; gives it back if the receiver is gone.
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self.inner.take().unwrap_or_else(|| unreachable!());
        let mut g = inner.lock();
        if g.rx_gone {
            return Err(value);
        }
        g.value = Some(value);
        g.tx_gone = true;
        let w = g.rx_waker.take();
        drop(g);
        if let Some(w) = w {
            w.wake();
        }
        Ok(())
    }

    /// True once the receiver is gone (or closed).
    pub fn is_closed(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.lock().rx_gone)
    }

    /// Waits until the receiver is gone or closed, as tokio's: race it
    /// with the work that makes the value, to stop when nobody wants it.
    pub async fn closed(&mut self) {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await
    }

    /// Polls for the receiver to be gone or closed; the last waker given
    /// is woken then.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(inner) = &self.inner else {
            return Poll::Ready(());
        };
        let mut g = inner.lock();
        if g.rx_gone {
            return Poll::Ready(());
        }
        match &g.tx_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => g.tx_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let mut g = inner.lock();
            g.tx_gone = true;
            let w = g.rx_waker.take();
            drop(g);
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

impl<T> Receiver<T> {
    /// The value if it was sent, without waiting; `RecvError` when none
    /// was and none can come (the sender is gone, or `close` was called).
    pub fn try_recv(&mut self) -> Result<Option<T>, RecvError> {
        let mut g = self.inner.lock();
        match g.value.take() {
            Some(v) => Ok(Some(v)),
            None if g.tx_gone || g.rx_gone => Err(RecvError),
            None => Ok(None),
        }
    }

    /// Refuses the value from now on, as tokio's: a later `send` gives it
    /// back, and the sender's `closed()` completes. A value sent before
    /// is still received; with none, receiving answers `RecvError`.
    pub fn close(&mut self) {
        close_rx(&self.inner);
    }
}

/// Marks the receiver gone and wakes a sender in `closed()`.
fn close_rx<T>(inner: &Mutex<Inner<T>>) {
    let w = {
        let mut g = inner.lock();
        g.rx_gone = true;
        g.tx_waker.take()
    };
    if let Some(w) = w {
        w.wake();
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = std::task::ready!(coop::poll_proceed(cx));
        let this = self.get_mut();
        let mut g = this.inner.lock();
        if let Some(v) = g.value.take() {
            coop.made_progress();
            this.done = true;
            return Poll::Ready(Ok(v));
        }
        if g.tx_gone || g.rx_gone {
            coop.made_progress();
            this.done = true;
            return Poll::Ready(Err(RecvError));
        }
        match &g.rx_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => g.rx_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> futures_core::future::FusedFuture for Receiver<T> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        close_rx(&self.inner);
        let value = self.inner.lock().value.take();
        drop(value);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}
