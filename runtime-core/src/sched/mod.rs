//! Scheduling: where a task runs, how it gets there, and what a worker does
//! when it has nothing to run.
//!
//! A task belongs to one worker (its *owner*), whose owned list holds it
//! until it finishes. A wake on the owner's thread pushes the task on the
//! owner's local queue without any lock or system call; a wake from another
//! thread goes through the owner's inbox and unparks the owner only if it
//! sleeps (`idle.rs`). At the stealing levels, `Send` tasks spawned with
//! `spawn` are *stealable*: they sit in a crossbeam deque, other workers may
//! take them, and a wake on any worker of the runtime queues them there.

pub(crate) mod idle;
pub(crate) mod inbox;
pub(crate) mod owner_cell;
pub(crate) mod worker;

use crate::blocking::BlockingPool;
use crate::config::IdleStrategy;
pub use crate::config::Scheduling;
use crate::task::raw::{self, TaskRef};
use crate::task::{harness, JoinHandle, TaskId, TaskMeta};
use crossbeam_deque::Stealer;
use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use worker::{Core, WorkerShared};

/// Task ids: workers take blocks of 4096, other threads take one.
pub(crate) static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The scheduling facts the workers read on their hot path. The idle
/// strategy and spin ([`crate::Handle::set_idle`]) and whether workers
/// steal ([`crate::Handle::set_scheduling`]) can change while the runtime
/// runs; the rest is fixed at start.
#[derive(Debug)]
pub(crate) struct Policy {
    scheduling: std::sync::atomic::AtomicU8,
    /// Whether the workers have stealable deques (fixed at start): without
    /// them stealing cannot be switched on.
    pub(crate) can_steal: bool,
    idle: std::sync::atomic::AtomicU8,
    idle_spin_ns: AtomicU64,
    pub(crate) coop_budget: u32,
    pub(crate) event_interval: u32,
}

fn idle_code(i: IdleStrategy) -> u8 {
    match i {
        IdleStrategy::Park => 0,
        IdleStrategy::SpinThenPark => 1,
        IdleStrategy::BusyPoll => 2,
    }
}

fn scheduling_code(s: Scheduling) -> u8 {
    match s {
        Scheduling::WorkStealing => 0,
        Scheduling::StealWhenIdle => 1,
        Scheduling::ThreadPerCore => 2,
    }
}

impl Policy {
    pub(crate) fn new(
        scheduling: Scheduling,
        can_steal: bool,
        idle: IdleStrategy,
        idle_spin: Duration,
        coop_budget: u32,
        event_interval: u32,
    ) -> Policy {
        Policy {
            scheduling: std::sync::atomic::AtomicU8::new(scheduling_code(scheduling)),
            can_steal,
            idle: std::sync::atomic::AtomicU8::new(idle_code(idle)),
            idle_spin_ns: AtomicU64::new(idle_spin.as_nanos().min(u64::MAX as u128) as u64),
            coop_budget,
            event_interval,
        }
    }

    /// What an idle worker does now.
    #[inline]
    pub(crate) fn idle(&self) -> IdleStrategy {
        match self.idle.load(Relaxed) {
            0 => IdleStrategy::Park,
            1 => IdleStrategy::SpinThenPark,
            _ => IdleStrategy::BusyPoll,
        }
    }

    /// How long `spin-then-park` spins now.
    pub(crate) fn idle_spin(&self) -> Duration {
        Duration::from_nanos(self.idle_spin_ns.load(Relaxed))
    }

    /// Where `spawn`ed tasks may run now.
    #[inline]
    pub(crate) fn scheduling(&self) -> Scheduling {
        match self.scheduling.load(Relaxed) {
            0 => Scheduling::WorkStealing,
            1 => Scheduling::StealWhenIdle,
            _ => Scheduling::ThreadPerCore,
        }
    }

    pub(crate) fn set_scheduling(&self, s: Scheduling) {
        self.scheduling.store(scheduling_code(s), Relaxed);
    }

