//! The runtime: built from a [`Config`] and, optionally, an I/O driver
//! factory, it plans the start on this machine (sprint-os), starts one
//! worker thread per planned CPU and a blocking pool, runs the main
//! future with [`Runtime::block_on`], and on drop cancels every task and
//! joins every thread, then puts back what it changed.
//!
//! - [`handle`](Handle): reaching a runtime from any thread.
//! - `worker_start`: one worker thread's start, on that thread.
//! - [`report`](StartReport): the typed start-up report and the counters.

mod error;
mod handle;
mod report;
mod worker_start;

pub use error::{BuildError, IdleError, SchedulingError, ShutdownTimeout};
pub use handle::{EnterGuard, Handle};
pub use report::{MemoryStats, StartMemory, StartReport, WorkerStart, WorkerStats};

use crate::blocking::BlockingPool;
use crate::config::{Config, LockMemory};
use crate::driver::{DriverFactory, WorkerInfo};
use crate::sched::worker::WorkerShared;
use crate::sched::{self, Policy, Shared};
use crate::task::raw::TaskRef;
use crossbeam_deque::Worker as Deque;
use sprint_os::StartPlan;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

/// A Sprint runtime. Dropping it shuts it down (see [`Runtime::shutdown_timeout`]).
///
/// Most programs use the `sprint` facade's `Runtime`, which always has
/// I/O; this one takes the driver factory as an argument.
///
/// ```
/// use sprint_core::{Config, Level, Runtime};
/// let rt = Runtime::new(Config::for_level(Level::Basic), None).unwrap();
/// let answer = rt.block_on(async { sprint_core::spawn(async { 6 * 7 }).await.unwrap() });
/// assert_eq!(answer, 42);
/// ```
#[derive(Debug)]
pub struct Runtime {
    handle: Handle,
    config: Config,
    report: StartReport,
    threads: Vec<thread::JoinHandle<()>>,
    done: mpsc::Receiver<()>,
    shut: bool,
    /// The process-wide settings, put back after the workers are gone.
    _process_tuning: Option<sprint_os::tune::ProcessGuard>,
    /// The starting thread's affinity, put back after the workers are gone.
    _calling_thread: Option<sprint_os::tune::AffinityGuard>,
    /// Undoes mlockall after the workers are gone (declared last: dropped
    /// after `Drop::drop` has joined them).
    _lock_all: Option<sprint_os::memory::LockAll>,
}

impl Runtime {
    /// Validates `config` against this machine, plans placement and memory,
    /// and starts the threads. Each worker waits in a driver that `driver`
    /// builds on the worker's thread; without one, workers sleep on their
    /// park token (no sockets).
    pub fn new(config: Config, driver: Option<DriverFactory>) -> Result<Runtime, BuildError> {
        let config = if config.adaptive {
            config.adaptive_start()?
        } else {
            config
        };
        let plan = StartPlan::new(&config)?;
        Runtime::start(config, plan, driver)
    }

