#![allow(dead_code)]

use sprint_core::{Builder, Config, Level, Runtime};

/// A runtime at `level` with `workers` workers, ignoring SPRINT_* variables.
pub fn rt(level: Level, workers: usize) -> Runtime {
    Builder::new()
        .level(level)
        .read_env(false)
        .workers(workers)
        .build()
        .expect("runtime starts")
}

/// Like `rt`, with a change to the configuration.
pub fn rt_with(level: Level, f: impl FnOnce(&mut Config) + 'static) -> Runtime {
    Builder::new()
        .level(level)
        .read_env(false)
        .configure(f)
        .build()
        .expect("runtime starts")
}

/// The name of the current thread.
pub fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_string()
}
