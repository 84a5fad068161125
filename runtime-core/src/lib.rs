//! Sprint's executor: pinned workers, tasks, run queues, wakers, timers,
//! the level-driven scheduling policy, the blocking pool, and the
//! hot-path metric instruments. The start plan and every OS setting come
//! from sprint-os, the configuration from sprint-config; the I/O driver
//! plugs in through [`driver`].
//!
//! Most programs use the `sprint` facade crate, whose `Runtime` always has
//! I/O.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod blocking;
mod context;
mod coop;
pub mod driver;
pub(crate) mod loom;
pub mod mesh;
pub mod metrics;
mod runtime;
pub(crate) mod sched;
mod spawn;
pub mod sync;
pub mod task;
pub mod time;

pub use runtime::{
    BuildError, EnterGuard, Handle, IdleError, MemoryStats, Runtime, SchedulingError,
    ShutdownTimeout, StartMemory, StartReport, WorkerStart, WorkerStats,
};
pub use sched::SpawnError;
pub use spawn::{spawn, spawn_blocking, spawn_local, spawn_local_on, spawn_on, try_spawn_local};
/// The configuration (the sprint-config crate).
pub use sprint_config as config;
pub use sprint_config::{Config, ConfigError, Level};
pub use task::{AbortHandle, JoinError, JoinHandle, TaskId};

pub use coop::yield_now;
