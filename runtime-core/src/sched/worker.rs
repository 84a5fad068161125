//! One worker, in two halves.
//!
//! [`WorkerShared`] is the half other threads reach: the inbox they hand
//! tasks through, the parker they wake the worker with, its timers and
//! counters, and the count of outstanding tasks that keeps it alive while
//! any task points at it. [`Core`] is the half only the worker's thread
//! touches: its run queues, its owned list, the scratch vectors of its
//! loop, its cell cache and its I/O driver, each in an [`OwnerCell`]
//! (`owner_cell.rs` holds the one borrow argument for all of them).
//!
//! The core's jobs, one file each under `worker/`:
//! - `queue.rs`: the run queues a wake or spawn pushes on, and the order
//!   the loop takes tasks from them;
//! - `tasks.rs`: what the owner keeps per task: ids, cell memory, the
//!   owned list;
//! - `run.rs`: the loop itself (poll, coop budget, maintenance: driver
//!   turn, timers, inbox), and its unit tests;
//! - `measure.rs`: the poll clock, the histograms and the stall detector;
//! - `steal.rs`: taking work from other workers;
//! - `park.rs`: what an idle worker does: spin, steal, sleep;
//! - `shutdown.rs`: the three-phase shutdown.

mod measure;
mod park;
mod queue;
mod run;
mod shutdown;
mod steal;
mod tasks;

use super::idle::Parker;
use super::inbox::Inbox;
use super::owner_cell::OwnerCell;
use super::Shared;
use crate::driver::Driver;
use crate::task::cache::CellCache;
use crate::task::list::List;
use crate::task::raw::TaskRef;
use crate::time::queue::TimerQueue;
use crossbeam_deque::Worker as Deque;
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::VecDeque;
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
    /// Rung by the mesh when a task of this worker waits for a ring that
    /// another worker published to (`mesh/bell.rs`).
    pub(crate) mesh_bell: crate::mesh::Bell,
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
    /// The I/O driver's cross-thread handle and name, once the worker
    /// built it (type-erased: the driver's crate downcasts it).
    pub(crate) driver: std::sync::OnceLock<(Arc<dyn std::any::Any + Send + Sync>, &'static str)>,
    /// The reference that keeps this state alive for its tasks; dropped
    /// when `outstanding` reaches zero after the core retired.
    keepalive: Mutex<Option<Arc<WorkerShared>>>,
    /// The task slab over this worker's arena, once the worker made it
    /// (levels with arenas); task cells come from it.
    pub(crate) slab: std::sync::OnceLock<Arc<sprint_alloc::Slab>>,
    /// Whether the histograms are recorded (`Config::metrics`).
    pub(crate) metrics_on: bool,
    /// The built-in histograms and the stall count.
    pub(crate) metrics: Arc<crate::metrics::WorkerMetrics>,
    /// The stall threshold in ns.
    stall_ns: u64,
    /// When the worker started.
    pub(crate) started: Instant,
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
            mesh_bell: crate::mesh::Bell::new(),
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
            metrics_on,
            metrics: Arc::new(crate::metrics::WorkerMetrics {
                sample_every,
                ..Default::default()
            }),
            stall_ns: stall.as_nanos().min(u64::MAX as u128) as u64,
            started: Instant::now(),
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
    /// Pinned tasks ready to run, in order (`queue.rs`).
    local: OwnerCell<VecDeque<TaskRef>>,
    /// Stealable tasks ready to run, which other workers may take; only at
    /// the levels that can steal.
    deque: Option<Deque<TaskRef>>,
    /// Stealable tasks past the deque's
    /// [`DEQUE_ROOM`](queue::DEQUE_ROOM), in order; moved into the deque
    /// as it drains.
    overflow: OwnerCell<VecDeque<TaskRef>>,
    /// The pinned tasks this worker owns, cancelled from here at shutdown
    /// (stealable ones are in `shared.shared_tasks`).
    list: OwnerCell<List>,
    /// Set in shutdown's phase 1: nothing is queued any more.
    closed: Cell<bool>,
    /// The next task id and the end of this worker's block (`tasks.rs`).
    ids: Cell<(u64, u64)>,
    /// The metrics clock, and the reading at the end of the last poll (or
    /// when the worker came back from maintenance or idling): the next
    /// poll's start, so that a poll costs one clock read.
    clock: Option<crate::metrics::Ticks>,
    last_tick: Cell<u64>,
    /// The stall threshold in clock ticks.
    stall_ticks: u64,
    /// `task_spans`: each poll runs inside a `tracing` span of the task.
    task_spans: bool,
    /// `metrics_sample_every - 1`: a poll (and the queueings during it) is
    /// timed when `polls & sample_mask == 0`.
    sample_mask: u64,

    /// Scratch: the wakers of due timers, fired by maintenance.
    wakers: OwnerCell<Vec<Waker>>,
    /// Scratch: tasks taken from an inbox (this worker's, or stolen).
    arrivals: OwnerCell<Vec<TaskRef>>,
    /// Tasks allocated here minus tasks freed here (see `outstanding`).
    alive: Cell<isize>,
    /// Freed task cells kept for reuse, by size class (without an arena).
    cells: OwnerCell<CellCache>,
    /// `shared.slab`, copied here so the spawn path skips the `OnceLock`.
    slab: Option<Arc<sprint_alloc::Slab>>,
    /// The I/O driver, if the runtime has one: turned by maintenance and
    /// slept in by `park`, and by a socket through
    /// [`turn_now`](crate::driver::turn_now).
    driver: OwnerCell<Option<Box<dyn Driver>>>,
    /// The driver is turning: a [`turn_now`](crate::driver::turn_now)
    /// reached from inside that turn (a buffer's `Drop`, say) does not
    /// borrow it again.
    in_turn: Cell<bool>,
    /// The mesh ports to publish at the end of the turn, and the wakers
    /// waiting for the mesh bell (`mesh/local.rs`).
    pub(crate) mesh: crate::mesh::WorkerMesh,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("index", &self.shared.index)
            .finish()
    }
}

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
        let task_spans = rt.info.config.task_spans;
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
            task_spans,
            sample_mask: u64::from(sample_every.saturating_sub(1)),
            wakers: OwnerCell::new(Vec::with_capacity(64)),
            arrivals: OwnerCell::new(Vec::with_capacity(QUEUE_ROOM)),
            alive: Cell::new(0),
            cells: OwnerCell::new(CellCache::default()),
            driver: OwnerCell::new(None),
            in_turn: Cell::new(false),
            mesh: crate::mesh::WorkerMesh::default(),
        }
    }

    /// Installs this worker's I/O driver: it wakes the worker from now on
    /// (the parker must not have a waker yet).
    pub(crate) fn set_driver(&self, driver: Box<dyn Driver>) {
        self.shared.parker.register_driver(driver.unparker());
        let _ = self.shared.driver.set((driver.handle(), driver.name()));
        // SAFETY: the cell's contract (owner_cell.rs): the worker thread,
        // before the loop runs; the closure only stores.
        unsafe { self.driver.with(|d| *d = Some(driver)) };
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Cells freed from now on go to the global allocator and count
        // against `outstanding`.
        self.retire();
    }
}
