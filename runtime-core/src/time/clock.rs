//! The runtime's clock, and pausing it for tests.
//!
//! Every timer reads "now" through [`now`], never `Instant::now()`
//! directly. Until some runtime's clock is paused, `now` is
//! `std::time::Instant::now()` behind one relaxed load of a process-wide
//! flag. A paused clock stands still: `advance` moves it by hand, and
//! when the runtime has nothing to do (its one worker would sleep and no
//! `block_on` thread is running or about to run) the worker moves it to
//! the next timer's deadline at once, so a test of a one-hour timeout
//! takes no time (tokio's `start_paused`). `resume` lets it run again,
//! from where it stood.
//!
//! Pausing needs a runtime of one worker: with several, "nothing to do"
//! would need every worker's agreement at one instant, and a timer could
//! fire early while another worker still had work for it. Time spent in
//! the blocking pool does not count as work (as in tokio).
//!
//! `block_on` threads count themselves in `busy` while they run, and a
//! wake counts too from the moment it is sent until the thread has taken
//! it, so a thread about to run is never taken for idle.

use crate::context;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::time::Duration;

/// Set once any runtime's clock has been paused: before that, `now` is
/// the system's monotonic clock with no lookup.
static ANY_PAUSED: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
struct State {
    paused: bool,
    /// The clock's reading at `real_at`.
    base: std::time::Instant,
    real_at: std::time::Instant,
}

/// One runtime's clock.
#[derive(Debug)]
pub(crate) struct Clock {
    touched: AtomicBool,
    paused: AtomicBool,
    state: Mutex<State>,
    /// `block_on` threads running, plus wakes sent to them not yet taken.
    pub(crate) busy: AtomicUsize,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let now = std::time::Instant::now();
        Clock {
            touched: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            state: Mutex::new(State {
                paused: false,
                base: now,
                real_at: now,
            }),
            busy: AtomicUsize::new(0),
        }
    }

    pub(crate) fn now(&self) -> std::time::Instant {
        if !self.touched.load(Acquire) {
            return std::time::Instant::now();
        }
        let s = self.state.lock();
        if s.paused {
            s.base
        } else {
            s.base + s.real_at.elapsed()
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Acquire)
    }

    fn pause(&self, workers: usize) -> Result<(), ClockError> {
        if workers != 1 {
            return Err(ClockError::Workers { workers });
        }
        let mut s = self.state.lock();
        if s.paused {
            return Err(ClockError::AlreadyPaused);
        }
        let real = std::time::Instant::now();
        let ran = real.saturating_duration_since(s.real_at);
        s.base += ran;
        s.real_at = real;
        s.paused = true;
        ANY_PAUSED.store(true, Release);
        self.touched.store(true, Release);
        self.paused.store(true, Release);
        Ok(())
    }

    fn resume(&self) -> Result<(), ClockError> {
        let mut s = self.state.lock();
        if !s.paused {
            return Err(ClockError::NotPaused);
        }
        s.real_at = std::time::Instant::now();
        s.paused = false;
        self.paused.store(false, Release);
        Ok(())
    }

    /// Moves a paused clock forward by `by`.
    fn advance(&self, by: Duration) -> Result<(), ClockError> {
        let mut s = self.state.lock();
        if !s.paused {
            return Err(ClockError::NotPaused);
        }
        s.base += by;
        Ok(())
    }

    /// Moves a paused clock forward to `to` if it is earlier (the worker's
    /// auto-advance, when the runtime has nothing to do).
    pub(crate) fn advance_to(&self, to: std::time::Instant) {
        let mut s = self.state.lock();
        if s.paused && to > s.base {
            s.base = to;
        }
    }
}

/// Why the clock could not be paused, resumed or advanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// Called on a thread with no Sprint runtime.
    #[error("no Sprint runtime on this thread: pause, resume and advance act on the current runtime's clock (call them in a task or inside block_on)")]
    NoRuntime,
    /// The runtime has more than one worker.
    #[error("the clock can be paused only in a runtime of one worker; this one has {workers} (use `workers = 1`)")]
    Workers {
        /// How many it has.
        workers: usize,
    },
    /// `pause` on a paused clock.
    #[error("the clock is already paused")]
    AlreadyPaused,
    /// `resume` or `advance` on a running clock.
    #[error("the clock is not paused (call sprint::time::pause first)")]
    NotPaused,
}

/// Now, on the current runtime's clock (the system's monotonic clock
/// unless a runtime's clock was paused).
pub(crate) fn now() -> std::time::Instant {
    if !ANY_PAUSED.load(Relaxed) {
        return std::time::Instant::now();
    }
    context::with_current(|rt| match rt {
        Some(rt) => rt.clock.now(),
        None => std::time::Instant::now(),
    })
}

/// Stops the current runtime's clock: timers fire only when it is
/// advanced, by [`advance`] or by itself when the runtime has nothing to
/// do. For tests; `#[sprint::test(start_paused = true)]` does it before
/// the body runs.
pub fn pause() -> Result<(), ClockError> {
    context::with_current(|rt| {
        let rt = rt.ok_or(ClockError::NoRuntime)?;
        rt.clock.pause(rt.workers.len())
    })
}

/// Lets the current runtime's clock run again, from where it stood.
pub fn resume() -> Result<(), ClockError> {
    context::with_current(|rt| rt.ok_or(ClockError::NoRuntime)?.clock.resume())
}

/// Moves the current runtime's paused clock forward by `by`; the timers
/// now due fire, and this yields once so that their tasks can run.
pub async fn advance(by: Duration) -> Result<(), ClockError> {
    context::with_current(|rt| {
        let rt = rt.ok_or(ClockError::NoRuntime)?;
        rt.clock.advance(by)?;
        // The worker fires what is now due.
        for w in &rt.workers {
            w.parker.notify();
        }
        Ok::<(), ClockError>(())
    })?;
    crate::yield_now().await;
    Ok(())
}

/// A point in time on the runtime's clock (which a test may pause); a
/// `std::time::Instant` inside, converted both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(std::time::Instant);

impl Instant {
    /// Now, on the current runtime's clock.
    pub fn now() -> Instant {
        Instant(now())
    }

    /// From the standard type.
    pub fn from_std(t: std::time::Instant) -> Instant {
        Instant(t)
    }

    /// The standard type.
    pub fn into_std(self) -> std::time::Instant {
        self.0
    }

    /// Time since `earlier` (zero if it is later).
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// Time since `earlier`, or `None` if it is later.
    pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        self.0.checked_duration_since(earlier.0)
    }

    /// Time since `earlier` (zero if it is later).
    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// Time since this instant, on the runtime's clock.
    pub fn elapsed(&self) -> Duration {
        now().saturating_duration_since(self.0)
    }

    /// `self + d`, or `None` past what the type can hold.
    pub fn checked_add(&self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).map(Instant)
    }

    /// `self - d`, or `None` before what the type can hold.
    pub fn checked_sub(&self, d: Duration) -> Option<Instant> {
        self.0.checked_sub(d).map(Instant)
    }
}

impl From<std::time::Instant> for Instant {
    fn from(t: std::time::Instant) -> Instant {
        Instant(t)
    }
}

impl From<Instant> for std::time::Instant {
    fn from(t: Instant) -> std::time::Instant {
        t.0
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0 + d)
    }
}

impl std::ops::AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        self.0 += d;
    }
}

impl std::ops::Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0 - d)
    }
}

impl std::ops::SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, d: Duration) {
        self.0 -= d;
    }
}

impl std::ops::Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, other: Instant) -> Duration {
        self.duration_since(other)
    }
}