    pub(crate) fn set_idle(&self, idle: IdleStrategy, spin: Duration) {
        self.idle_spin_ns
            .store(spin.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
        self.idle.store(idle_code(idle), Relaxed);
    }
}

/// What every thread of one runtime shares.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) policy: Policy,
    pub(crate) workers: Vec<Arc<WorkerShared>>,
    pub(crate) stealers: Vec<Stealer<TaskRef>>,
    pub(crate) blocking: BlockingPool,
    pub(crate) shutdown: AtomicBool,
    pub(crate) shutdown_barrier: Barrier,
    pub(crate) sleepers: AtomicUsize,
    next_worker: AtomicUsize,
    /// The configuration it started from, and when.
    pub(crate) info: RuntimeInfo,
    /// Its clock (which a test may pause).
    pub(crate) clock: crate::time::Clock,
}

/// The configuration a runtime started from, and when.
#[derive(Debug)]
pub(crate) struct RuntimeInfo {
    pub(crate) config: crate::Config,
    pub(crate) started: std::time::Instant,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("id", &self.id)
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Shared {
    pub(crate) fn new(
        id: u64,
        policy: Policy,
        workers: Vec<Arc<WorkerShared>>,
        stealers: Vec<Stealer<TaskRef>>,
        blocking: BlockingPool,
        info: RuntimeInfo,
    ) -> Shared {
        let n = workers.len();
        Shared {
            id,
            policy,
            workers,
            stealers,
            blocking,
            shutdown: AtomicBool::new(false),
            shutdown_barrier: Barrier::new(n),
            sleepers: AtomicUsize::new(0),
            next_worker: AtomicUsize::new(0),
            info,
            clock: crate::time::Clock::new(),
        }
    }

    /// A stealable task was queued on worker `from`: if another worker
    /// sleeps, wake one so it can steal.
    pub(crate) fn wake_a_sleeper(&self, from: usize) {
        if self.sleepers.load(SeqCst) == 0 {
            return;
        }
        if let Some(w) = self
            .workers
            .iter()
            .find(|w| w.index != from && w.parker.is_sleeping())
        {
            w.parker.notify();
        }
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, SeqCst);
        for w in &self.workers {
            w.parker.notify();
        }
    }

    pub(crate) fn steals(&self) -> bool {
        self.policy.can_steal && self.policy.scheduling() != Scheduling::ThreadPerCore
    }
}

thread_local! {
    static CORE: Cell<*const Core> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with this thread's worker core, if it is a worker.
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    CORE.with(|c| {
        let p = c.get();
        // SAFETY: CORE is set by `enter_core` for the duration of the worker
        // loop, on the worker's own thread, and cleared before the core is
        // dropped.
        f(unsafe { p.as_ref() })
    })
}

/// Makes `core` this thread's worker core while `f` runs.
pub(crate) fn enter_core<R>(core: &Core, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CORE.with(|c| c.set(std::ptr::null()));
        }
    }
    CORE.with(|c| c.set(core));
    let _reset = Reset;
    f()
}

/// Queues a stealable task that a waker (or abort) made runnable: on this
/// thread's worker if it belongs to the task's runtime, else through the
/// owner's inbox.
pub(crate) fn schedule(task: TaskRef) {
    let header = task.header();
    debug_assert!(header.stealable);
    let Some(owner) = header.owner() else {
        return;
    };
    let local = with_core(|core| match core {
        Some(core) if core.shared.runtime_id == owner.runtime_id => {
            core.push_local(task);
            true
        }
        _ => false,
    });
    if !local {
        // Refused only after shutdown began; the owner's list then cancels
        // the task.
        let _ = owner.push_remote(task);
    }
}

/// Wakes a pinned task: locally on its owner's thread, else through the
/// owner's inbox with a reference of its own.
pub(crate) fn wake_pinned(task: TaskRef) {
    let header = task.header();
    let Some(owner) = header.owner() else {
        // Blocking-pool tasks are queued once, by the pool.
        return;
    };
    let local = with_core(|core| match core {
        Some(core) if std::ptr::eq(Arc::as_ptr(&core.shared), owner) => {
            harness::wake_local(core, task);
            true
        }
        _ => false,
    });
    if !local && header.state.set_remote_queued() && owner.push_remote(task).is_err() {
        // The owner has shut down; its list cancels the task.
        harness::drop_reference(task);
    }
}

