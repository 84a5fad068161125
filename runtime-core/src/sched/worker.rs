//! One worker: its shared half (inbox, parker, timers, stats), reachable
//! from any thread, and its core (run queues, owned list), touched only by
//! the worker thread itself.
//!
//! The loop: run local tasks; every `event_interval` polls, and whenever
//! the queues run dry, do maintenance (fire due timers, take the inbox);
//! steal if the policy allows; then idle by the level's strategy.
//!
//! Shutdown runs in three phases separated by barriers, so that no queue
//! entry outlives its task: (0) every worker stops polling; (1) each closes
//! its inbox and clears its queues, which hold no references; (2) each
//! cancels every task in its owned lists, dropping `!Send` futures on
//! their own thread; (3) each closes its timers, dropping their wakers.

use super::idle::Parker;
use super::inbox::Inbox;
use super::owner_cell::OwnerCell;
use super::{Scheduling, Shared};
use crate::config::IdleStrategy;
use crate::coop;
use crate::driver::Driver;
use crate::task::cache::{self, CellCache};
use crate::task::harness;
use crate::task::list::List;
use crate::task::raw::TaskRef;
use crate::time::queue::TimerQueue;
use crossbeam_deque::{Steal, Worker as Deque};
use parking_lot::Mutex;
use std::alloc::Layout;
use std::cell::Cell;
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicIsize, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// A worker's counters; read by `Runtime::worker_stats` and `stats`. The
/// owner writes the counts as they happen (a plain load and store each,
/// see [`bump`]), so a reader sees them current while the worker is busy;
/// the queue depth and live tasks are published at each maintenance turn.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) polls: AtomicU64,
    /// Tasks spawned on its own thread.
    pub(crate) spawned: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) inbox_received: AtomicU64,
    pub(crate) timers_fired: AtomicU64,
    pub(crate) live_local_tasks: AtomicU64,
    /// Tasks of this worker that finished (completed or cancelled) on its
    /// own thread.
    pub(crate) completed: AtomicU64,
    /// Those that finished away from its core (stolen, or cancelled
    /// elsewhere), counted there.
    pub(crate) completed_elsewhere: AtomicU64,
    /// Tasks for this worker spawned from other threads, counted there.
    pub(crate) spawned_elsewhere: AtomicU64,
    /// Tasks queued to run, as last published.
    pub(crate) queue_depth: AtomicU64,
    /// Time spent polling tasks, ns.
    pub(crate) busy_ns: AtomicU64,
}

impl Counters {
    /// Tasks of this worker finished, wherever. Read before
    /// [`spawned_total`](Self::spawned_total), so that the difference never
    /// undercounts the live ones.
    pub(crate) fn completed_total(&self) -> u64 {
        self.completed.load(Relaxed) + self.completed_elsewhere.load(Relaxed)
    }

    /// Tasks of this worker spawned, wherever.
    pub(crate) fn spawned_total(&self) -> u64 {
        self.spawned.load(Relaxed) + self.spawned_elsewhere.load(Relaxed)
    }
}

fn bump(c: &AtomicU64, n: u64) {
    // Only the owning worker writes its counters: a load and a store, no
    // read-modify-write.
    c.store(c.load(Relaxed) + n, Relaxed);
}

