//! The runtime: built from a [`Config`], it starts one pinned worker thread
//! per planned CPU and a blocking pool, runs the main future with
//! [`Runtime::block_on`], and on drop cancels every task and joins every
//! thread.

use crate::blocking::BlockingPool;
use crate::config::{Config, ConfigError};
use crate::driver::{DriverFactory, WorkerInfo};
use crate::sched::worker::{Core, WorkerShared};
use crate::sched::{self, Policy, Shared};
use crate::task::raw::TaskRef;
use crate::topology::{self, Plan};
use crossbeam_deque::Worker as Deque;
use serde::Serialize;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

/// Why a runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The `/metrics` server could not listen on its address.
    #[error("cannot serve /metrics on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start thread {name}: {source}")]
    Thread {
        /// The thread's name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A worker's I/O driver could not be built.
    #[error("cannot start the I/O driver of sprint-worker-{worker}: {source}")]
    Driver {
        /// The worker.
        worker: usize,
        /// Why.
        source: std::io::Error,
    },
    /// OS tuning could not be applied (strict mode), or conflicts with
    /// another runtime of this process.
    #[error("tuning: {0}")]
    Tune(#[from] crate::tune::TuneError),
    /// Memory could not be set up as asked (strict mode), or at all.
    #[error("memory: {0}")]
    Memory(String),
    /// A worker could not be pinned to its CPU.
    #[error(
        "cannot pin sprint-worker-{worker} to CPU {cpu}: the kernel refused the affinity change"
    )]
    Pin {
        /// The worker.
        worker: usize,
        /// Its planned CPU.
        cpu: usize,
    },
}

/// [`Handle::set_idle`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker {worker} runs real-time and must not spin: {why}")]
pub struct IdleError {
    /// The worker.
    pub worker: usize,
    /// Why.
    pub why: String,
}

/// [`Handle::set_scheduling`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheduling = {scheduling} needs a restart: the runtime started thread-per-core, so its workers have no stealable deques")]
pub struct SchedulingError {
    /// The scheduling asked for.
    pub scheduling: crate::config::Scheduling,
}

/// Shutdown did not finish within its deadline; the threads named are
/// left running, detached.
#[derive(Debug, thiserror::Error)]
#[error("shutdown did not finish within {timeout:?}: {stuck} thread(s) still busy")]
pub struct ShutdownTimeout {
    /// The deadline that passed.
    pub timeout: Duration,
    /// How many threads had not finished.
    pub stuck: usize,
}

/// A worker's counters, read without stopping it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WorkerStats {
    /// The worker index.
    pub index: usize,
    /// Its planned CPU.
    pub cpu: usize,
    /// Whether it is pinned there.
    pub pinned: bool,
    /// The kernel's thread id.
    pub tid: i32,
    /// Task polls.
    pub polls: u64,
    /// Tasks spawned onto this worker.
    pub spawned: u64,
    /// Tasks this worker stole.
    pub steals: u64,
    /// Times it went to sleep.
    pub parks: u64,
    /// Times another thread had to wake it with a system call.
    pub unparks: u64,
    /// Tasks that reached it through its inbox.
    pub inbox_received: u64,
    /// Timers it fired.
    pub timers_fired: u64,
    /// Live tasks it owns (not counting stealable ones).
    pub live_tasks: u64,
}

/// A handle to a runtime, usable from any thread, inside or outside it.
#[derive(Debug, Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

