//! Sprint's core: pinned workers, tasks, run queues, wakers, timers, the
//! level-driven scheduling policy, and the configuration they run by.
//!
//! Most programs use the `sprint` facade crate, which re-exports this one.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod adaptive;
mod blocking;
mod builder;
pub mod config;
mod coop;
pub mod driver;
pub(crate) mod loom;
pub mod memory;
pub mod metrics;
mod runtime;
pub(crate) mod sched;
mod spawn;
pub mod sync;
pub mod system;
pub mod task;
pub mod time;
pub mod topology;
pub mod tune;

pub use builder::Builder;
pub use config::{Config, ConfigError, Level};
pub use memory::MemoryStats;
pub use runtime::{
    BuildError, Handle, IdleError, Runtime, SchedulingError, ShutdownTimeout, WorkerStats,
};
pub use sched::SpawnError;
pub use spawn::{spawn, spawn_blocking, spawn_local, spawn_local_on, spawn_on, try_spawn_local};
pub use sprint_alloc;
pub use task::{AbortHandle, JoinError, JoinHandle, TaskId};

pub use coop::yield_now;