/// The half of a worker that other threads reach.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    pub(crate) index: usize,
    pub(crate) runtime_id: u64,
    pub(crate) cpu: Option<usize>,
    pub(crate) inbox: Inbox<TaskRef>,
    pub(crate) parker: Parker,
    pub(crate) timers: Mutex<TimerQueue>,
    /// The earliest timer deadline in ns since `epoch`; `u64::MAX` if none.
    next_deadline: AtomicU64,
    epoch: Instant,
    /// Stealable tasks spawned on this worker (they may finish elsewhere).
    pub(crate) shared_tasks: Mutex<List>,
    pub(crate) counters: Counters,
    /// The kernel's thread id, once the thread runs.
    pub(crate) tid: AtomicI32,
    /// Tasks owned by this worker and not yet freed, counted as the worker
    /// frees them elsewhere (see `hold_remote`), plus [`HOLD_BIAS`] while
    /// the core runs. Task headers point here without a reference count.
    outstanding: AtomicIsize,
    /// The I/O driver's handle and name, once the worker built it.
    #[allow(clippy::type_complexity)]
    pub(crate) driver:
        std::sync::OnceLock<(Arc<dyn std::any::Any + Send + Sync>, &'static str, String)>,
    /// The reference that keeps this state alive for its tasks; dropped
    /// when `outstanding` reaches zero after the core retired.
    keepalive: Mutex<Option<Arc<WorkerShared>>>,
    /// The task slab over this worker's arena, once the worker made it
    /// (levels with arenas); task cells come from it.
    pub(crate) slab: std::sync::OnceLock<Arc<sprint_alloc::Slab>>,
    /// What the worker's memory set-up could not have, in words.
    pub(crate) memory_notes: Mutex<Vec<String>>,
    /// The worker thread's tuning report.
    pub(crate) tune_report: Mutex<Vec<crate::tune::ReportLine>>,
    /// Whether the histograms are recorded (`Config::metrics`).
    pub(crate) metrics_on: bool,
    /// The built-in histograms and the stall count.
    pub(crate) metrics: Arc<crate::metrics::WorkerMetrics>,
    /// The stall threshold in ns.
    stall_ns: u64,
    /// When the worker started.
    pub(crate) started: Instant,
    /// The scheduling class and priority the worker settled on after
    /// tuning, for drift checks.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) expected_sched: Mutex<Option<(i32, i32)>>,
}

/// Added to `outstanding` while the core runs, so that frees counted on
/// other threads cannot bring it to zero before the core adds its own.
const HOLD_BIAS: isize = 1 << 48;

impl WorkerShared {
    pub(crate) fn new(
        index: usize,
        runtime_id: u64,
        cpu: Option<usize>,
        metrics_on: bool,
        stall: Duration,
        sample_every: u32,
    ) -> WorkerShared {
        WorkerShared {
            index,
            runtime_id,
            cpu,
            inbox: Inbox::new(),
            parker: Parker::new(),
            timers: Mutex::new(TimerQueue::default()),
            next_deadline: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            shared_tasks: Mutex::new(List::default()),
            counters: Counters::default(),
            tid: AtomicI32::new(0),
            outstanding: AtomicIsize::new(HOLD_BIAS),
            keepalive: Mutex::new(None),
            driver: std::sync::OnceLock::new(),
            slab: std::sync::OnceLock::new(),
            memory_notes: Mutex::new(Vec::new()),
            tune_report: Mutex::new(Vec::new()),
            metrics_on,
            metrics: Arc::new(crate::metrics::WorkerMetrics {
                sample_every,
                ..Default::default()
            }),
            stall_ns: stall.as_nanos().min(u64::MAX as u128) as u64,
            started: Instant::now(),
            expected_sched: Mutex::new(None),
        }
    }

    /// A task for this worker was allocated on another thread.
    pub(crate) fn hold_remote(&self) {
        self.outstanding.fetch_add(1, Relaxed);
    }

    /// `n` tasks of this worker were freed (negative: held) on a thread
    /// that is not its core.
    fn release(&self, n: isize) {
        if self.outstanding.fetch_sub(n, AcqRel) == n {
            let last = self.keepalive.lock().take();
            drop(last);
        }
    }

    /// One task of this worker was freed away from its core.
    ///
    /// # Safety
    /// `ws` is the owner of a task that was alive until now.
    pub(crate) unsafe fn release_remote(ws: *const WorkerShared) {
        // SAFETY: the freed task was counted in `outstanding`, so the state
        // was alive when the caller started; `release` touches it no more
        // after the count reaches zero.
        unsafe { (*ws).release(1) }
    }

    /// Hands a task to this worker from another thread. Gives it back when
    /// the worker has shut down.
    pub(crate) fn push_remote(&self, task: TaskRef) -> Result<(), TaskRef> {
        if self.metrics_on {
            stamp(task);
        }
        self.inbox.push(task)?;
        self.parker.notify();
        Ok(())
    }

    fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Called with the timer lock held after a registration at `deadline`.
    /// Returns true if the worker must re-arm its sleep.
    pub(crate) fn timer_registered(&self, deadline: Instant) -> bool {
        let d = self.ns(deadline).max(1);
        self.next_deadline.fetch_min(d, AcqRel) > d
    }

    fn refresh_deadline(&self, q: &mut TimerQueue) {
        let d = q.next_deadline().map_or(u64::MAX, |d| self.ns(d).max(1));
        self.next_deadline.store(d, Release);
    }
}