/// A Sprint runtime. Dropping it shuts it down (see [`Runtime::shutdown_timeout`]).
///
/// ```
/// use sprint_core::{Config, Level, Runtime};
/// let rt = Runtime::new(Config::for_level(Level::Basic)).unwrap();
/// let answer = rt.block_on(async { sprint_core::spawn(async { 6 * 7 }).await.unwrap() });
/// assert_eq!(answer, 42);
/// ```
#[derive(Debug)]
pub struct Runtime {
    handle: Handle,
    config: Config,
    plan: Plan,
    threads: Vec<thread::JoinHandle<()>>,
    done: mpsc::Receiver<()>,
    shut: bool,
    memory_notes: Vec<String>,
    tune_report: Vec<crate::tune::ReportLine>,
    /// The process-wide settings, put back after the workers are gone.
    _process_tuning: Option<crate::tune::ProcessGuard>,
    /// The `/metrics` server, if one was asked for.
    metrics_server: Option<crate::metrics::export::Server>,
    /// The adaptive controller, if on.
    adaptive: Option<crate::adaptive::Controller>,
    /// Undoes mlockall after the workers are gone (declared last: dropped
    /// after `Drop::drop` has joined them).
    _lock_all: Option<crate::memory::LockAll>,
}

impl Runtime {
    /// Validates `config`, plans placement and starts the threads, without
    /// an I/O driver (workers sleep on their park token).
    pub fn new(config: Config) -> Result<Runtime, BuildError> {
        Runtime::with_driver(config, None)
    }

    /// [`Runtime::new`], each worker waiting in a driver that `driver`
    /// builds on the worker's thread.
    pub fn with_driver(
        config: Config,
        driver: Option<DriverFactory>,
    ) -> Result<Runtime, BuildError> {
        let config = if config.adaptive {
            crate::adaptive::starting_config(&config)?
        } else {
            config
        };
        let allowed = crate::config::validate::allowed_cpus()?;
        let isolated = topology::isolated_cpus();
        config.validate_with(&allowed, &isolated)?;
        // A cgroup CPU quota (the tightest over every ancestor) caps the
        // default worker count: a container given 1.5 CPUs gets 2 workers,
        // not one per visible CPU.
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let quota =
            sprint_alloc::cgroup::cpu_quota(std::path::Path::new("/sys/fs/cgroup"), &cgroups);
        let mut plan = match (&quota, config.workers) {
            (Some((q, _)), None) if (q.ceil() as usize) < allowed.len() => {
                let mut capped = config.clone();
                capped.workers = Some((q.ceil() as usize).max(1));
                Plan::new(&capped, &allowed, &isolated)
            }
            _ => Plan::new(&config, &allowed, &isolated),
        };
        let topo = sprint_alloc::topology::MachineTopology::detect();
        let mut memory = match &topo {
            Ok(t) => {
                crate::memory::place(&mut plan, &config, t);
                crate::memory::plan(&config, &plan, Some(t))
            }
            Err(e) => crate::memory::plan(&config, &plan, None).map(|mut m| {
                m.notes
                    .push(format!("no topology ({e}): NUMA binding to node 0"));
                m
            }),
        }
        .map_err(BuildError::Memory)?;
        if let Ok(t) = &topo {
            memory.notes.insert(0, format!("machine: {t}"));
        }
        if let Some((q, from)) = &quota {
            memory.notes.insert(
                0,
                format!(
                    "cgroup CPU quota {q:.2} CPUs ({}): {} worker(s)",
                    from.display(),
                    plan.workers.len()
                ),
            );
        }
        // Where an SQPOLL kernel thread may poll: the CPU named, else the
        // kernel's isolated CPUs no worker uses. A CPU that runs other work
        // is no spare: the relay benchmark measured the polling thread
        // taking a load generator's CPU there (send lag 92 ms).
        let spare_cpus: Vec<usize> = match config.uring_sqpoll_cpu {
            Some(cpu) => vec![cpu],
            None => allowed
                .iter()
                .copied()
                .filter(|c| !plan.workers.iter().any(|w| w.cpu == *c))
                .filter(|c| isolated.contains(c))
                .collect(),
        };
        let allowed_cpus = allowed.len();
        Runtime::start(config, plan, driver, spare_cpus, memory, allowed_cpus)
    }

