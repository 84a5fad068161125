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

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub use sprint_core::config::{self, Config, ConfigError, Level};
pub use sprint_core::memory;
pub use sprint_core::{system, tune};

pub use sprint_io::driver::ProbeError;
/// Whether io_uring can run here, or why not (the I/O driver's probe).
pub fn net_driver_probe() -> Result<(), ProbeError> {
    sprint_io::driver::uring_available()
}
pub use sprint_core::metrics;
pub use sprint_core::topology::{self, Plan};
pub use sprint_core::{
    spawn, spawn_blocking, spawn_local, spawn_local_on, spawn_on, sync, task, time,
    try_spawn_local, yield_now, AbortHandle, BuildError, Handle, IdleError, JoinError, JoinHandle,
    MemoryStats, Runtime, SchedulingError, ShutdownTimeout, SpawnError, TaskId, WorkerStats,
};
pub use sprint_io::buf;
/// Sockets (Unix only: they are built on file descriptors).
#[cfg(unix)]
pub use sprint_io::net;

mod builder;
pub use builder::Builder;
pub use sprint_macros::{main, test};

mod signals;

#[doc(hidden)]
pub mod __private {
    pub use crate::signals::{run_main, run_test, MainOptions};
}
