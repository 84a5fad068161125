//! Sprint: a thread-per-core async runtime for the hot path of a
//! low-latency transaction relay.
//!
//! Sprint runs one worker thread per core, each with its own run queue,
//! timers, I/O driver (io_uring, or epoll where io_uring cannot run) and
//! memory arena, and tunes the machine for them by one of five levels.
//! It speaks the API a tokio user knows (`spawn`, `JoinHandle`, `sleep`,
//! `mpsc`, `TcpListener`, …; see [the guide](guide::coming_from_tokio)),
//! and adds what a pinned core wants: `spawn_local` on any worker,
//! `spawn_on(worker, …)`, owned-buffer I/O, per-worker state and a
//! cross-core mesh, latency histograms on by default, and every OS change
//! restored at exit.
//!
//! ```no_run
//! use sprint::net::TcpListener;
//!
//! #[sprint::main(level = "standard")]
//! async fn main() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:8080")?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         sprint::spawn_local(async move {
//!             let mut buf = [0u8; 4096];
//!             while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!                 if stream.write_all(&buf[..n]).await.is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//! }
//! ```
//!
//! # Which level
//!
//! | level | for | what it changes |
//! |---|---|---|
//! | `basic` | a shared machine, or a first try: behaves like tokio | nothing outside the process |
//! | `standard` (default) | a service on its own machine | io_uring, a short spin before parking, arenas |
//! | `aggressive` | latency matters more than CPU | longer spin, prefaulted arenas, lower nice |
//! | `enterprise` | a dedicated box | thread-per-core, locked memory, huge pages, NUMA, SCHED_FIFO where allowed |
//! | `turbo` | the lowest latency at any CPU cost | busy-polling workers, SQPOLL on a spare CPU |
//!
//! Each level's settings, and the privilege each needs, are in
//! [`config`]; a level that lacks a privilege starts degraded and says so
//! in [`Runtime::start_report`]. `SPRINT_LEVEL`, a TOML file or
//! [`Builder`] choose it, and `adaptive = true` moves between levels with
//! the load.
//!
//! # Modules
//!
//! - [`task`]: spawning, joining, task-locals, `block_in_place`.
//! - [`time`]: sleeps, timeouts, intervals, a pausable clock for tests.
//! - [`sync`]: channels, locks, `Notify`, `Semaphore`, `watch`,
//!   `broadcast`, `JoinSet`, each with a `!Send` local flavour.
//! - [`net`]: TCP, UDP and Unix sockets; [`buf`]: owned buffers and the
//!   worker's buffer pool.
//! - `fs` and `process` (Linux): files and child processes.
//! - `signal` and [`shutdown`]: signals as futures, and the drain on
//!   SIGINT/SIGTERM that `#[sprint::main]` runs.
//! - `compat` (features `hyper`, `tokio-io`): hyper, axum and tokio's I/O
//!   crates on Sprint.
//! - [`mesh`]: messages between workers over a ring per pair of workers,
//!   and `Sharded<T>`, one value per worker reached with `invoke_on`.
//! - [`metrics`]: histograms, counters, stats, health and `/metrics`;
//!   [`memory`]: allocation counting and mimalloc.
//! - [`config`]: the levels and every setting.
//!
//! The crates behind it, each usable alone: `sprint-config` (the levels
//! and the configuration), `sprint-alloc` (arenas), `sprint-os` (what
//! Sprint reads and changes in the OS), `sprint-core` (the executor),
//! `sprint-io` (drivers and sockets) and `sprint-ops` (stats, health,
//! `/metrics`, the adaptive controller).

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub use sprint_core::config::{self, Config, ConfigError, CpuList, Level};
/// Messages between workers over per-pair rings, and per-worker sharded
/// state.
pub use sprint_core::mesh;
pub use sprint_core::task_local;
pub use sprint_core::{
    spawn, spawn_blocking, spawn_local, spawn_local_on, spawn_on, sync, task, time,
    try_spawn_local, yield_now, AbortHandle, EnterGuard, Handle, IdleError, JoinError, JoinHandle,
    MemoryStats, SchedulingError, ShutdownTimeout, SpawnError, StartMemory, StartReport, TaskId,
    WorkerStart, WorkerStats,
};
pub use sprint_io::buf;
/// Files, on io_uring or the blocking pool (Linux).
#[cfg(target_os = "linux")]
pub use sprint_io::fs;
/// Sockets (Unix only: they are built on file descriptors).
#[cfg(unix)]
pub use sprint_io::net;
/// Child processes: exits awaited through pidfds, pipes as streams (Linux).
#[cfg(target_os = "linux")]
pub use sprint_io::process;

/// The measurements: histograms and counters to record into, and what
/// the runtime reports ([`Stats`](metrics::Stats), health, `/metrics`).
pub mod metrics {
    pub use sprint_core::metrics::*;
    #[cfg(feature = "metrics-server")]
    pub use sprint_ops::export;
    pub use sprint_ops::health::Problem;
    pub use sprint_ops::stats::*;
    pub use sprint_ops::{Observed, Transition};
}

/// Memory: allocation counting, and mimalloc as the global allocator
/// (feature `mimalloc`).
pub mod memory {
    pub use sprint_alloc::counting;
    #[cfg(feature = "mimalloc")]
    pub use sprint_alloc::mimalloc::MiMalloc;

    /// Returns the global allocator's freed memory to the OS now
    /// (mimalloc's `mi_collect`; the Rust form of the seed's `TriggerGC`).
    #[cfg(feature = "mimalloc")]
    pub fn collect() {
        sprint_alloc::mimalloc::collect()
    }
}

pub use sprint_io::driver::ProbeError;
/// Whether io_uring can run here, or why not (the I/O driver's probe).
pub fn net_driver_probe() -> Result<(), ProbeError> {
    sprint_io::driver::uring_available()
}

#[cfg(all(unix, any(feature = "hyper", feature = "tokio-io")))]
pub mod compat;

mod builder;
mod runtime;
pub use builder::Builder;
pub use runtime::{BuildError, Runtime};
pub use sprint_macros::{main, test};

mod event;
pub mod shutdown;
#[cfg(unix)]
pub mod signal;
mod signals;
pub use signals::install_log_subscriber;

/// Guides for newcomers.
pub mod guide {
    /// What a tokio program uses, and what to write on Sprint.
    #[doc = include_str!("../../docs/coming-from-tokio.md")]
    pub mod coming_from_tokio {}
}

#[doc(hidden)]
pub mod __private {
    pub use crate::signals::{run_main, run_test, MainOptions};
}
