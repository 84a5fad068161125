//! Time: [`sleep`], [`sleep_until`], [`timeout`], [`interval`] and the
//! runtime's clock, [`Instant`].
//!
//! ```no_run
//! # async fn f() {
//! use std::time::Duration;
//! sprint_core::time::sleep(Duration::from_millis(10)).await;
//! let r = sprint_core::time::timeout(Duration::from_secs(1), async { 42 }).await;
//! assert_eq!(r.unwrap(), 42);
//! # }
//! ```
//!
//! A timer belongs to the worker that polls it, so a task that sleeps is
//! woken on its own core, without a lock shared with other workers. A
//! timer never fires before its deadline: the deadline is compared with
//! the runtime's clock, never taken from the wake alone. In tests,
//! `#[sprint::test(start_paused = true)]` (or [`pause`]) stops that clock:
//! it moves by [`advance`], or straight to the next timer when nothing
//! else can run, so a test of an hour-long timeout takes milliseconds.
//! [`Sleep`], [`Timeout`] and [`Interval`] are `FusedFuture`/`Stream`, so
//! `futures::select!` takes them without `.fuse()`.

// Inside: each worker's timer queue is `queue.rs`; `clock.rs` is the
// pausable clock; a future polled outside the workers (in `block_on`)
// registers on worker 0 and wakes it to re-arm.

mod clock;
mod interval;
pub(crate) mod queue;
mod sleep;
mod timeout;

pub use clock::{advance, pause, resume, ClockError, Instant};
pub(crate) use clock::{now, Clock};
pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};
