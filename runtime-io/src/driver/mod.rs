//! Choosing and building a worker's driver.
//!
//! `SPRINT_IO` (the `io_driver` field) names the driver. io_uring is not
//! built yet: asking for it falls back to epoll with that reason in the
//! report, and strict mode refuses; the fallback is not silent.

mod epoll;

pub use epoll::{EpollDriver, EpollHandle};

use sprint_core::config::IoDriver;
use sprint_core::driver::{Driver, DriverFactory, WorkerInfo};
use std::cell::RefCell;
use std::io;
use std::sync::Arc;

/// Events one turn of a driver takes at most.
const EVENTS_PER_TURN: usize = 1024;

thread_local! {
    static CURRENT: RefCell<Option<Arc<EpollHandle>>> = const { RefCell::new(None) };
}

/// Which driver a runtime got, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverChoice {
    /// The driver asked for.
    pub requested: IoDriver,
    /// The driver that runs.
    pub chosen: &'static str,
    /// Why it differs from the request, if it does.
    pub fallback_reason: Option<String>,
}

/// Decides the driver for `requested`, or fails in strict mode.
pub fn choose(requested: IoDriver, strict: bool) -> io::Result<DriverChoice> {
    match requested {
        IoDriver::Epoll => Ok(DriverChoice {
            requested,
            chosen: "epoll",
            fallback_reason: None,
        }),
        IoDriver::Uring => {
            let reason = "the io_uring driver is not built yet".to_string();
            if strict {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("io_driver = uring was required (strict), but {reason}"),
                ));
            }
            Ok(DriverChoice {
                requested,
                chosen: "epoll",
                fallback_reason: Some(reason),
            })
        }
    }
}

/// The factory the `sprint` facade hands to the core builder.
pub fn factory() -> DriverFactory {
    Arc::new(|info: &WorkerInfo| -> io::Result<Box<dyn Driver>> {
        let choice = choose(info.config.io_driver, info.config.strict)?;
        if let Some(reason) = &choice.fallback_reason {
            if info.index == 0 {
                tracing::warn!(requested = %choice.requested, chosen = choice.chosen, %reason, "I/O driver fallback");
            }
        }
        let driver = EpollDriver::new(EVENTS_PER_TURN)?;
        let handle = driver.epoll_handle();
        CURRENT.with(|c| *c.borrow_mut() = Some(handle));
        Ok(Box::new(driver))
    })
}

/// The driver a socket created on this thread registers with: this
/// worker's, or worker 0's on a thread outside the workers (`block_on`).
pub(crate) fn current() -> io::Result<Arc<EpollHandle>> {
    if let Some(h) = CURRENT.with(|c| c.borrow().clone()) {
        return Ok(h);
    }
    let rt = sprint_core::Handle::try_current().ok_or_else(|| {
        io::Error::other("no Sprint runtime on this thread: create sockets in a task or inside Runtime::block_on")
    })?;
    let (any, _) = rt.driver(0).ok_or_else(|| {
        io::Error::other("this Sprint runtime has no I/O driver: build it with sprint::Builder (not sprint_core's)")
    })?;
    any.downcast::<EpollHandle>()
        .map_err(|_| io::Error::other("worker 0's driver is not an epoll driver"))
}