/// A pinned task was woken while it ran on its owner: queue it again.
pub(crate) fn requeue_pinned(task: TaskRef) {
    with_core(|core| match core {
        Some(core) => core.push_local(task),
        None => unreachable!("a pinned task runs on its owner's worker"),
    });
}

/// A task finished: take it out of its owned list.
pub(crate) fn release(task: TaskRef) {
    let header = task.header();
    let Some(owner) = header.owner() else {
        return;
    };
    // One look at this thread's core serves the count and the unlink.
    with_core(|core| {
        let here = core.filter(|c| std::ptr::eq(Arc::as_ptr(&c.shared), owner));
        match here {
            Some(c) => c.count_completed(),
            None => {
                owner
                    .counters
                    .completed_elsewhere
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if header.stealable {
            // SAFETY: stealable tasks live in their owner's mutex-guarded
            // list.
            unsafe { owner.shared_tasks.lock().remove(task) };
            return;
        }
        // SAFETY: a non-stealable task only runs, and so only completes, on
        // its owner's thread; a task that never reached its owner is not
        // linked, and then nothing else touches its links.
        if !unsafe { (*header.links.get()).linked } {
            return;
        }
        match here {
            Some(c) => c.unlink(task),
            None => unreachable!("a linked task completed away from its owner"),
        }
    });
}

/// Where a new task should run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placement {
    /// `spawn`: by the policy.
    Any,
    /// `spawn_on`: that worker, never moved.
    Worker(usize),
}

/// Why a spawn was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SpawnError {
    /// `spawn_on` named a worker the runtime does not have.
    #[error("no worker {worker}: this runtime has workers 0..{workers}")]
    NoSuchWorker {
        /// The index asked for.
        worker: usize,
        /// How many workers the runtime has.
        workers: usize,
    },
    /// `try_spawn*` found the worker's arena (its share of the memory
    /// budget) full, or the future too large for a slab cell.
    #[error("sprint-worker-{worker}'s arena has no room for this task (its share of the memory budget is used up, or the future is larger than a 1 KiB cell)")]
    MemoryBudget {
        /// The worker.
        worker: usize,
    },
    /// Called on a thread with no Sprint runtime: not a worker, not inside
    /// `block_on`, not after `Runtime::enter`.
    #[error("{call} called outside a Sprint runtime at {location}: call it from a task, inside Runtime::block_on or after Runtime::enter, or use the runtime's Handle")]
    NoRuntime {
        /// The function, e.g. `spawn_on`.
        call: &'static str,
        /// Where it was called.
        location: &'static std::panic::Location<'static>,
    },
    /// A `spawn_local` kind of call was made off the workers, where no
    /// task can stay on the calling thread.
    #[error("{call} called outside a Sprint worker thread at {location}: call it from inside a task, or use spawn_on / spawn_local_on")]
    NotOnWorker {
        /// The function, e.g. `try_spawn_local`.
        call: &'static str,
        /// Where it was called.
        location: &'static std::panic::Location<'static>,
    },
}

pub(crate) struct SpawnArgs {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) location: &'static Location<'static>,
}

/// Creates a task owned by `core` (this thread's worker) and queues it
/// there. `F` need not be `Send`: the callers make sure a `!Send` future is
/// never stealable.
pub(crate) fn spawn_on_core<F>(
    core: &Core,
    future: F,
    stealable: bool,
    args: SpawnArgs,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    let meta = TaskMeta {
        id: TaskId(core.next_id()),
        name: args.name,
        location: args.location,
    };
    let task = raw::allocate(future, raw::Home::Local(core), stealable, false, meta);
    if core.is_closed() {
        harness::shutdown(task);
    } else {
        if stealable {
            // SAFETY: stealable tasks live in the owner's locked list; this
            // one is new and in no list.
            unsafe { core.shared.shared_tasks.lock().push(task) };
        }
        core.link(task, stealable);
        core.push_local(task);
    }
    JoinHandle::new(task)
}

