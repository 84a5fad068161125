use super::sleep::{sleep_until, Sleep};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Runs `future` for at most `duration`.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    timeout_at(super::now() + duration, future)
}

/// Runs `future` until `deadline` at most.
pub fn timeout_at<F: Future>(deadline: impl Into<Instant>, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
        done: false,
    }
}

/// The future of [`timeout`]. Fused: once it has completed,
/// `futures::select!` skips it.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
    /// Completed (for `FusedFuture`).
    done: bool,
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned (never moved out while
        // pinned); `sleep` and `done` are Unpin and not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let fut = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(v) = fut.poll(cx) {
            this.done = true;
            return Poll::Ready(Ok(v));
        }
        let r = this.sleep.poll_elapsed(cx).map(|()| Err(Elapsed(())));
        this.done = r.is_ready();
        r
    }
}

impl<F: Future> futures_core::future::FusedFuture for Timeout<F> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

/// The deadline of a [`timeout`] passed first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}
