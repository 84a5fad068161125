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

/// Real-time scheduling is tested in tests/tune.rs alone: a SCHED_FIFO
/// worker beside the other tests' threads would slow or starve them.
pub fn no_rt(c: &mut Config) {
    c.rt_policy = sprint_core::config::RtPolicy::None;
}

/// Runs this binary's test `name` alone in a child process with
/// `env_key=case` set (process-wide settings changed there never reach this
/// process); its stdout, after checking that it succeeded.
pub fn run_child(name: &str, env_key: &str, case: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env_key, case)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {name} {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// What follows `tag` on the first line of `out` that has it.
pub fn tagged<'a>(out: &'a str, tag: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.split_once(tag).map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no {tag} in {out}"))
}

/// The name of the current thread.
pub fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_string()
}
