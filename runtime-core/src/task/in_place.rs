//! `block_in_place`: run blocking code on a worker without starving the
//! tasks queued behind it, where another worker can take them.
//!
//! At the stealing levels (work-stealing, steal-when-idle) a worker's
//! `spawn`ed tasks sit in a deque the other workers steal from, and a
//! worker that runs dry steals half of it. So before the closure runs,
//! every other sleeping worker is woken to come and take them; the
//! closure then runs on this thread. What cannot move stays: tasks
//! pinned here (`spawn_local`, `spawn_on`) and this worker's I/O and
//! timers wait until the closure returns. At the thread-per-core levels
//! nothing can take a worker's tasks, so the call is refused with
//! [`BlockInPlaceError`] (use `spawn_blocking`). Off the workers (a
//! `block_on` thread, any other thread) nothing waits on this thread and
//! the closure simply runs.

use crate::config::{Level, Scheduling};
use crate::sched;

/// `block_in_place` was refused: this worker's tasks could not run
/// elsewhere while it blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block_in_place refused on sprint-worker-{worker}: at level {level} the scheduling is {scheduling}, so no other worker can take this worker's tasks while it blocks; use spawn_blocking, or a stealing level (basic, standard, aggressive)")]
pub struct BlockInPlaceError {
    /// The worker it was called on.
    pub worker: usize,
    /// The runtime's level.
    pub level: Level,
    /// Its scheduling now.
    pub scheduling: Scheduling,
}

/// Runs the blocking `f` here, first waking the other workers so they
/// take this worker's stealable tasks; refused (without running `f`) at
/// the thread-per-core levels. See the module notes for what still waits.
///
/// ```
/// # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
/// rt.block_on(async {
///     let h = sprint_core::spawn(async {
///         sprint_core::task::block_in_place(|| std::fs::read_to_string("/proc/self/stat").is_ok())
///     });
///     assert_eq!(h.await.unwrap(), Ok(true));
/// });
/// ```
pub fn block_in_place<F, R>(f: F) -> Result<R, BlockInPlaceError>
where
    F: FnOnce() -> R,
{
    sched::with_core(|core| match core {
        None => Ok(()),
        Some(core) => {
            let rt = &core.rt;
            if !rt.steals() {
                return Err(BlockInPlaceError {
                    worker: core.shared.index,
                    level: rt.info.config.level,
                    scheduling: rt.policy.scheduling(),
                });
            }
            for w in rt.workers.iter() {
                if w.index != core.shared.index && w.parker.is_sleeping() {
                    w.parker.notify();
                }
            }
            Ok(())
        }
    })?;
    Ok(f())
}
