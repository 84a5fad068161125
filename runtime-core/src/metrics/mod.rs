//! The hot path's instruments: each worker's latency histograms (task
//! poll duration, schedule delay, I/O operation latency, timer lateness)
//! and stall count, and named histograms and counters for users, recorded
//! without locks and merged on read. What is made of them (`Stats`, the
//! Prometheus export, the health checks) is sprint-ops'.

pub mod hist;

pub use hist::{AtomicHistogram, Snapshot, Summary};

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The cycle counter the hot path reads (TSC through `quanta`, calibrated
/// once): a read costs a few ns where `Instant::now()` costs a vDSO call.
pub(crate) fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Whether quanta reads the TSC: then the hot path reads it itself with
/// one instruction (`rdtsc`), skipping quanta's dispatch, and quanta
/// still scales the readings (same counter, same calibration).
fn tsc() -> bool {
    static TSC: OnceLock<bool> = OnceLock::new();
    *TSC.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let c = clock();
            let a = c.raw();
            // SAFETY: rdtsc has no preconditions on x86_64.
            let t = unsafe { core::arch::x86_64::_rdtsc() };
            let b = c.raw();
            let yes = a <= t && t <= b;
            if yes {
                TSC_KNOWN.store(TSC_YES, Relaxed);
            }
            yes
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    })
}

/// The hot path's clock: `rdtsc` itself where quanta reads the TSC, else
/// quanta's source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticks {
    clock: &'static quanta::Clock,
    tsc: bool,
}

impl Ticks {
    pub(crate) fn get() -> Ticks {
        Ticks {
            clock: clock(),
            tsc: tsc(),
        }
    }

    /// A reading.
    #[inline(always)]
    pub(crate) fn now(self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.tsc {
            // SAFETY: rdtsc has no preconditions on x86_64.
            return unsafe { core::arch::x86_64::_rdtsc() };
        }
        self.clock.raw()
    }

    /// Nanoseconds between two readings.
    #[inline]
    pub(crate) fn nanos(self, start: u64, end: u64) -> u64 {
        self.clock.delta_as_nanos(start, end)
    }
}

/// A raw clock reading; 0 is never returned (it means "not stamped").
#[inline]
pub fn now_raw() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if TSC_KNOWN.load(Relaxed) == TSC_YES {
        // SAFETY: rdtsc has no preconditions on x86_64.
        return unsafe { core::arch::x86_64::_rdtsc() }.max(1);
    }
    Ticks::get().now().max(1)
}

/// Whether [`tsc`] said yes, cached where the hot path reads it with one
/// load (two `OnceLock` checks cost more than the `rdtsc` they guard).
static TSC_KNOWN: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
const TSC_YES: u8 = 1;

