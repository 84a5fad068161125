//! What hyper asks of a runtime besides I/O: a timer (header-read and
//! keep-alive timeouts, HTTP/2 pings) and an executor (HTTP/2 runs each
//! stream, and its client connection, as a task of its own; HTTP/1 needs
//! none).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// hyper's timer on Sprint's: `http1::Builder::new().timer(Timer)`.
///
/// With a timer, hyper applies its header-read timeout (30 s by default,
/// `header_read_timeout`) to every request. A sleep belongs to the worker
/// that first polls it, like any [`sprint::time::sleep`](crate::time::sleep).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timer;

/// A Sprint sleep as hyper's `Sleep`.
struct HyperSleep(crate::time::Sleep);

impl Future for HyperSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::time::sleep_until(deadline)))
    }

    /// Moves a sleep of ours in place (hyper resets the header-read timer
    /// on every request of a keep-alive connection), else makes a new one.
    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(ours) => ours.get_mut().0.reset(deadline),
            None => *sleep = self.sleep_until(deadline),
        }
    }
}

/// hyper's executor: spawns each future hyper hands over on the current
/// worker ([`spawn_local`](crate::spawn_local)), so the futures need not
/// be `Send` (a `!Send` service works with HTTP/2 too) and a connection's
/// streams stay on its core.
///
/// `http2::Builder::new(Executor)`. Use it from a task on a worker (a task
/// spawned with `spawn`, `spawn_local` or `spawn_local_on`), not from
/// `block_on` itself: `spawn_local` panics there, saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        // Detached: hyper tracks its own streams.
        drop(crate::spawn_local(future));
    }
}
