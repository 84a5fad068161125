//! Why a runtime could not start, and why a live change was refused.

use std::time::Duration;

/// Why a runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is invalid, or cannot be planned on this machine
    /// (CPUs, memory).
    #[error(transparent)]
    Plan(#[from] sprint_os::PlanError),
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
    Tune(#[from] sprint_os::TuneError),
    /// Process memory could not be locked as asked (strict mode).
    #[error("memory: {0}")]
    Memory(#[from] sprint_os::memory::MemoryError),
    /// A worker's arena could not be made as asked (strict mode).
    #[error("memory: sprint-worker-{worker}: {source}")]
    Arena {
        /// The worker.
        worker: usize,
        /// Why.
        source: sprint_alloc::ArenaError,
    },
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

impl From<crate::ConfigError> for BuildError {
    fn from(e: crate::ConfigError) -> BuildError {
        BuildError::Plan(sprint_os::PlanError::Config(e))
    }
}

/// [`Handle::set_idle`](crate::Handle::set_idle) refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker {worker} runs real-time and must not spin: {why}")]
pub struct IdleError {
    /// The worker.
    pub worker: usize,
    /// Why.
    pub why: String,
}

/// [`Handle::set_scheduling`](crate::Handle::set_scheduling) refused a change.
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
