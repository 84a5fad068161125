//! Timers: `sleep`, `sleep_until`, `timeout` and `interval`.
//!
//! Each worker keeps its own timer queue (`queue.rs`). A timer registers on
//! the worker that polls it; a future polled outside the workers (in
//! `block_on`) registers on worker 0 and wakes it to re-arm. A timer never
//! completes before its deadline: completion is decided by comparing
//! the runtime's clock (`clock.rs`: `Instant::now()` unless a test paused
//! it) with the deadline, never by the wake alone.

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