    fn start(
        config: Config,
        plan: Plan,
        driver: Option<DriverFactory>,
        spare_cpus: Vec<usize>,
        mut memory: crate::memory::MemoryPlan,
        allowed_cpus: usize,
    ) -> Result<Runtime, BuildError> {
        let mut tune_report = Vec::new();
        let process_tuning = crate::tune::apply_process(&config, &mut tune_report)?;
        crate::memory::apply_allocator(&config, &mut memory.notes);
        let lock_all = if memory.lock_all {
            Some(
                crate::memory::LockAll::apply(config.strict, &mut memory.notes)
                    .map_err(BuildError::Memory)?,
            )
        } else {
            None
        };
        let mut arenas = std::mem::take(&mut memory.arenas).into_iter();
        let shared_config = Arc::new(config.clone());
        let id = NEXT_RUNTIME.fetch_add(1, Relaxed);
        let n = plan.workers.len();
        let policy = Policy::new(
            config.scheduling,
            crate::adaptive::needs_deques(&config),
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
        )
        .map_err(|source| BuildError::Thread {
            name: "sprint-blocking-0".into(),
            source,
        })?;
        if config.metrics {
            // Calibrate the metrics clock here, not on a worker.
            let _ = crate::metrics::now_raw();
        }
        let info = crate::sched::RuntimeInfo {
            config: config.clone(),
            process_report: tune_report.clone(),
            started: Instant::now(),
            memory_limit: memory.limit.clone(),
        };
        let shared = Arc::new(Shared::new(id, policy, workers, stealers, blocking, info));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), BuildError>>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let mut threads = Vec::with_capacity(n);
        let mut first_error = None;
        for (w, deque) in plan.workers.iter().zip(deques) {
            let name = format!("sprint-worker-{}", w.index);
            let (shared2, ready, done) = (shared.clone(), ready_tx.clone(), done_tx.clone());
            let (index, cpu, pinned) = (w.index, w.cpu, w.pinned);
            let arena_config = arenas.next().flatten();
            let (factory, info) = (
                driver.clone(),
                WorkerInfo {
                    index: w.index,
                    cpu: w.pinned.then_some(w.cpu),
                    config: shared_config.clone(),
                    spare_cpus: spare_cpus.clone(),
                    arena: None,
                    io_latency: None,
                },
            );
            let spawned = thread::Builder::new()
                .name(name.clone())
                .stack_size(config.stack_size)
                .spawn(move || {
                    let ws = shared2.workers[index].clone();
                    let pin_ok = !pinned
                        || core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                    ws.tid.store(crate::topology::current_tid(), Relaxed);
                    // The arena is made here, after pinning, so its pages
                    // are first touched on the worker's own node.
                    let mut mem_ok = Ok(());
                    if let Some(cfg) = arena_config {
                        match sprint_alloc::Arena::new(cfg) {
                            Ok(a) => {
                                ws.memory_notes.lock().extend(a.notes().iter().cloned());
                                let _ = ws.slab.set(Arc::new(sprint_alloc::Slab::new(Arc::new(a))));
                            }
                            Err(e @ sprint_alloc::ArenaError::Strict(_)) => {
                                mem_ok =
                                    Err(BuildError::Memory(format!("sprint-worker-{index}: {e}")));
                            }
                            Err(e) => ws
                                .memory_notes
                                .lock()
                                .push(format!("no arena ({e}): the global allocator serves")),
                        }
                    }
                    // The worker's own settings: real-time class, nice,
                    // timer slack; put back before the thread ends.
                    let rt_denied =
                        crate::tune::rt_busy_poll_denied(&info.config, index + 1 >= allowed_cpus);
                    let mut lines = Vec::new();
                    let thread_tuning = match crate::tune::apply_thread(
                        &info.config,
                        &format!("sprint-worker-{index}"),
                        rt_denied.as_ref(),
                        &mut lines,
                    ) {
                        Ok(g) => Some(g),
                        Err(e) => {
                            mem_ok = mem_ok.and(Err(BuildError::Tune(e)));
                            None
                        }
                    };
                    *ws.tune_report.lock() = lines;
                    #[cfg(target_os = "linux")]
                    {
                        *ws.expected_sched.lock() = Some(crate::tune::sched_of_this_thread());
                    }
                    let mut info = info;
                    info.io_latency = ws.metrics_on.then(|| ws.metrics.clone());
                    info.arena = ws.slab.get().map(|s| s.arena().clone());
                    let core = Core::new(ws, shared2.clone(), deque);
                    let driver_ok = match factory.map(|f| f(&info)) {
                        None => Ok(()),
                        Some(Ok(d)) => {
                            core.set_driver(d);
                            Ok(())
                        }
                        Some(Err(source)) => Err(BuildError::Driver {
                            worker: index,
                            source,
                        }),
                    };
                    // Without a driver (none given, or it failed to start)
                    // the worker sleeps on its park token; with one, the
                    // driver is already registered and this does nothing.
                    core.shared.parker.register_current();
                    let _ = ready.send(if !pin_ok {
                        Err(BuildError::Pin { worker: index, cpu })
                    } else {
                        mem_ok.and(driver_ok)
                    });
                    drop(ready);
                    sched::enter_core(&core, || core.run());
                    drop(core);
                    drop(thread_tuning);
                    drop(shared2);
                    let _ = done.send(());
                });
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
            plan,
            threads,
            done: done_rx,
            shut: false,
            memory_notes: memory.notes,
            tune_report,
            _process_tuning: Some(process_tuning),
            metrics_server: None,
            adaptive: None,
            _lock_all: lock_all,
        };
        if first_error.is_some() {
            // Threads that did start wait at the shutdown barrier for the
            // ones that never will: release them by hand.
            rt.handle.shared.begin_shutdown();
            rt.shut = true;
            return Err(first_error.unwrap_or_else(|| unreachable!()));
        }
        for _ in 0..rt.threads.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => break,
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if let Some(addr) = &rt.config.metrics_addr {
            rt.metrics_server = Some(
                crate::metrics::export::Server::start(addr, rt.handle.clone()).map_err(
                    |source| BuildError::Metrics {
                        addr: addr.clone(),
                        source,
                    },
                )?,
            );
        }
        if rt.config.adaptive {
            rt.adaptive = Some(
                crate::adaptive::Controller::start(rt.handle.clone(), &rt.config).map_err(
                    |source| BuildError::Thread {
                        name: "sprint-adaptive".into(),
                        source,
                    },
                )?,
            );
        }
        tracing::debug!(runtime = id, plan = %rt.plan, "sprint runtime started");
        for line in rt.tuning_report() {
            tracing::info!(runtime = id, "tuning: {line}");
        }
        for line in rt.memory_report() {
            tracing::info!(runtime = id, "memory: {line}");
        }
        Ok(rt)
    }

    /// A builder, starting from the Standard level.
    pub fn builder() -> crate::Builder {
        crate::Builder::new()
    }

    /// The handle, to clone and send to other threads.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tuning report: every process and worker setting, applied (from
    /// what), unchanged, skipped (and why) or unsupported.
    pub fn tuning_report(&self) -> Vec<crate::tune::ReportLine> {
        let mut out = self.tune_report.clone();
        for w in &self.handle.shared.workers {
            out.extend(w.tune_report.lock().iter().cloned());
        }
        out
    }

    /// The memory plan in words: the machine, the budget, the arenas, and
    /// what was degraded, runtime-wide then per worker.
    pub fn memory_report(&self) -> Vec<String> {
        let mut out = self.memory_notes.clone();
        for (i, notes) in self.handle.memory_notes().into_iter().enumerate() {
            out.extend(notes.into_iter().map(|n| format!("sprint-worker-{i}: {n}")));
        }
        out
    }

    /// The placement plan that was applied.
    pub fn plan(&self) -> &Plan {
        &self.plan
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

    /// See [`Handle::spawn`].
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> crate::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Each worker's counters.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.handle.worker_stats()
    }

    /// Everything measured, in one serde value (the seed's `GetStats`).
    pub fn stats(&self) -> crate::metrics::Stats {
        self.handle.stats()
    }

    /// The problems the runtime sees now (empty when healthy).
    pub fn health(&self) -> Vec<crate::metrics::Problem> {
        self.handle.health()
    }

    /// The address `/metrics` is served on, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_server.as_ref().map(|s| s.addr())
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
        // The controller stops first: no level moves during shutdown.
        drop(self.adaptive.take());
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