    fn start(
        config: Config,
        start: StartPlan,
        driver: Option<DriverFactory>,
    ) -> Result<Runtime, BuildError> {
        let StartPlan {
            plan,
            mut memory,
            spare_cpus,
            allowed_cpus,
            machine,
        } = start;
        let mut process_tuning = Vec::new();
        let process_guard = sprint_os::tune::apply_process(&config, &mut process_tuning)?;
        // Where workers are pinned, the blocking pool and the thread that
        // starts the runtime (which runs `block_on`) keep off their CPUs.
        let others = plan.others(machine.allowed.as_deref().unwrap_or(&[]));
        let calling_thread = others.as_deref().and_then(|cpus| {
            sprint_os::tune::keep_calling_thread_on(cpus, "calling thread", &mut process_tuning)
        });
        sprint_os::memory::apply_allocator(&config, &mut memory.notes);
        let lock_all = if memory.lock_all {
            Some(sprint_os::memory::LockAll::apply(
                config.strict,
                &mut memory.notes,
            )?)
        } else {
            None
        };
        let planned_arenas: Vec<_> = memory.arenas.iter().flatten().cloned().collect();
        let mut arenas = std::mem::take(&mut memory.arenas).into_iter();
        let shared_config = Arc::new(config.clone());
        let id = NEXT_RUNTIME.fetch_add(1, Relaxed);
        let n = plan.workers.len();
        let policy = Policy::new(
            config.scheduling,
            config.needs_deques(),
            config.idle,
            config.idle_spin(),
            config.coop_budget,
            config.event_interval,
        );
        let steals = policy.can_steal;
        // First in, first out: a task woken runs after those woken before
        // it. A last-in first-out deque ran a task that woke itself again
        // at once and left the bottom of the stack waiting while wakes kept
        // coming (hyper under wrk at Standard on io_uring: p99 0.2 s).
        let deques: Vec<Option<Deque<TaskRef>>> =
            (0..n).map(|_| steals.then(Deque::new_fifo)).collect();
        let stealers = deques.iter().flatten().map(|d| d.stealer()).collect();
        let workers: Vec<Arc<WorkerShared>> = plan
            .workers
            .iter()
            .map(|w| {
                Arc::new(WorkerShared::new(
                    w.index,
                    id,
                    w.pinned.then_some(w.cpu),
                    config.metrics,
                    config.stall_threshold(),
                    config.metrics_sample_every,
                ))
            })
            .collect();
        let blocking = BlockingPool::new(
            config.blocking_threads(n).max(1),
            Duration::from_millis(config.blocking_keep_alive_ms),
            config.stack_size,
            others,
        )
        .map_err(|source| BuildError::Thread {
            name: "sprint-blocking-0".into(),
            source,
        })?;
        if config.metrics {
            // Calibrate the metrics clock here, not on a worker.
            let _ = crate::metrics::now_raw();
        }
        let started = Instant::now();
        let info = crate::sched::RuntimeInfo {
            config: config.clone(),
            started,
        };
        let shared = Arc::new(Shared::new(id, policy, workers, stealers, blocking, info));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let mut threads = Vec::with_capacity(n);
        let mut first_error = None;
        for (w, deque) in plan.workers.iter().zip(deques) {
            let name = format!("sprint-worker-{}", w.index);
            let start = worker_start::Start {
                shared: shared.clone(),
                index: w.index,
                cpu: w.cpu,
                pinned: w.pinned,
                arena: arenas.next().flatten(),
                deque,
                factory: driver.clone(),
                info: WorkerInfo {
                    index: w.index,
                    cpu: w.pinned.then_some(w.cpu),
                    config: shared_config.clone(),
                    spare_cpus: spare_cpus.clone(),
                    arena: None,
                    io_latency: None,
                },
                last_cpu: w.index + 1 >= allowed_cpus,
                ready: ready_tx.clone(),
                done: done_tx.clone(),
            };
            let spawned = thread::Builder::new()
                .name(name.clone())
                .stack_size(config.stack_size)
                .spawn(move || start.run());
            match spawned {
                Ok(t) => threads.push(t),
                Err(source) => {
                    first_error = Some(BuildError::Thread { name, source });
                    break;
                }
            }
        }
        drop(ready_tx);
        drop(done_tx);
        let mut rt = Runtime {
            handle: Handle { shared },
            config,
            report: StartReport {
                started,
                plan,
                process_tuning,
                memory: memory.notes,
                memory_limit: memory.limit,
                start_memory: StartMemory {
                    prealloc_per_worker: planned_arenas.iter().map(|a| a.commit).max().unwrap_or(0),
                    arenas: 0,
                    prefaulted: planned_arenas.iter().any(|a| a.prefault),
                    lock: LockMemory::None,
                    locked_bytes: 0,
                },
                workers: vec![WorkerStart::default(); n],
            },
            threads,
            done: done_rx,
            shut: false,
            _process_tuning: Some(process_guard),
            _calling_thread: calling_thread,
            _lock_all: lock_all,
        };
        if let Some(e) = first_error {
            // Threads that did start wait at the shutdown barrier for the
            // ones that never will: release them by hand.
            rt.handle.shared.begin_shutdown();
            rt.shut = true;
            return Err(e);
        }
        // Each worker reports once, in the order they get there.
        for _ in 0..rt.threads.len() {
            match ready_rx.recv() {
                Ok(Ok((index, start))) => rt.report.workers[index] = start,
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => break,
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        rt.report_locked_memory();
        tracing::debug!(runtime = id, plan = %rt.report.plan, "sprint runtime started");
        for line in rt.report.tuning() {
            tracing::info!(runtime = id, "tuning: {line}");
        }
        for line in rt.report.memory() {
            tracing::info!(runtime = id, "memory: {line}");
        }
        Ok(rt)
    }

    /// Fills the start report's memory held and locked, now that every
    /// worker has made its arena, and says it among the process settings.
    fn report_locked_memory(&mut self) {
        let stats = self.handle.memory_stats();
        let m = &mut self.report.start_memory;
        m.arenas = stats.iter().filter(|s| s.arena.capacity > 0).count();
        let arenas_locked: u64 = stats.iter().map(|s| s.arena.locked as u64).sum();
        let all = self._lock_all.as_ref().is_some_and(|l| l.locked());
        (m.lock, m.locked_bytes) = if all {
            let vmlck = sprint_os::fit::locked_bytes().unwrap_or(arenas_locked);
            (LockMemory::All, vmlck)
        } else if arenas_locked > 0 {
            (LockMemory::Arenas, arenas_locked)
        } else {
            (LockMemory::None, 0)
        };
        let asked = self.config.lock_memory;
        let outcome = match (asked, m.lock) {
            (LockMemory::None, _) => sprint_os::tune::Outcome::Unchanged {
                value: "nothing locked (lock_memory = none)".into(),
            },
            (_, LockMemory::None) => sprint_os::tune::Outcome::Skipped {
                reason: format!(
                    "lock_memory = {asked}, but nothing was locked (the memory report says why)"
                ),
            },
            _ => sprint_os::tune::Outcome::Applied {
                from: "nothing locked".into(),
                to: m.locked_line().trim_start_matches("locked: ").to_string(),
            },
        };
        self.report.process_tuning.push(sprint_os::ReportLine {
            scope: "process".into(),
            setting: "locked memory".into(),
            outcome,
        });
    }

    /// The handle, to clone and send to other threads.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The start-up report: placement, tuning, memory and I/O drivers.
    pub fn start_report(&self) -> &StartReport {
        &self.report
    }

    /// Each worker's counters (see [`Handle::worker_stats`]).
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.handle.worker_stats()
    }

    /// Runs `future` on this thread to completion. Tasks it spawns go to
    /// the workers; timers it awaits are driven by worker 0.
    ///
    /// # Panics
    /// When called from a worker thread (it would block the worker that
    /// must run the tasks being awaited), or inside another `block_on`.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    /// See [`Handle::enter`].
    pub fn enter(&self) -> EnterGuard<'_> {
        self.handle.enter()
    }

