//! The shutdown token: one process-wide "we are stopping" that every task
//! can await, so that servers stop accepting and finish what they hold.
//!
//! `#[sprint::main]` requests it on the first SIGINT or SIGTERM, then
//! gives `main` up to `drain_timeout_ms` (the attribute's `drain = "…"`)
//! to return before it cancels every task; a second signal exits at once.
//! A program can request it itself (an admin endpoint, a fatal error)
//! with [`request`].
//!
//! ```no_run
//! #[sprint::main(drain = "10s")]
//! async fn main() {
//!     let server = sprint::spawn(async {
//!         // accept until shutdown begins, then finish the open requests
//!         sprint::shutdown::requested().await;
//!     });
//!     server.await.unwrap();
//! }
//! ```
//!
//! The draining phase is for programs that ask for it (`drain = "…"` on
//! the attribute, or `drain_timeout_ms` set in code, a file or
//! `SPRINT_DRAIN_TIMEOUT_MS`) or that watch: one that does neither
//! (never awaits [`requested`], asks [`is_shutting_down`], or waits for
//! SIGINT or SIGTERM through `sprint::signal`) would notice nothing, so
//! `#[sprint::main]` cancels it at once, as it always did.

use crate::event::{Event, Waiter};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::task::{Context, Poll};

static SHUTDOWN: Event = Event::new();
static WATCHED: AtomicBool = AtomicBool::new(false);

/// True once shutdown has been requested (by a signal under
/// `#[sprint::main]`, or by [`request`]).
pub fn is_shutting_down() -> bool {
    mark_watched();
    SHUTDOWN.count() > 0
}

/// Completes once shutdown has been requested (at once if it already
/// has). Any number of tasks may wait, on any worker or thread.
pub fn requested() -> Requested {
    mark_watched();
    Requested(SHUTDOWN.waiter(0))
}

/// Requests shutdown: every [`requested`] future completes. Under
/// `#[sprint::main]` this alone does not stop the runtime: `main`
/// returning does.
pub fn request() {
    SHUTDOWN.fire();
}

/// The program watches the token (or the stop signals): `#[sprint::main]`
/// gives it the draining phase.
pub(crate) fn mark_watched() {
    WATCHED.store(true, Relaxed);
}

pub(crate) fn watched() -> bool {
    WATCHED.load(Relaxed)
}

/// The future of [`requested`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Requested(Waiter);

impl Future for Requested {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll_count(cx).map(|_| ())
    }
}
