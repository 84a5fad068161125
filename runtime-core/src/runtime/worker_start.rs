//! One worker thread's start, on that thread: pin it, make its arena
//! (after pinning, so that its pages are first touched on the worker's
//! own node), apply its thread settings, build its I/O driver, report
//! what it did, then run the worker loop until shutdown and put its
//! settings back.

use super::report::WorkerStart;
use super::BuildError;
use crate::driver::{DriverFactory, WorkerInfo};
use crate::sched::worker::Core;
use crate::sched::{self, Shared};
use crate::task::raw::TaskRef;
use crossbeam_deque::Worker as Deque;
use std::sync::{mpsc, Arc};

/// Everything a worker thread needs to start.
pub(super) struct Start {
    pub(super) shared: Arc<Shared>,
    pub(super) index: usize,
    pub(super) cpu: usize,
    pub(super) pinned: bool,
    pub(super) arena: Option<sprint_alloc::ArenaConfig>,
    pub(super) deque: Option<Deque<TaskRef>>,
    pub(super) factory: Option<DriverFactory>,
    pub(super) info: WorkerInfo,
    /// Whether this worker takes the last allowed CPU (no real-time
    /// busy-polling there).
    pub(super) last_cpu: bool,
    pub(super) ready: mpsc::Sender<Result<(usize, WorkerStart), BuildError>>,
    pub(super) done: mpsc::Sender<()>,
}

impl Start {
    /// The worker thread's body.
    pub(super) fn run(self) {
        let Start {
            shared,
            index,
            cpu,
            pinned,
            arena,
            deque,
            factory,
            mut info,
            last_cpu,
            ready,
            done,
        } = self;
        let ws = shared.workers[index].clone();
        let pin_ok = !pinned || core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
        #[cfg(target_os = "linux")]
        ws.tid.store(
            sprint_os::thread::current_tid(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let mut report = WorkerStart::default();
        let mut result = Ok(());
        if let Some(cfg) = arena {
            match sprint_alloc::Arena::new(cfg) {
                Ok(a) => {
                    report.memory.extend(a.notes().iter().cloned());
                    let _ = ws.slab.set(Arc::new(sprint_alloc::Slab::new(Arc::new(a))));
                }
                Err(source @ sprint_alloc::ArenaError::Strict(_)) => {
                    result = Err(BuildError::Arena {
                        worker: index,
                        source,
                    });
                }
                Err(e) => report
                    .memory
                    .push(format!("no arena ({e}): the global allocator serves")),
            }
        }
        // The worker's own settings: real-time class, nice, timer slack;
        // put back before the thread ends.
        let rt_denied = sprint_os::tune::rt_busy_poll_denied(&info.config, last_cpu);
        let thread_tuning = match sprint_os::tune::apply_thread(
            &info.config,
            &format!("sprint-worker-{index}"),
            rt_denied.as_ref(),
            &mut report.tuning,
        ) {
            Ok(g) => Some(g),
            Err(e) => {
                result = result.and(Err(BuildError::Tune(e)));
                None
            }
        };
        #[cfg(target_os = "linux")]
        {
            report.sched = sprint_os::thread::sched(0).ok();
        }
        info.io_latency = ws.metrics_on.then(|| ws.metrics.clone());
        info.arena = ws.slab.get().map(|s| s.arena().clone());
        let core = Core::new(ws, shared.clone(), deque);
        match factory.map(|f| f(&info)) {
            None => {}
            Some(Ok(d)) => {
                report.driver = Some(d.describe());
                core.set_driver(d);
            }
            Some(Err(source)) => {
                result = result.and(Err(BuildError::Driver {
                    worker: index,
                    source,
                }));
            }
        }
        // Without a driver (none given, or it failed to start) the worker
        // sleeps on its park token; with one, the driver is already
        // registered and this does nothing.
        core.shared.parker.register_current();
        let _ = ready.send(if !pin_ok {
            Err(BuildError::Pin { worker: index, cpu })
        } else {
            result.map(|()| (index, report))
        });
        drop(ready);
        sched::enter_core(&core, || core.run());
        drop(core);
        drop(thread_tuning);
        drop(shared);
        let _ = done.send(());
    }
}