/// Wakes a thread blocked in `block_on`.
struct ThreadWaker {
    thread: Thread,
    notified: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Release) {
            self.thread.unpark();
        }
    }
}

impl Handle {
    /// The runtime of the current thread: the worker's, or the one whose
    /// `block_on` is running.
    ///
    /// # Panics
    /// Outside a runtime; see [`Handle::try_current`].
    #[track_caller]
    pub fn current() -> Handle {
        Handle::try_current().unwrap_or_else(|| {
            panic!("no Sprint runtime on this thread: call this from a task or inside Runtime::block_on")
        })
    }

    /// The current runtime, if any.
    pub fn try_current() -> Option<Handle> {
        context::current().map(|shared| Handle { shared })
    }

    /// How many workers the runtime has.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// See [`Runtime::block_on`].
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.block_on_inner(future, None)
            .unwrap_or_else(|| unreachable!("no stop flag was given"))
    }

    /// Like `block_on`, but returns `None` as soon as `stop` is set (the
    /// setter then unparks this thread); the future is dropped.
    #[track_caller]
    pub fn block_on_or_stop<F: Future>(&self, future: F, stop: &AtomicBool) -> Option<F::Output> {
        self.block_on_inner(future, Some(stop))
    }

    #[track_caller]
    fn block_on_inner<F: Future>(&self, future: F, stop: Option<&AtomicBool>) -> Option<F::Output> {
        if sched::with_core(|c| c.is_some()) {
            panic!(
                "Runtime::block_on called from inside a Sprint worker: it would block the worker \
                 that must run the awaited tasks and deadlock; use .await instead"
            );
        }
        let _enter = context::enter(self.shared.clone());
        let thread_waker = Arc::new(ThreadWaker {
            thread: thread::current(),
            notified: AtomicBool::new(false),
        });
        let waker = Waker::from(thread_waker.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return Some(v);
            }
            while !thread_waker.notified.swap(false, Acquire) {
                if stop.is_some_and(|s| s.load(Acquire)) {
                    return None;
                }
                thread::park();
            }
        }
    }

    /// Spawns a `Send` task, placed by the policy: on the current worker
    /// when called from one, else on the workers in turn.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> crate::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::spawn::Builder::new().spawn_with(&self.shared, future)
    }

    /// Spawns a `Send` task on worker `worker`, where it stays.
    #[track_caller]
    pub fn spawn_on<F>(
        &self,
        worker: usize,
        future: F,
    ) -> Result<crate::JoinHandle<F::Output>, crate::SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::spawn::Builder::new().spawn_on_with(&self.shared, worker, future)
    }

    /// Builds a `!Send` future on worker `worker` and runs it there; see
    /// [`spawn_local_on`](crate::spawn_local_on).
    #[track_caller]
    pub fn spawn_local_on<M, F>(
        &self,
        worker: usize,
        make: M,
    ) -> Result<crate::JoinHandle<F::Output>, crate::SpawnError>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        crate::spawn::Builder::new().spawn_on_with(
            &self.shared,
            worker,
            crate::spawn::MakeOnWorker::Make(Some(make)),
        )
    }

    /// Runs `f` on the blocking pool.
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> crate::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.shared.blocking.spawn(f)
    }

    /// Changes what idle workers do, while the runtime runs: park at once,
    /// spin for `spin` then park, or busy-poll. Refused, with nothing
    /// changed, where it would make a real-time worker spin while kernel
    /// RT throttling is on (see `tune::rt_busy_poll_denied`).
    pub fn set_idle(
        &self,
        idle: crate::config::IdleStrategy,
        spin: Duration,
    ) -> Result<(), IdleError> {
        if idle != crate::config::IdleStrategy::Park {
            let mut probe = self.shared.info.config.clone();
            probe.idle = idle;
            probe.rt_policy = crate::config::RtPolicy::Fifo;
            for w in &self.shared.workers {
                #[cfg(target_os = "linux")]
                let rt = matches!(*w.expected_sched.lock(), Some((p, _)) if p & !libc::SCHED_RESET_ON_FORK == libc::SCHED_FIFO || p & !libc::SCHED_RESET_ON_FORK == libc::SCHED_RR);
                #[cfg(not(target_os = "linux"))]
                let rt = false;
                if rt {
                    if let Some(crate::tune::RtDenied::Throttled(why)) =
                        crate::tune::rt_busy_poll_denied(&probe, false)
                    {
                        return Err(IdleError {
                            worker: w.index,
                            why,
                        });
                    }
                }
            }
        }
        self.shared.policy.set_idle(idle, spin);
        // A parked worker re-reads the strategy when it wakes.
        for w in &self.shared.workers {
            w.parker.notify();
        }
        tracing::info!(?idle, ?spin, "idle strategy changed");
        Ok(())
    }

    /// Switches stealing on or off while the runtime runs: `spawn`ed tasks
    /// after the change are stealable or stay where they were placed, and
    /// idle workers steal or not. Tasks already spawned keep their kind.
    /// Refused, with nothing changed, where the runtime started
    /// thread-per-core: its workers have no stealable deques.
    pub fn set_scheduling(
        &self,
        scheduling: crate::config::Scheduling,
    ) -> Result<(), SchedulingError> {
        let policy = &self.shared.policy;
        if scheduling != crate::config::Scheduling::ThreadPerCore && !policy.can_steal {
            return Err(SchedulingError { scheduling });
        }
        if policy.scheduling() != scheduling {
            policy.set_scheduling(scheduling);
            // A parked worker may now steal what is queued elsewhere.
            for w in &self.shared.workers {
                w.parker.notify();
            }
            tracing::info!(?scheduling, "scheduling changed");
        }
        Ok(())
    }

    /// Where `spawn`ed tasks may run now.
    pub fn scheduling(&self) -> crate::config::Scheduling {
        self.shared.policy.scheduling()
    }

    /// What idle workers do now, and the spin of `spin-then-park`.
    pub fn idle(&self) -> (crate::config::IdleStrategy, Duration) {
        (self.shared.policy.idle(), self.shared.policy.idle_spin())
    }

    /// Each worker's counters.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.shared
            .workers
            .iter()
            .map(|w| {
                let c = &w.counters;
                WorkerStats {
                    index: w.index,
                    cpu: w.cpu.unwrap_or(usize::MAX),
                    pinned: w.cpu.is_some(),
                    tid: w.tid.load(Relaxed),
                    polls: c.polls.load(Relaxed),
                    spawned: c.spawned_total(),
                    steals: c.steals.load(Relaxed),
                    parks: c.parks.load(Relaxed),
                    unparks: w.parker.unparks(),
                    inbox_received: c.inbox_received.load(Relaxed),
                    timers_fired: c.timers_fired.load(Relaxed),
                    live_tasks: c.live_local_tasks.load(Relaxed),
                }
            })
            .collect()
    }

    /// The kernel thread ids of the workers, in worker order.
    pub fn worker_thread_ids(&self) -> Vec<i32> {
        self.shared
            .workers
            .iter()
            .map(|w| w.tid.load(Relaxed))
            .collect()
    }

    /// Worker `worker`'s I/O driver handle (for the driver's crate to
    /// downcast) and name; `None` without a driver or such a worker.
    pub fn driver(
        &self,
        worker: usize,
    ) -> Option<(Arc<dyn std::any::Any + Send + Sync>, &'static str)> {
        let (handle, name, _) = self.shared.workers.get(worker)?.driver.get()?;
        Some((handle.clone(), name))
    }

    /// Each worker's memory figures: arena, slab, binding.
    pub fn memory_stats(&self) -> Vec<crate::memory::MemoryStats> {
        self.shared
            .workers
            .iter()
            .map(|w| {
                let slab = w.slab.get();
                crate::memory::MemoryStats {
                    worker: w.index,
                    arena: slab.map(|s| s.arena().stats()).unwrap_or_default(),
                    slab: slab.map(|s| s.stats()).unwrap_or_default(),
                    bound_node: slab.and_then(|s| s.arena().bound_node().ok().flatten()),
                }
            })
            .collect()
    }

    /// What each worker's memory could not have, in words (empty when all
    /// was as asked).
    pub fn memory_notes(&self) -> Vec<Vec<String>> {
        self.shared
            .workers
            .iter()
            .map(|w| w.memory_notes.lock().clone())
            .collect()
    }

    /// Each worker's I/O driver as the start-up report gives it: the
    /// driver, its features, and the reason for any fallback.
    pub fn driver_report(&self) -> Vec<String> {
        self.shared
            .workers
            .iter()
            .map(|w| match w.driver.get() {
                Some((_, _, describe)) => describe.clone(),
                None => "no I/O driver".to_string(),
            })
            .collect()
    }

    /// Threads in the blocking pool now.
    pub fn blocking_threads(&self) -> usize {
        self.shared.blocking.threads()
    }
}

