//! The seam between a worker and an I/O driver.
//!
//! A worker with nothing to run waits in its driver (epoll_wait,
//! io_uring_enter) until an I/O event, the next timer deadline or a wake
//! from another thread; while it has work it still turns the driver
//! without blocking every `event_interval` polls, so that I/O completes
//! under load. `sprint-io` implements [`Driver`]; the `sprint` facade
//! passes its factory to [`Runtime::new`](crate::Runtime::new).
//! Without a driver a worker sleeps on its thread's park token.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One worker's event source. Created on the worker's thread and used only
/// there.
pub trait Driver {
    /// Dispatches ready events, waiting at most `timeout` for the first
    /// (`Some(Duration::ZERO)`: do not wait; `None`: until an event or an
    /// [`Unpark::unpark`]).
    fn turn(&mut self, timeout: Option<Duration>) -> std::io::Result<()>;

    /// What other threads call to interrupt a waiting `turn`.
    fn unparker(&self) -> Arc<dyn Unpark>;

    /// A handle that sockets created on other threads use to register with
    /// this driver (downcast by the driver's crate).
    fn handle(&self) -> Arc<dyn Any + Send + Sync>;

    /// The driver's name, for reports: `epoll`, `io_uring`.
    fn name(&self) -> &'static str;

    /// One line for the start-up report: the driver, the features it
    /// uses, and why it is not the one asked for, if it is not.
    fn describe(&self) -> String {
        self.name().to_string()
    }
}

/// Turns the calling worker's driver once without waiting, and says
/// whether it did: `false` off a worker thread, on a worker without a
/// driver, and from inside the driver's own turn.
///
/// For a driver whose operations complete in its turn rather than in the
/// call that starts them (io_uring): a socket that has just queued an
/// operation calls this from its poll, so that an operation the kernel
/// completes at submission (a send with room in the socket's buffer, a
/// receive with data waiting) is complete before the poll returns, as a
/// send or receive system call would be. Without it the task would wait
/// for the worker's next turn and then for its own turn in the run queue,
/// which under load was tens of microseconds per operation (the relay's
/// latency on io_uring, issue 15). It wakes whichever tasks the turn
/// completes and polls none.
pub fn turn_now() -> bool {
    crate::sched::with_core(|core| core.is_some_and(|c| c.turn_driver(Some(Duration::ZERO))))
}

/// Interrupts a driver's wait from another thread.
pub trait Unpark: Send + Sync + fmt::Debug {
    /// Makes the driver's current or next wait return.
    fn unpark(&self);
}

/// Facts a factory may use to build a worker's driver.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// The worker index.
    pub index: usize,
    /// The CPU it is pinned to, if pinned.
    pub cpu: Option<usize>,
    /// The runtime's configuration.
    pub config: Arc<crate::Config>,
    /// Allowed CPUs no worker is placed on: where a kernel helper thread
    /// (io_uring's SQPOLL) can run without taking a worker's core.
    pub spare_cpus: Vec<usize>,
    /// The worker's arena, where its buffers should come from.
    pub arena: Option<Arc<sprint_alloc::Arena>>,
    /// Where the driver records I/O operation latency (submission to
    /// completion) into `io`; `None` when metrics are off.
    pub io_latency: Option<Arc<crate::metrics::WorkerMetrics>>,
}

/// Builds a worker's driver, on that worker's thread.
pub type DriverFactory = Arc<dyn Fn(&WorkerInfo) -> std::io::Result<Box<dyn Driver>> + Send + Sync>;