/// Marks when a task was queued, unless an earlier queueing (the inbox)
/// already did.
#[inline]
fn stamp(task: TaskRef) {
    let q = &task.header().queued_at;
    if q.load(Relaxed) == 0 {
        q.store(crate::metrics::now_raw(), Relaxed);
    }
}

/// Tasks a work-stealing deque holds at most. crossbeam-deque's buffer
/// starts with room for 64 and doubles when a push finds it full, and
/// halves when a pop leaves it under a quarter full: each step allocates
/// a buffer (and retires the old one through the epoch collector), so a
/// burst of 1,000 spawns allocated on every burst. Kept at or under its
/// first buffer it never resizes; what does not fit waits in the worker's
/// overflow queue (stealable once it moves into the deque).
const DEQUE_ROOM: usize = 64;

/// Room the worker's own queues (overflow, the scratch vector its inbox
/// drains into) start with: a burst up to this size never makes them
/// grow, and they keep what they grew to.
pub(crate) const QUEUE_ROOM: usize = 4096;

/// The half of a worker that only its thread touches. Its mutable parts
/// are [`OwnerCell`]s: the `Core` is made on the worker thread and used
/// only there (`sched::with_core`), so every borrow satisfies rule 1 of
/// the cell's contract, and each one says why it satisfies rule 2.
pub(crate) struct Core {
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) rt: Arc<Shared>,
    local: OwnerCell<VecDeque<TaskRef>>,
    deque: Option<Deque<TaskRef>>,
    /// Stealable tasks past the deque's [`DEQUE_ROOM`], in order; moved
    /// into the deque as it drains.
    overflow: OwnerCell<VecDeque<TaskRef>>,
    list: OwnerCell<List>,
    closed: Cell<bool>,
    ids: Cell<(u64, u64)>,
    /// The metrics clock, and the reading at the end of the last poll (or
    /// when the worker came back from maintenance or idling): the next
    /// poll's start, so that a poll costs one clock read.
    clock: Option<crate::metrics::Ticks>,
    last_tick: Cell<u64>,
    /// The stall threshold in clock ticks.
    stall_ticks: u64,
    /// `metrics_sample_every - 1`: a poll (and the queueings during it) is
    /// timed when `polls & sample_mask == 0`.
    sample_mask: u64,

    wakers: OwnerCell<Vec<Waker>>,
    arrivals: OwnerCell<Vec<TaskRef>>,
    /// Tasks allocated here minus tasks freed here (see `outstanding`).
    alive: Cell<isize>,
    cells: OwnerCell<CellCache>,
    /// `shared.slab`, copied here so the spawn path skips the `OnceLock`.
    slab: Option<Arc<sprint_alloc::Slab>>,
    driver: OwnerCell<Option<Box<dyn Driver>>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("index", &self.shared.index)
            .finish()
    }
}

const ID_BLOCK: u64 = 4096;

impl Core {
    pub(crate) fn new(
        shared: Arc<WorkerShared>,
        rt: Arc<Shared>,
        deque: Option<Deque<TaskRef>>,
    ) -> Core {
        // Tasks point at `shared` without counting; this reference keeps it
        // alive until the last of them is freed (see `outstanding`).
        *shared.keepalive.lock() = Some(shared.clone());
        let slab = shared.slab.get().cloned();
        let shared_metrics_on = shared.metrics_on;
        let sample_every = shared.metrics.sample_every;
        let stall_ticks = if shared.metrics_on {
            crate::metrics::nanos_to_ticks(shared.stall_ns)
        } else {
            u64::MAX
        };
        Core {
            slab,
            shared,
            rt,
            local: OwnerCell::new(VecDeque::with_capacity(1024)),
            deque,
            overflow: OwnerCell::new(VecDeque::with_capacity(QUEUE_ROOM)),
            list: OwnerCell::new(List::default()),
            closed: Cell::new(false),
            ids: Cell::new((0, 0)),
            // Calibrated by the runtime's builder before the workers start.
            clock: shared_metrics_on.then(crate::metrics::Ticks::get),
            last_tick: Cell::new(0),
            stall_ticks,
            sample_mask: u64::from(sample_every.saturating_sub(1)),
            wakers: OwnerCell::new(Vec::with_capacity(64)),
            arrivals: OwnerCell::new(Vec::with_capacity(QUEUE_ROOM)),
            alive: Cell::new(0),
            cells: OwnerCell::new(CellCache::default()),
            driver: OwnerCell::new(None),
        }
    }