/// Which runtime a non-worker thread has entered (inside `block_on`).
pub(crate) mod context {
    use super::*;
    use std::cell::RefCell;

    thread_local! {
        static ENTERED: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    }

    pub(crate) struct Enter(Option<Arc<Shared>>);

    impl Drop for Enter {
        fn drop(&mut self) {
            let prev = self.0.take();
            ENTERED.with(|e| *e.borrow_mut() = prev);
        }
    }

    /// # Panics
    /// If this thread is already inside `block_on`.
    #[track_caller]
    pub(crate) fn enter(shared: Arc<Shared>) -> Enter {
        let prev = ENTERED.with(|e| e.borrow_mut().replace(shared));
        if prev.is_some() {
            ENTERED.with(|e| *e.borrow_mut() = prev);
            panic!("Runtime::block_on called inside another block_on on the same thread; use .await instead");
        }
        Enter(None)
    }

    /// The runtime of this thread.
    pub(crate) fn current() -> Option<Arc<Shared>> {
        sched::with_core(|c| c.map(|c| c.rt.clone()))
            .or_else(|| ENTERED.with(|e| e.borrow().clone()))
    }

    /// Runs `f` with the runtime of this thread, without cloning it.
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
        let mut f = Some(f);
        let r = sched::with_core(|c| {
            c.map(|c| (f.take().unwrap_or_else(|| unreachable!()))(Some(&c.rt)))
        });
        match r {
            Some(r) => r,
            None => {
                let f = f.unwrap_or_else(|| unreachable!());
                ENTERED.with(|e| f(e.borrow().as_ref()))
            }
        }
    }

    /// The worker whose timer queue a timer polled here should join, and
    /// whether that worker is this thread.
    #[track_caller]
    pub(crate) fn timer_worker() -> (Arc<WorkerShared>, bool) {
        if let Some(w) = sched::with_core(|c| c.map(|c| c.shared.clone())) {
            return (w, true);
        }
        match ENTERED.with(|e| e.borrow().as_ref().map(|s| s.workers[0].clone())) {
            Some(w) => (w, false),
            None => panic!("a Sprint timer was polled outside a Sprint runtime: await it in a task or in Runtime::block_on"),
        }
    }
}
