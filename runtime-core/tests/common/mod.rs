#![allow(dead_code)]

use sprint_core::{Builder, Config, Level, Runtime};

/// A runtime at `level` with `workers` workers, ignoring SPRINT_* variables.
pub fn rt(level: Level, workers: usize) -> Runtime {
    Builder::new()
        .level(level)
        .read_env(false)
        .workers(workers)
        .configure(no_rt)
        .build()
        .expect("runtime starts")
}

/// Like `rt`, with a change to the configuration.
pub fn rt_with(level: Level, f: impl FnOnce(&mut Config) + 'static) -> Runtime {
    Builder::new()
        .level(level)
        .read_env(false)
        .configure(no_rt)
        .configure(f)
        .build()
        .expect("runtime starts")
}

/// Real-time scheduling is tested in tests/tune.rs alone: a SCHED_FIFO
/// worker beside the other tests' threads would slow or starve them.
pub fn no_rt(c: &mut Config) {
    c.rt_policy = sprint_core::config::RtPolicy::None;
}

/// The name of the current thread.
pub fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_string()
}