    /// Installs this worker's I/O driver: it wakes the worker from now on
    /// (the parker must not have a waker yet).
    pub(crate) fn set_driver(&self, driver: Box<dyn Driver>) {
        self.shared.parker.register_driver(driver.unparker());
        let _ = self
            .shared
            .driver
            .set((driver.handle(), driver.name(), driver.describe()));
        // SAFETY: the cell's contract (owner_cell.rs): the worker thread,
        // before the loop runs; the closure only stores.
        unsafe { self.driver.with(|d| *d = Some(driver)) };
    }

    /// Turns the driver, if any; true if it has one.
    fn turn_driver(&self, timeout: Option<Duration>) -> bool {
        // SAFETY: the cell's contract (owner_cell.rs); `turn` only wakes
        // tasks (queueing them), it never polls one, so it cannot reach the
        // driver again.
        unsafe {
            self.driver.with(|driver| {
                let Some(driver) = driver else {
                    return false;
                };
                if let Err(e) = driver.turn(timeout) {
                    tracing::warn!(worker = self.shared.index, error = %e, "the I/O driver failed to turn");
                }
                true
            })
        }
    }

    /// Memory for a task cell owned by this worker: from the arena's slab
    /// when the worker has one (a cell too large, or a full arena, falls
    /// back to the global allocator and is counted), else the cell cache.
    pub(crate) fn alloc_cell(&self, class: u8, layout: Layout) -> NonNull<u8> {
        self.alive.set(self.alive.get() + 1);
        if let Some(slab) = self.slab.as_deref() {
            if class != cache::EXACT {
                // SAFETY: this is the slab's owner thread.
                if let Some(p) = unsafe { slab.take(class as usize) } {
                    return p;
                }
            }
            slab.count_fallback();
            return cache::alloc_any(class, layout);
        }
        if class == cache::EXACT {
            return cache::alloc_any(class, layout);
        }
        // SAFETY: the cell's contract (owner_cell.rs): spawns run on the
        // owner's thread, and `take` calls no code of ours.
        unsafe { self.cells.with(|c| c.take(class)) }
    }

    /// Whether a cell of `class` can come from this worker's arena now
    /// (true without an arena: the global allocator serves).
    pub(crate) fn can_alloc(&self, class: u8) -> bool {
        match self.slab.as_deref() {
            None => true,
            // SAFETY: this is the slab's owner thread.
            Some(slab) => class != cache::EXACT && unsafe { slab.can_take(class as usize) },
        }
    }

    /// A cell owned by this worker was freed on its thread.
    ///
    /// # Safety
    /// `p` is the dead cell of a task of this worker, of this class and
    /// layout.
    pub(crate) unsafe fn free_cell(&self, p: NonNull<u8>, class: u8, layout: Layout) {
        self.alive.set(self.alive.get() - 1);
        if let Some(slab) = self.slab.as_deref() {
            if slab.contains(p.as_ptr()) {
                // SAFETY: the owner thread; a cell of this class from this
                // slab (it lies in the arena), dead (the caller's contract).
                unsafe { slab.give(p, class as usize) };
            } else {
                // SAFETY: a fallback cell from the global allocator.
                unsafe { cache::free_any(p, class, layout) };
            }
            return;
        }
        if class == cache::EXACT {
            // SAFETY: the caller's contract.
            unsafe { cache::free_any(p, class, layout) }
        } else {
            // SAFETY: the cell's contract as in `alloc_cell` (`give` calls
            // no code of ours); the caller's contract for `p`.
            unsafe { self.cells.with(|c| c.give(p, class)) }
        }
    }

    /// The core stops: hand the count of its tasks still alive to the
    /// shared counter, so that the last one freed releases the state.
    fn retire(&self) {
        let alive = self.alive.replace(0);
        self.shared.release(HOLD_BIAS - alive);
    }

