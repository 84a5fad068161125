//! Spawning: `spawn`, `spawn_local`, `spawn_on`, `spawn_blocking`, and a
//! [`Builder`] that names tasks. Every task records where it was spawned.

use crate::context;
use crate::sched::{self, Placement, Shared, SpawnArgs, SpawnError};
use crate::JoinHandle;
use std::borrow::Cow;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

/// Spawns a `Send` task on the current runtime, placed by its policy.
///
/// # Panics
/// Outside a Sprint runtime (a worker, or a thread inside `block_on`).
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::new().spawn(future)
}

/// Spawns a task that stays on the current worker; it need not be `Send`.
///
/// # Panics
/// When not called on a Sprint worker thread.
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Builder::new().spawn_local(future)
}

/// Like [`spawn_local`], but refuses with [`SpawnError::MemoryBudget`] when
/// the worker's arena (its share of the memory budget) has no room for the
/// task, where `spawn_local` would fall back to the global allocator (and
/// count it in the stats), and with [`SpawnError::NotOnWorker`] off the
/// workers. Never panics, never aborts the process.
#[track_caller]
pub fn try_spawn_local<F>(future: F) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Builder::new().try_spawn_local(future)
}

/// Spawns a `Send` task on worker `worker` of the current runtime, where it
/// stays. An index the runtime does not have is an error, and so is a
/// thread with no current runtime ([`SpawnError::NoRuntime`]: enter one
/// with `Runtime::enter`, or use `Handle::spawn_on`). Never panics.
#[track_caller]
pub fn spawn_on<F>(worker: usize, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::new().spawn_on(worker, future)
}

/// Runs a `!Send` future on worker `worker`: `make` (which is `Send`) is
/// sent there and builds the future on that worker, where it stays. Use it
/// to start thread-per-core work from outside the workers. Refused like
/// [`spawn_on`]; never panics.
#[track_caller]
pub fn spawn_local_on<M, F>(worker: usize, make: M) -> Result<JoinHandle<F::Output>, SpawnError>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    Builder::new().spawn_local_on(worker, make)
}

/// The future of `spawn_local_on`: the factory until the first poll on
/// the target worker, then the future it made.
pub(crate) enum MakeOnWorker<M, F> {
    Make(Option<M>),
    Run(F),
}

// SAFETY: only the factory `M` (Send) ever crosses threads. The task is
// pinned to one worker (`Placement::Worker`): the future `F` is built in
// the first poll on that worker, and a pinned task is polled, cancelled
// and dropped only there once it has been polled (harness.rs, worker.rs
// shutdown). Before the first poll the value holds only `M`.
unsafe impl<M: Send, F> Send for MakeOnWorker<M, F> {}

impl<M: FnOnce() -> F, F: Future> Future for MakeOnWorker<M, F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        // SAFETY: `Run(F)` is never moved out of once pinned; `Make` holds
        // no pinned data.
        let this = unsafe { self.get_unchecked_mut() };
        if let MakeOnWorker::Make(m) = this {
            let make = m.take().unwrap_or_else(|| unreachable!("made once"));
            *this = MakeOnWorker::Run(make());
        }
        match this {
            // SAFETY: the future stays in place inside the pinned task cell.
            MakeOnWorker::Run(f) => unsafe { std::pin::Pin::new_unchecked(f) }.poll(cx),
            MakeOnWorker::Make(_) => unreachable!("replaced above"),
        }
    }
}

/// Runs a blocking closure on the current runtime's blocking pool.
///
/// # Panics
/// Outside a Sprint runtime.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let location = Location::caller();
    context::with_current(|rt| match rt {
        Some(rt) => rt.blocking.spawn(f),
        None => no_runtime(location),
    })
}

fn no_runtime(location: &Location<'_>) -> ! {
    panic!("spawn called outside a Sprint runtime at {location}: call it from a task, inside Runtime::block_on or after Runtime::enter, or use a Handle")
}

