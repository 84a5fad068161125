//! Sprint: a thread-per-core async runtime for the hot path of a
//! low-latency transaction relay. One pinned worker per core, five tuning
//! levels, and `#[sprint::main]`.
//!
//! ```no_run
//! #[sprint::main(level = "standard")]
//! async fn main() {
//!     let h = sprint::spawn(async { 40 + 2 });
//!     assert_eq!(h.await.unwrap(), 42);
//! }
//! ```
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
pub use sprint_core::{
    spawn, spawn_blocking, spawn_local, spawn_local_on, spawn_on, sync, task, time,
    try_spawn_local, yield_now, AbortHandle, Handle, IdleError, JoinError, JoinHandle, MemoryStats,
    SchedulingError, ShutdownTimeout, SpawnError, StartMemory, StartReport, TaskId, WorkerStart,
    WorkerStats,
};
pub use sprint_io::buf;
/// Sockets (Unix only: they are built on file descriptors).
#[cfg(unix)]
pub use sprint_io::net;

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

mod builder;
mod runtime;
pub use builder::Builder;
pub use runtime::{BuildError, Runtime};
pub use sprint_macros::{main, test};

mod signals;

#[doc(hidden)]
pub mod __private {
    pub use crate::signals::{run_main, run_test, MainOptions};
}