    /// A process-unique task id, drawn from a block this worker owns.
    pub(crate) fn next_id(&self) -> u64 {
        let (mut next, end) = self.ids.get();
        if next == end {
            next = super::NEXT_ID.fetch_add(ID_BLOCK, Relaxed);
            self.ids.set((next + 1, next + ID_BLOCK));
        } else {
            self.ids.set((next + 1, end));
        }
        next
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Queues a task on this worker.
    pub(crate) fn push_local(&self, task: TaskRef) {
        if self.closed.get() {
            return;
        }
        // Queueings during a timed poll (and the maintenance after it)
        // are timed: `polls` is that poll's number until it ends.
        if self.clock.is_some() && self.shared.counters.polls.load(Relaxed) & self.sample_mask == 0
        {
            stamp(task);
        }
        match &self.deque {
            Some(d) if task.header().stealable => {
                // SAFETY: the cell's contract (owner_cell.rs); the closure
                // touches only the deque.
                unsafe {
                    self.overflow.with(|overflow| {
                        if overflow.is_empty() && d.len() < DEQUE_ROOM {
                            d.push(task);
                        } else {
                            overflow.push_back(task);
                        }
                    })
                };
                self.rt.wake_a_sleeper(self.shared.index);
            }
            // SAFETY: the cell's contract (owner_cell.rs); `push_back`
            // calls no code of ours.
            _ => unsafe { self.local.with(|q| q.push_back(task)) },
        }
    }

    /// Counts a new task and, unless it is stealable (those live in the
    /// locked list), links it into this worker's owned list.
    pub(crate) fn link(&self, task: TaskRef, stealable: bool) {
        if !stealable {
            // SAFETY: the cell's contract (owner_cell.rs); `push` touches
            // only the links. The task is in no list yet (`List::push`).
            unsafe { self.list.with(|l| l.push(task)) };
        }
        bump(&self.shared.counters.spawned, 1);
    }

    /// Counts a task that finished on this thread.
    pub(crate) fn count_completed(&self) {
        bump(&self.shared.counters.completed, 1);
    }

    /// Unlinks a finished non-stealable task.
    pub(crate) fn unlink(&self, task: TaskRef) {
        // SAFETY: as in `link`; `remove` ignores a task that is not linked.
        unsafe { self.list.with(|l| l.remove(task)) };
    }

    fn next_task(&self) -> Option<TaskRef> {
        // SAFETY: the cell's contract (owner_cell.rs); a queue operation
        // calls no code of ours.
        if let Some(t) = unsafe { self.local.with(|q| q.pop_front()) } {
            return Some(t);
        }
        let d = self.deque.as_ref()?;
        if let Some(t) = d.pop() {
            return Some(t);
        }
        // The deque is empty: the oldest of the overflow go into it (where
        // other workers can steal them), up to half its room.
        // SAFETY: as above; the closure touches only the deque besides.
        unsafe {
            self.overflow.with(|overflow| {
                for _ in 0..DEQUE_ROOM / 2 {
                    match overflow.pop_front() {
                        Some(t) => d.push(t),
                        None => break,
                    }
                }
            })
        };
        d.pop()
    }

    fn has_local_work(&self) -> bool {
        // SAFETY: the cell's contract (owner_cell.rs); `is_empty` calls no
        // code of ours.
        !unsafe { self.local.with(|q| q.is_empty()) }
            || self.deque.as_ref().is_some_and(|d| !d.is_empty())
            // SAFETY: as above.
            || !unsafe { self.overflow.with(|q| q.is_empty()) }
    }

    fn run_task(&self, task: TaskRef) {
        coop::reset(self.rt.policy.coop_budget);
        match self.clock {
            Some(clock) => self.run_task_measured(task, clock),
            None => harness::run(task, |_| {}),
        }
        bump(&self.shared.counters.polls, 1);
    }

    /// A poll measured: one clock read at its end (its start is the last
    /// poll's end), checked against the stall threshold every time; one in
    /// `sample_every` polls goes into the duration histogram, and a task
    /// stamped when queued records its schedule delay.
    #[inline]
    fn run_task_measured(&self, task: TaskRef, clock: crate::metrics::Ticks) {
        let m = &*self.shared.metrics;
        let start = self.last_tick.get();
        let header = task.header();
        let queued = header.queued_at.load(Relaxed);
        if queued != 0 {
            header.queued_at.store(0, Relaxed);
            m.schedule_delay
                .record_single_writer(clock.nanos(queued, start));
        }
        // `polls` counts every poll already: sample on it.
        // (`sample_every` is a power of two: this is a mask, no division.)
        let sampled = self.shared.counters.polls.load(Relaxed) & self.sample_mask == 0;
        m.polling_since.store(start, Relaxed);
        harness::run(task, |header| {
            let end = clock.now();
            self.last_tick.set(end);
            if end.wrapping_sub(start) > self.stall_ticks {
                self.stalled(header, clock.nanos(start, end));
            }
            if sampled {
                let ns = clock.nanos(start, end);
                m.poll.record_single_writer(ns);
                // Busy time, estimated from the sampled polls.
                bump(&self.shared.counters.busy_ns, ns * m.sample_every as u64);
            }
        });
        m.polling_since.store(0, Relaxed);
    }

    /// Restarts the poll clock after time not spent polling (maintenance,
    /// idling).
    #[inline]
    fn resume_clock(&self) {
        if let Some(clock) = self.clock {
            self.last_tick.set(clock.now());
        }
    }

    /// A poll ran past the stall threshold: count it and say which task.
    #[cold]
    fn stalled(&self, header: &crate::task::raw::Header, ns: u64) {
        if ns == 0 {
            // The clock went backwards (a thread moved between cores
            // whose counters differ): no stall.
            return;
        }
        let m = &self.shared.metrics;
        m.stalls.fetch_add(1, Relaxed);
        let meta = &header.meta;
        let name = meta.name.as_deref().unwrap_or("(unnamed)");
        let what = format!(
            "worker {}: task {} {:?} spawned at {} polled for {:?} (threshold {:?})",
            self.shared.index,
            meta.id,
            name,
            meta.location,
            Duration::from_nanos(ns),
            Duration::from_nanos(self.shared.stall_ns),
        );
        tracing::warn!(
            worker = self.shared.index,
            task.id = %meta.id,
            task.name = name,
            task.spawned_at = %meta.location,
            poll_us = ns / 1_000,
            threshold_us = self.shared.stall_ns / 1_000,
            "stall: a task poll ran past the threshold"
        );
        *m.last_stall.lock() = Some(what);
    }

    fn publish(&self) {
        let c = &self.shared.counters;
        // SAFETY: the cell's contract (owner_cell.rs); `len` calls no code
        // of ours.
        let queued = unsafe { self.local.with(|q| q.len()) + self.overflow.with(|q| q.len()) }
            + self.deque.as_ref().map_or(0, |d| d.len());
        c.queue_depth.store(queued as u64, Relaxed);
        // SAFETY: as above.
        c.live_local_tasks
            .store(unsafe { self.list.with(|l| l.len()) } as u64, Relaxed);
    }

    /// Dispatches ready I/O (if `io`), fires due timers and takes the
    /// inbox. True if it found work.
    fn maintenance(&self, io: bool) -> bool {
        if io {
            self.turn_driver(Some(Duration::ZERO));
        }
        let mut found = self.has_local_work();
        let due = self.shared.next_deadline.load(Acquire);
        if due != u64::MAX && self.shared.ns(Instant::now()) >= due {
            // SAFETY: the cell's contract (owner_cell.rs). Only this
            // function and nothing it calls borrows the timers' scratch
            // vector: a waker queues its task (other cells) or runs code
            // that cannot reach the worker loop. The vector is empty
            // between uses.
            found |= unsafe {
                self.wakers.with(|wakers| {
                    {
                        let mut q = self.shared.timers.lock();
                        let now = Instant::now();
                        let lateness = self
                            .shared
                            .metrics_on
                            .then_some(&self.shared.metrics.timer_lateness);
                        q.expire(now, wakers, lateness);
                        self.shared.refresh_deadline(&mut q);
                    }
                    bump(&self.shared.counters.timers_fired, wakers.len() as u64);
                    let fired = !wakers.is_empty();
                    for w in wakers.drain(..) {
                        w.wake();
                    }
                    fired
                })
            };
        }
        if self.shared.inbox.is_nonempty() {
            // SAFETY: the cell's contract (owner_cell.rs). The arrivals
            // scratch vector is borrowed only here and in `steal`, both
            // called only by the loop; `arrive` queues, links and drops
            // references, and no task runs. It is empty between uses.
            let n = unsafe {
                self.arrivals.with(|arrivals| {
                    let n = self.shared.inbox.drain_into(arrivals);
                    bump(&self.shared.counters.inbox_received, n as u64);
                    for task in arrivals.drain(..) {
                        self.arrive(task);
                    }
                    n
                })
            };
            found |= n > 0;
        }
        found
    }

    /// A task came through the inbox.
    fn arrive(&self, task: TaskRef) {
        let header = task.header();
        if header.stealable {
            self.push_local(task);
            return;
        }
        self.link_arrival(task);
        header.state.clear_remote_queued();
        harness::wake_local(self, task);
        // The inbox entry's reference.
        harness::drop_reference(task);
    }

    /// Links a pinned task spawned from another thread, on arrival.
    fn link_arrival(&self, task: TaskRef) {
        // SAFETY: `link_on_arrival` was written by the spawner before the
        // inbox's mutex published the task; only this thread touches it now.
        let links = unsafe { &mut *task.header().links.get() };
        if links.link_on_arrival {
            links.link_on_arrival = false;
            // Not counted as a spawn here: the spawning thread counted it.
            // SAFETY: the cell's contract (owner_cell.rs); `push` touches
            // only the links. The task is in no list yet (`List::push`).
            unsafe { self.list.with(|l| l.push(task)) };
        }
    }

    /// Takes work from another worker: from its deque, else the stealable
    /// tasks waiting in its inbox (spawned or woken from another thread),
    /// which a worker that is busy, or blocked in a task for seconds, would
    /// not take before it is free again.
    fn steal(&self) -> bool {
        let Some(deque) = &self.deque else {
            return false;
        };
        let n = self.rt.stealers.len();
        for k in 1..n {
            let victim = (self.shared.index + k) % n;
            loop {
                match self.rt.stealers[victim].steal_batch_and_pop(deque) {
                    Steal::Success(t) => {
                        bump(&self.shared.counters.steals, 1);
                        deque.push(t);
                        return true;
                    }
                    Steal::Retry => continue,
                    Steal::Empty => break,
                }
            }
        }
        for k in 1..n {
            let victim = &self.rt.workers[(self.shared.index + k) % n];
            // SAFETY: the cell's contract (owner_cell.rs), as in
            // `maintenance`: the loop alone borrows the arrivals, and
            // `push_local` only queues. Empty between uses (`maintenance`
            // drains it before it returns).
            let got = unsafe {
                self.arrivals.with(|arrivals| {
                    // Within the vector's capacity, so this never allocates.
                    let room = (arrivals.capacity() - arrivals.len()).min(32);
                    let got = victim
                        .inbox
                        .steal_into(arrivals, room, |t| t.header().stealable);
                    if got > 0 {
                        bump(&self.shared.counters.steals, got as u64);
                    }
                    for task in arrivals.drain(..) {
                        // A stealable task needs nothing from the worker it
                        // was sent to (`arrive` only queues it).
                        self.push_local(task);
                    }
                    got
                })
            };
            if got > 0 {
                return true;
            }
        }
        false
    }

    fn shutting_down(&self) -> bool {
        self.rt.shutdown.load(Acquire)
    }

    /// The worker loop; returns at shutdown, after cancelling every task.
    pub(crate) fn run(&self) {
        let interval = self.rt.policy.event_interval.max(1);
        let mut tick: u32 = 0;
        if self.deque.is_some() {
            // A thread's first steal registers it with crossbeam's epoch
            // collector (one allocation). A worker busy spawning steals
            // for the first time whenever it first runs dry, which was
            // inside a no-allocation test's window: register now, with a
            // steal from a deque of nobody's.
            let _ = Deque::<TaskRef>::new_fifo().stealer().steal();
        }
        self.resume_clock();
        loop {
            if let Some(task) = self.next_task() {
                self.run_task(task);
                tick = tick.wrapping_add(1);
                if tick.is_multiple_of(interval) {
                    self.maintenance(true);
                    self.publish();
                    if self.shutting_down() {
                        break;
                    }
                    self.resume_clock();
                }
                continue;
            }
            // A worker about to park skips the non-blocking look at I/O:
            // the park waits in the driver, which finds the same events
            // (and on io_uring submits and waits in one system call).
            if self.maintenance(self.rt.policy.idle() != IdleStrategy::Park) {
                self.resume_clock();
                continue;
            }
            if self.shutting_down() {
                break;
            }
            if self.rt.policy.scheduling() == Scheduling::WorkStealing && self.steal() {
                self.resume_clock();
                continue;
            }
            self.publish();
            self.idle();
            self.resume_clock();
        }
        self.publish();
        self.shutdown();
    }

    fn idle(&self) {
        let policy = &self.rt.policy;
        let idle = policy.idle();
        let spin = match idle {
            IdleStrategy::Park => None,
            IdleStrategy::SpinThenPark => Some(policy.idle_spin()),
            IdleStrategy::BusyPoll => Some(Duration::from_millis(1)),
        };
        if let Some(spin) = spin {
            let until = Instant::now() + spin;
            let mut i: u32 = 0;
            loop {
                std::hint::spin_loop();
                if self.shared.inbox.is_nonempty() || self.has_local_work() || self.shutting_down()
                {
                    return;
                }
                i = i.wrapping_add(1);
                if i.is_multiple_of(64) {
                    if self.maintenance(true) {
                        return;
                    }
                    if Instant::now() >= until {
                        break;
                    }
                }
            }
        }
        if policy.scheduling() != Scheduling::ThreadPerCore && self.steal() {
            return;
        }
        if idle == IdleStrategy::BusyPoll {
            return;
        }
        self.park();
    }

    fn park(&self) {
        let (timeout, armed) = {
            let mut q = self.shared.timers.lock();
            self.shared.refresh_deadline(&mut q);
            let timeout = q
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            (timeout, self.shared.next_deadline.load(Acquire))
        };
        if timeout == Some(Duration::ZERO) {
            return;
        }
        let parker = &self.shared.parker;
        parker.prepare();
        self.rt.sleepers.fetch_add(1, SeqCst);
        // After `prepare`, whatever another thread queued or registered
        // before its `notify` is visible here (idle.rs): an inbox item, or
        // a timer earlier than the one this sleep was armed for.
        if self.shared.inbox.is_nonempty()
            || self.shutting_down()
            || self.has_local_work()
            || self.shared.next_deadline.load(Acquire) < armed
        {
            parker.cancel();
        } else {
            bump(&self.shared.counters.parks, 1);
            // SAFETY: the cell's contract (owner_cell.rs); `is_some` calls
            // no code of ours.
            if unsafe { self.driver.with(|d| d.is_some()) } {
                parker.park_with(|| {
                    self.turn_driver(timeout);
                });
            } else {
                parker.park(timeout);
            }
        }
        self.rt.sleepers.fetch_sub(1, SeqCst);
    }

    fn shutdown(&self) {
        let barrier = &self.rt.shutdown_barrier;
        barrier.wait();
        // Phase 1: close and clear the queues.
        self.closed.set(true);
        let mut arrivals = Vec::new();
        self.shared.inbox.close(&mut arrivals);
        for task in arrivals {
            if !task.header().stealable {
                // Linked, so that phase 2 cancels it; REMOTE_QUEUED stays
                // set, and the closed inbox refuses later pushes.
                self.link_arrival(task);
                harness::drop_reference(task);
            }
        }
        // SAFETY: the cell's contract (owner_cell.rs); the queues hold
        // plain pointers, so `clear` calls no code of ours.
        unsafe { self.local.with(|q| q.clear()) };
        // SAFETY: as above. Stealable tasks: the owner's locked list
        // cancels them in phase 2.
        unsafe { self.overflow.with(|q| q.clear()) };
        if let Some(d) = &self.deque {
            while d.pop().is_some() {}
        }
        barrier.wait();
        // Phase 2: cancel every task this worker owns.
        // SAFETY: the cell's contract (owner_cell.rs); the borrow ends with
        // `pop`, before the task's drop code runs (which unlinks through
        // this cell).
        while let Some(task) = unsafe { self.list.with(|l| l.pop()) } {
            harness::shutdown(task);
        }
        loop {
            let task = self.shared.shared_tasks.lock().pop();
            let Some(task) = task else { break };
            harness::shutdown(task);
        }
        barrier.wait();
        // Phase 3: drop the timers' wakers.
        let wakers = self.shared.timers.lock().close();
        drop(wakers);
        // SAFETY: the cell's contract (owner_cell.rs); the borrow ends with
        // `take`, before the driver drops. Every task is gone, so no socket
        // of this worker is left to use the driver.
        drop(unsafe { self.driver.with(|d| d.take()) });
        self.publish();
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Cells freed from now on go to the global allocator and count
        // against `outstanding`.
        self.retire();
    }
}