/// Creates and queues a `Send` task (`spawn`, `spawn_on`): on this
/// thread's worker when it belongs to `rt` and the placement allows, else
/// through the target worker's inbox.
pub(crate) fn spawn_task<F>(
    rt: &Arc<Shared>,
    future: F,
    placement: Placement,
    args: SpawnArgs,
) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
{
    let n = rt.workers.len();
    let mut future = Some(future);
    let mut args = Some(args);
    let local = with_core(|core| {
        let core = core.filter(|c| c.shared.runtime_id == rt.id)?;
        let stealable = match placement {
            Placement::Any => rt.steals(),
            Placement::Worker(i) if i == core.shared.index => false,
            Placement::Worker(_) => return None,
        };
        Some(spawn_on_core(core, future.take()?, stealable, args.take()?))
    });
    if let Some(handle) = local {
        return Ok(handle);
    }
    let (Some(future), Some(args)) = (future, args) else {
        unreachable!("the local path consumed the future only when it spawned")
    };
    let (target, stealable) = match placement {
        Placement::Any => (rt.next_worker.fetch_add(1, Relaxed) % n, rt.steals()),
        Placement::Worker(i) if i < n => (i, false),
        Placement::Worker(i) => {
            return Err(SpawnError::NoSuchWorker {
                worker: i,
                workers: n,
            })
        }
    };
    let owner = rt.workers[target].clone();
    let meta = TaskMeta {
        id: TaskId(NEXT_ID.fetch_add(1, Relaxed)),
        name: args.name,
        location: args.location,
    };
    let task = raw::allocate(
        future,
        raw::Home::Remote(&owner),
        stealable,
        !stealable,
        meta,
    );
    if stealable {
        // SAFETY: as above: a new task, the owner's locked list.
        unsafe { owner.shared_tasks.lock().push(task) };
    }
    let handle = JoinHandle::new(task);
    let pushed = owner.push_remote(task);
    if stealable && pushed.is_ok() {
        // The target may be busy or blocked in a task: a sleeping worker
        // takes the task from its inbox (`Core::steal`).
        rt.wake_a_sleeper(target);
    }
    if pushed.is_err() {
        // The runtime has shut down: the task will never run.
        harness::shutdown(task);
        if !stealable {
            // The reference the inbox entry would have held.
            harness::drop_reference(task);
        }
    }
    Ok(handle)
}

/// Frees a dead task cell: into its owner's cache when this is the owner's
/// thread, else to the global allocator, counting it against the owner.
///
/// # Safety
/// `mem` is the dropped cell of a task whose last reference is gone, with
/// the class and layout it was allocated with, and `owner` its owner.
pub(crate) unsafe fn free_cell(
    mem: std::ptr::NonNull<u8>,
    class: u8,
    layout: std::alloc::Layout,
    owner: *const WorkerShared,
) {
    let freed = with_core(|core| match core {
        Some(core) if std::ptr::eq(Arc::as_ptr(&core.shared), owner) => {
            // SAFETY: the caller's contract; this is the owner's thread.
            unsafe { core.free_cell(mem, class, layout) };
            true
        }
        _ => false,
    });
    if !freed {
        // SAFETY: a non-null owner is alive while it has tasks outstanding
        // (this one among them).
        let slab = (!owner.is_null())
            .then(|| unsafe { (*owner).slab.get() })
            .flatten();
        match slab {
            Some(slab) if slab.contains(mem.as_ptr()) => {
                // SAFETY: a dead cell of this class from the owner's slab.
                unsafe { slab.give_shared(mem, class as usize) }
            }
            // SAFETY: the caller's contract.
            _ => unsafe { crate::task::cache::free_any(mem, class, layout) },
        }
        if !owner.is_null() {
            // SAFETY: `owner` owned the task just freed.
            unsafe { WorkerShared::release_remote(owner) };
        }
    }
}