thread_local! {
    /// Set by a worker for the poll it times (one in `sample_every`) and
    /// the maintenance after it: what that poll queues and the I/O waits
    /// it starts are timed too. A const initialiser: one load to read.
    static SAMPLING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the worker running on this thread is timing the current poll:
/// an I/O driver stamps the operations a timed poll starts (so one in
/// `sample_every` operations is timed, at the cost of one thread-local
/// load each). False off a worker and with metrics off.
#[inline(always)]
pub fn sampling() -> bool {
    SAMPLING.with(std::cell::Cell::get)
}

#[inline(always)]
pub(crate) fn set_sampling(on: bool) {
    SAMPLING.with(|s| s.set(on));
}

/// Nanoseconds between two raw readings (0 if `end` is before `start`).
#[inline]
pub fn nanos_between(start: u64, end: u64) -> u64 {
    if end <= start {
        return 0;
    }
    clock().delta_as_nanos(start, end)
}

/// Clock ticks (raw readings) in `ns` nanoseconds, rounded down.
pub(crate) fn nanos_to_ticks(ns: u64) -> u64 {
    const PROBE: u64 = 1 << 40;
    let ns_per_probe = clock().delta_as_nanos(0, PROBE).max(1);
    ((ns as u128 * PROBE as u128) / ns_per_probe as u128).min(u64::MAX as u128) as u64
}

thread_local! {
    /// Counts down to the next sampled I/O operation on this thread.
    static IO_SAMPLE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether this thread's next I/O operation is timed: one in `every`
/// (`Config::metrics_sample_every`, which [`WorkerMetrics::sample_every`]
/// holds).
#[inline]
pub fn sample_io(every: u32) -> bool {
    IO_SAMPLE.with(|c| {
        let n = c.get();
        if n == 0 {
            c.set(every.saturating_sub(1));
            true
        } else {
            c.set(n - 1);
            false
        }
    })
}

/// One worker's built-in instruments, read through the runtime's handle
/// (`Handle::histograms`, `Handle::worker_stats`); an I/O driver records
/// into it with [`WorkerMetrics::record_io`]. The worker's own thread is the only
/// writer of `poll`, `schedule_delay` and `timer_lateness`; I/O
/// completions may be recorded from other threads.
///
/// Timing every poll, queueing and I/O operation costs more than the hot
/// path can give (two clock reads and a record each: about 20 % more
/// instructions on a relay-shaped path, see `ci/bench-observability.sh`),
/// so the histograms time one in `sample_every` of them
/// (`Config::metrics_sample_every`, 1 for all). Stalls are checked on
/// every poll, and timers are all timed.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// One in how many operations the histograms time.
    pub(crate) sample_every: u32,
    /// Task poll duration.
    pub(crate) poll: AtomicHistogram,
    /// From a wake (or spawn) to the poll.
    pub(crate) schedule_delay: AtomicHistogram,
    /// From an I/O operation's submission to its completion.
    pub(crate) io: AtomicHistogram,
    /// How late timers fired past their deadline.
    pub(crate) timer_lateness: AtomicHistogram,
    /// Polls longer than the stall threshold.
    pub(crate) stalls: AtomicU64,
    /// The raw clock reading at the start of the poll in progress; 0 when
    /// the worker is not polling.
    pub(crate) polling_since: AtomicU64,
    /// The last stall, in words.
    pub(crate) last_stall: Mutex<Option<String>>,
}

impl WorkerMetrics {
    /// One in how many operations the histograms time (for an I/O driver's
    /// [`sample_io`]).
    pub fn sample_every(&self) -> u32 {
        self.sample_every
    }

    /// Records one I/O operation's latency, submission to completion.
    pub fn record_io(&self, ns: u64) {
        self.io.record(ns);
    }
}

/// A counter a user names; add from any thread.
#[derive(Debug, Clone)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A latency histogram a user names, sharded so that threads rarely share
/// a cache line; record from any thread, merged on read.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<[AtomicHistogram]>);

/// Shards per named histogram: the first `SHARDS - 1` threads that record
/// get one each and write it alone (loads and stores); every later thread
/// shares the last, with atomic adds.
const SHARDS: usize = 32;

thread_local! {
    /// This thread's shard plus one (0: not picked yet); a const
    /// initialiser, so reading it costs no lazy-init check.
    static SHARD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[inline]
fn shard() -> usize {
    SHARD.with(|s| {
        let v = s.get();
        if v != 0 {
            return v - 1;
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let v = (NEXT.fetch_add(1, Relaxed) as usize).min(SHARDS - 1);
        s.set(v + 1);
        v
    })
}

impl Histogram {
    fn new() -> Histogram {
        Histogram((0..SHARDS).map(|_| AtomicHistogram::new()).collect())
    }

    /// Records a duration.
    #[inline]
    pub fn record(&self, d: Duration) {
        self.record_ns(d.as_nanos().min(u64::MAX as u128) as u64);
    }

    /// Records a value in ns.
    #[inline]
    pub fn record_ns(&self, ns: u64) {
        let i = shard();
        // SAFETY: `shard` returns at most `SHARDS - 1`, and `new` made
        // `SHARDS` shards (the hot path skips the bounds check).
        let h = unsafe { self.0.get_unchecked(i) };
        if i < SHARDS - 1 {
            // Only this thread writes its own shard.
            h.record_single_writer(ns)
        } else {
            h.record(ns)
        }
    }

    /// Every shard merged.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::empty();
        for h in self.0.iter() {
            h.add_to(&mut s);
        }
        s
    }
}

#[derive(Default)]
struct Named {
    histograms: Vec<(String, String, Histogram)>,
    counters: Vec<(String, String, Counter)>,
}

fn named() -> &'static Mutex<Named> {
    static NAMED: OnceLock<Mutex<Named>> = OnceLock::new();
    NAMED.get_or_init(|| Mutex::new(Named::default()))
}

/// A metric name must be Prometheus-safe: `[a-z_][a-z0-9_]*`, at most 100
/// characters.
fn check_name(name: &str) -> Result<(), MetricNameError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(MetricNameError(name.to_string()))
    }
}

/// A metric name that Prometheus would not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metric name {0:?} must match [a-z_][a-z0-9_]* (at most 100 characters)")]
pub struct MetricNameError(pub String);

/// The process's histogram called `name` (created on first use), exported
/// as `sprint_<name>_seconds`. The same name gives the same histogram.
pub fn histogram(name: &str, help: &str) -> Result<Histogram, MetricNameError> {
    check_name(name)?;
    let mut n = named().lock();
    if let Some((_, _, h)) = n.histograms.iter().find(|(k, _, _)| k == name) {
        return Ok(h.clone());
    }
    let h = Histogram::new();
    n.histograms.push((name.into(), help.into(), h.clone()));
    Ok(h)
}

/// The process's counter called `name`, exported as `sprint_<name>_total`.
pub fn counter(name: &str, help: &str) -> Result<Counter, MetricNameError> {
    check_name(name)?;
    let mut n = named().lock();
    if let Some((_, _, c)) = n.counters.iter().find(|(k, _, _)| k == name) {
        return Ok(c.clone());
    }
    let c = Counter(Arc::new(AtomicU64::new(0)));
    n.counters.push((name.into(), help.into(), c.clone()));
    Ok(c)
}

/// Every named histogram: name, help, merged counts.
pub fn named_histograms() -> Vec<(String, String, Snapshot)> {
    named()
        .lock()
        .histograms
        .iter()
        .map(|(k, h, v)| (k.clone(), h.clone(), v.snapshot()))
        .collect()
}

/// Every named counter: name, help, value.
pub fn named_counters() -> Vec<(String, String, u64)> {
    named()
        .lock()
        .counters
        .iter()
        .map(|(k, h, v)| (k.clone(), h.clone(), v.get()))
        .collect()
}
