//! What the integration tests share: runtimes without real-time
//! scheduling, child processes, waits on a condition (never a sleep that
//! hopes something has happened) and the skips a test declares.
#![allow(dead_code)]

use sprint_core::config::ConfigBuilder;
use sprint_core::{BuildError, Config, Level, Runtime};

/// Starts a runtime (without an I/O driver) from what a builder resolves.
pub trait Start {
    /// Resolves the configuration and starts the runtime.
    fn build(self) -> Result<Runtime, BuildError>;
}

impl Start for ConfigBuilder {
    fn build(self) -> Result<Runtime, BuildError> {
        Runtime::new(self.resolve()?, None)
    }
}

/// A runtime at `level` with `workers` workers, ignoring SPRINT_* variables.
pub fn rt(level: Level, workers: usize) -> Runtime {
    ConfigBuilder::new()
        .level(level)
        .read_env(false)
        .workers(workers)
        .configure(no_rt)
        .build()
        .expect("runtime starts")
}

/// Like `rt`, with a change to the configuration.
pub fn rt_with(level: Level, f: impl FnOnce(&mut Config) + 'static) -> Runtime {
    ConfigBuilder::new()
        .level(level)
        .read_env(false)
        .configure(no_rt)
        .configure(f)
        .build()
        .expect("runtime starts")
}

#[allow(unused_imports)]
pub use sprint_testkit::*;

/// Real-time scheduling is tested in tests/tune.rs alone: a SCHED_FIFO
/// worker beside the other tests' threads would slow or starve them.
pub fn no_rt(c: &mut Config) {
    c.rt_policy = sprint_core::config::RtPolicy::None;
}

/// The name of the current thread.
pub fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_string()
}