/// Spawns a task with a name, which stall reports and stats show.
///
/// ```
/// # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
/// rt.block_on(async {
///     let h = sprint_core::task::Builder::new().name("relay").spawn(async { 1 });
///     assert_eq!(h.await.unwrap(), 1);
/// });
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<Cow<'static, str>>,
}

impl Builder {
    /// A builder for an unnamed task.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Builder {
        self.name = Some(name.into());
        self
    }

    fn args(self, location: &'static Location<'static>) -> SpawnArgs {
        SpawnArgs {
            name: self.name,
            location,
        }
    }

    /// See [`spawn`].
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let location = Location::caller();
        context::with_current(|rt| match rt {
            Some(rt) => spawn_ok(sched::spawn_task(
                rt,
                future,
                Placement::Any,
                self.args(location),
            )),
            None => no_runtime(location),
        })
    }

    /// See [`try_spawn_local`].
    #[track_caller]
    pub fn try_spawn_local<F>(self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let location = Location::caller();
        sched::with_core(move |core| match core {
            Some(core) => {
                if !core.can_alloc(crate::task::raw::cell_class::<F>()) {
                    return Err(SpawnError::MemoryBudget {
                        worker: core.shared.index,
                    });
                }
                Ok(sched::spawn_on_core(
                    core,
                    future,
                    false,
                    self.args(location),
                ))
            }
            None => Err(SpawnError::NotOnWorker {
                call: "try_spawn_local",
                location,
            }),
        })
    }

    /// See [`spawn_local`].
    #[track_caller]
    pub fn spawn_local<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let location = Location::caller();
        sched::with_core(move |core| match core {
            Some(core) => sched::spawn_on_core(core, future, false, self.args(location)),
            None => panic!(
                "spawn_local called outside a Sprint worker thread at {location}: call it from \
                 inside a task, or use spawn / spawn_on"
            ),
        })
    }

    /// See [`spawn_on`].
    #[track_caller]
    pub fn spawn_on<F>(self, worker: usize, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_on_named("spawn_on", worker, future)
    }

    #[track_caller]
    fn spawn_on_named<F>(
        self,
        call: &'static str,
        worker: usize,
        future: F,
    ) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let location = Location::caller();
        context::with_current(|rt| match rt {
            Some(rt) => {
                sched::spawn_task(rt, future, Placement::Worker(worker), self.args(location))
            }
            None => Err(SpawnError::NoRuntime { call, location }),
        })
    }

    /// See [`spawn_local_on`].
    #[track_caller]
    pub fn spawn_local_on<M, F>(
        self,
        worker: usize,
        make: M,
    ) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_on_named("spawn_local_on", worker, MakeOnWorker::Make(Some(make)))
    }

    #[track_caller]
    pub(crate) fn spawn_with<F>(self, rt: &Arc<Shared>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let location = Location::caller();
        spawn_ok(sched::spawn_task(
            rt,
            future,
            Placement::Any,
            self.args(location),
        ))
    }

    #[track_caller]
    pub(crate) fn spawn_on_with<F>(
        self,
        rt: &Arc<Shared>,
        worker: usize,
        future: F,
    ) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let location = Location::caller();
        sched::spawn_task(rt, future, Placement::Worker(worker), self.args(location))
    }
}

fn spawn_ok<T>(r: Result<JoinHandle<T>, SpawnError>) -> JoinHandle<T> {
    r.unwrap_or_else(|e| unreachable!("only spawn_on can be refused: {e}"))
}

/// What a running task can learn about itself.
pub mod current {
    use crate::task::waker;
    use std::future::poll_fn;
    use std::panic::Location;
    use std::task::Poll;

    /// The current task's id, name and spawn location, when called from a
    /// Sprint task.
    pub async fn info() -> Option<(crate::TaskId, Option<String>, &'static Location<'static>)> {
        poll_fn(|cx| {
            Poll::Ready(waker::header_of(cx.waker()).map(|h| {
                // SAFETY: the waker of the task being polled keeps its header
                // alive for this poll.
                let meta = unsafe { &h.as_ref().meta };
                (
                    meta.id,
                    meta.name.as_ref().map(|n| n.to_string()),
                    meta.location,
                )
            }))
        })
        .await
    }
}
