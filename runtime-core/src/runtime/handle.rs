//! The handle: what any thread, inside or outside the runtime, uses to
//! reach it: spawn, block on, change the live settings, read counters.

use super::report::{MemoryStats, WorkerStats};
use super::{IdleError, SchedulingError};
use crate::config::Config;
use crate::context;
use crate::sched::{self, Shared};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// A handle to a runtime, usable from any thread, inside or outside it.
#[derive(Debug, Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

/// The guard of [`Handle::enter`]: while it lives, its runtime is this
/// thread's. Not `Send`: it belongs to the thread that entered.
pub struct EnterGuard<'a> {
    _enter: context::Enter,
    _marker: std::marker::PhantomData<(&'a Handle, *const ())>,
}

impl std::fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

/// Wakes a thread blocked in `block_on`. A wake counts in the runtime
/// clock's `busy` from before the thread can see it until the thread takes
/// it (time/clock.rs); once `block_on` has returned, a late wake (a waker
/// kept by a timer, say) counts nothing.
struct ThreadWaker {
    thread: Thread,
    /// `NOTIFIED` and `DONE` bits; 0 when idle.
    state: AtomicU8,
    rt: Arc<Shared>,
}

/// A wake was sent and not yet taken.
const NOTIFIED: u8 = 1;
/// `block_on` returned: wakes count nothing any more.
const DONE: u8 = 2;

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Counted before the thread can see the wake, so a paused clock
        // never takes the runtime for idle in between. Always a
        // read-modify-write (never a plain load that returns early): what
        // the waking thread wrote before this wake is then visible to the
        // `take` that reads it.
        let busy = &self.rt.clock.busy;
        busy.fetch_add(1, SeqCst);
        if self.state.fetch_or(NOTIFIED, AcqRel) == 0 {
            self.thread.unpark();
        } else {
            // Already notified (and counted), or `block_on` returned.
            busy.fetch_sub(1, SeqCst);
        }
    }
}

impl ThreadWaker {
    /// Takes a wake (and its count in `busy`), if one was sent.
    fn take(&self) -> bool {
        let took = self
            .state
            .compare_exchange(NOTIFIED, 0, AcqRel, Acquire)
            .is_ok();
        if took {
            self.rt.clock.busy.fetch_sub(1, SeqCst);
        }
        took
    }
}