    /// See [`Handle::spawn`].
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> crate::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Shuts down: cancels every task (dropping `!Send` futures on their
    /// own worker), joins the workers and the blocking pool, within
    /// `timeout`. Threads still busy past it are left detached.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        self.shutdown_inner(timeout)
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> Result<(), ShutdownTimeout> {
        if self.shut {
            return Ok(());
        }
        self.shut = true;
        let deadline = Instant::now() + timeout;
        let shared = &self.handle.shared;
        shared.begin_shutdown();
        let mut stuck = 0;
        for _ in 0..self.threads.len() {
            if self
                .done
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .is_err()
            {
                stuck += 1;
            }
        }
        if stuck == 0 {
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
        if !shared.blocking.shutdown(Some(deadline)) {
            stuck += shared.blocking.threads();
        }
        if stuck > 0 {
            tracing::error!(stuck, ?timeout, "sprint runtime shutdown timed out");
            return Err(ShutdownTimeout { timeout, stuck });
        }
        Ok(())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let in_worker = sched::with_core(|c| c.is_some_and(|c| c.rt.id == self.handle.shared.id));
        if in_worker {
            // Joining our own thread would deadlock: shut down, don't wait.
            self.handle.shared.begin_shutdown();
            self.shut = true;
            return;
        }
        let timeout = self.config.shutdown_timeout();
        let _ = self.shutdown_inner(timeout);
    }
}