/// Counts a `block_on` thread as running in its runtime's clock while it
/// lives; on drop, takes any wake left and refuses later ones.
struct Running<'a>(&'a ThreadWaker);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let busy = &self.0.rt.clock.busy;
        if self.0.state.fetch_or(DONE, AcqRel) & NOTIFIED != 0 {
            busy.fetch_sub(1, SeqCst);
        }
        busy.fetch_sub(1, SeqCst);
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
            panic!("no Sprint runtime on this thread: call this from a task, inside Runtime::block_on or after Runtime::enter")
        })
    }

    /// The current runtime, if any.
    pub fn try_current() -> Option<Handle> {
        context::current().map(|shared| Handle { shared })
    }

    /// Makes this runtime the current one on this thread until the guard
    /// drops, as inside `block_on`: `spawn`, `spawn_on`, `spawn_blocking`,
    /// `Handle::current` and timers work from a thread that is not a
    /// worker. Guards may nest; drop them in reverse order. (On a worker,
    /// the worker's own runtime stays the current one.)
    ///
    /// ```
    /// # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
    /// let _guard = rt.handle().enter();
    /// let h = sprint_core::spawn_on(0, async { 7 }).unwrap();
    /// assert_eq!(rt.block_on(h).unwrap(), 7);
    /// ```
    pub fn enter(&self) -> EnterGuard<'_> {
        EnterGuard {
            _enter: context::enter_runtime(self.shared.clone()),
            _marker: std::marker::PhantomData,
        }
    }

    /// How many workers the runtime has.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// See [`Runtime::block_on`](crate::Runtime::block_on).
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.block_on_inner(future, None)
            .unwrap_or_else(|| unreachable!("no stop flag was given"))
    }

    /// Like `block_on`, but returns `None` as soon as `stop` is set (the
    /// setter then unparks this thread); the future is dropped. (For the
    /// facade's signal handling.)
    #[doc(hidden)]
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
            state: AtomicU8::new(0),
            rt: self.shared.clone(),
        });
        let clock = &self.shared.clock;
        clock.busy.fetch_add(1, SeqCst);
        let _running = Running(&thread_waker);
        let waker = Waker::from(thread_waker.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                return Some(v);
            }
            while !thread_waker.take() {
                if stop.is_some_and(|s| s.load(Acquire)) {
                    return None;
                }
                // Idle while parked: a paused clock may move on, which the
                // worker decides (clock.rs); tell it when this was the last
                // thing running.
                if clock.busy.fetch_sub(1, SeqCst) == 1 && clock.is_paused() {
                    for w in &self.shared.workers {
                        w.parker.notify();
                    }
                }
                thread::park();
                clock.busy.fetch_add(1, SeqCst);
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
                let rt = w.tid.load(Relaxed) > 0
                    && sprint_os::thread::sched(w.tid.load(Relaxed))
                        .is_ok_and(|(p, _)| sprint_os::thread::is_real_time(p));
                #[cfg(not(target_os = "linux"))]
                let rt = false;
                if rt {
                    if let Some(sprint_os::tune::RtDenied::Throttled(why)) =
                        sprint_os::tune::rt_busy_poll_denied(&probe, false)
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
        let now = Instant::now();
        let raw = crate::metrics::now_raw();
        self.shared
            .workers
            .iter()
            .map(|w| {
                let c = &w.counters;
                let since = w.metrics.polling_since.load(Relaxed);
                WorkerStats {
                    index: w.index,
                    cpu: w.cpu,
                    tid: w.tid.load(Relaxed),
                    polls: c.polls.load(Relaxed),
                    spawned: c.spawned_total(),
                    completed: c.completed_total(),
                    steals: c.steals.load(Relaxed),
                    parks: c.parks.load(Relaxed),
                    unparks: w.parker.unparks(),
                    inbox_received: c.inbox_received.load(Relaxed),
                    timers_fired: c.timers_fired.load(Relaxed),
                    live_tasks: c.live_local_tasks.load(Relaxed),
                    queue_depth: c.queue_depth.load(Relaxed),
                    busy_ns: c.busy_ns.load(Relaxed),
                    uptime_ns: now.saturating_duration_since(w.started).as_nanos() as u64,
                    stalls: w.metrics.stalls.load(Relaxed),
                    last_stall: w.metrics.last_stall.lock().clone(),
                    polling_for_ns: (since != 0).then(|| crate::metrics::nanos_between(since, raw)),
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

    /// The configuration the runtime started from.
    pub fn config(&self) -> &Config {
        &self.shared.info.config
    }

    /// When the runtime started.
    pub fn started(&self) -> Instant {
        self.shared.info.started
    }

    /// Whether workers have stealable deques (so that
    /// [`Handle::set_scheduling`] can switch stealing on).
    pub fn can_steal(&self) -> bool {
        self.shared.policy.can_steal
    }

    /// Worker `worker`'s I/O driver handle (for the driver's crate to
    /// downcast) and name; `None` without a driver or such a worker.
    #[doc(hidden)]
    pub fn driver(
        &self,
        worker: usize,
    ) -> Option<(Arc<dyn std::any::Any + Send + Sync>, &'static str)> {
        let (handle, name) = self.shared.workers.get(worker)?.driver.get()?;
        Some((handle.clone(), name))
    }

    /// Each worker's memory figures: arena, slab, binding.
    pub fn memory_stats(&self) -> Vec<MemoryStats> {
        self.shared
            .workers
            .iter()
            .map(|w| {
                let slab = w.slab.get();
                MemoryStats {
                    worker: w.index,
                    arena: slab.map(|s| s.arena().stats()).unwrap_or_default(),
                    slab: slab.map(|s| s.stats()).unwrap_or_default(),
                    bound_node: slab.and_then(|s| s.arena().bound_node().ok().flatten()),
                }
            })
            .collect()
    }

    /// Threads in the blocking pool now.
    pub fn blocking_threads(&self) -> usize {
        self.shared.blocking.threads()
    }

    /// The built-in histograms merged over the workers: `task_poll`,
    /// `schedule_delay`, `io_latency`, `timer_lateness`.
    pub fn histograms(&self) -> Vec<(&'static str, crate::metrics::Snapshot)> {
        use crate::metrics::Snapshot;
        let mut poll = Snapshot::empty();
        let mut delay = Snapshot::empty();
        let mut io = Snapshot::empty();
        let mut timer = Snapshot::empty();
        for w in &self.shared.workers {
            let m = &w.metrics;
            m.poll.add_to(&mut poll);
            m.schedule_delay.add_to(&mut delay);
            m.io.add_to(&mut io);
            m.timer_lateness.add_to(&mut timer);
        }
        vec![
            ("task_poll", poll),
            ("schedule_delay", delay),
            ("io_latency", io),
            ("timer_lateness", timer),
        ]
    }
}
