//! Choosing and building a worker's driver.
//!
//! `io_driver` (`SPRINT_IO`) names the driver. The level presets ask for
//! io_uring from Standard up; io_uring is probed once per process (can a
//! ring be set up, does it have every opcode the driver uses?) and, where
//! it cannot run, the worker starts on epoll with the reason in the
//! start-up report. Where io_uring was asked for explicitly (the
//! environment, a file or code set `io_driver`), or `strict` is on, that
//! is an error instead: forcing a driver never silently gives another.

mod epoll;
mod probe_error;
#[cfg(target_os = "linux")]
pub(crate) mod uring;

// The drivers and their handles are built by `factory()` and reached by
// sockets through `current()`: nothing for a user to call.
pub(crate) use epoll::{EpollDriver, EpollHandle};
pub use probe_error::ProbeError;
#[cfg(target_os = "linux")]
pub(crate) use uring::{UringDriver, UringHandle};

use crate::buf::BufferPool;
use sprint_core::config::{IoDriver, Source};
use sprint_core::driver::{Driver, DriverFactory, WorkerInfo};
use sprint_core::Config;
use std::cell::RefCell;
use std::io;
use std::sync::Arc;

/// Events one turn of the epoll driver takes at most.
const EVENTS_PER_TURN: usize = 1024;

/// A worker's driver, as sockets see it.
#[derive(Debug, Clone)]
pub(crate) enum Current {
    Epoll(Arc<EpollHandle>),
    #[cfg(target_os = "linux")]
    Uring(Arc<UringHandle>),
}

impl Current {
    pub(crate) fn pool(&self) -> &BufferPool {
        match self {
            Current::Epoll(h) => h.pool(),
            #[cfg(target_os = "linux")]
            Current::Uring(h) => h.pool(),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Which driver a runtime gets, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverChoice {
    /// The driver asked for.
    pub requested: IoDriver,
    /// The driver that runs: `epoll` or `io_uring`.
    pub chosen: &'static str,
    /// Why it differs from the request, if it does.
    pub fallback_reason: Option<String>,
}

/// Whether `config` asks for its driver explicitly, not by level preset.
fn forced(config: &Config) -> Option<&Source> {
    match config.sources().get("io_driver") {
        Some(Source::Preset(_)) | None => None,
        Some(s) => Some(s),
    }
}

/// Decides the driver for `config`: io_uring if asked for and it can run;
/// else epoll with the reason, or an error if io_uring was forced or
/// `strict` is on.
pub fn choose(config: &Config) -> io::Result<DriverChoice> {
    let requested = config.io_driver;
    match requested {
        IoDriver::Epoll => Ok(DriverChoice {
            requested,
            chosen: "epoll",
            fallback_reason: None,
        }),
        IoDriver::Uring => match probe_uring() {
            Ok(_) => Ok(DriverChoice {
                requested,
                chosen: "io_uring",
                fallback_reason: None,
            }),
            Err(reason) => {
                if let Some(src) = forced(config) {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("io_driver = uring was forced ({src}), but io_uring cannot run here: {reason}"),
                    ));
                }
                if config.strict {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("io_driver = uring is required in strict mode, but io_uring cannot run here: {reason}"),
                    ));
                }
                Ok(DriverChoice {
                    requested,
                    chosen: "epoll",
                    fallback_reason: Some(format!("fell back from io_uring: {reason}")),
                })
            }
        },
    }
}

/// The start-up probe: io_uring's capabilities here, or why it cannot run.
#[cfg(target_os = "linux")]
fn probe_uring() -> Result<uring::Caps, ProbeError> {
    uring::probe()
}

/// io_uring is a Linux interface: elsewhere the probe says so, and the
/// runtime runs on mio's poller (kqueue on macOS and the BSDs).
#[cfg(not(target_os = "linux"))]
fn probe_uring() -> Result<(), ProbeError> {
    Err(ProbeError::NotLinux)
}

/// Whether io_uring can run here (the start-up probe), or why not.
pub fn uring_available() -> Result<(), ProbeError> {
    probe_uring().map(drop)
}

/// The factory the `sprint` facade hands to the core builder.
pub fn factory() -> DriverFactory {
    Arc::new(|info: &WorkerInfo| -> io::Result<Box<dyn Driver>> {
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut choice = choose(&info.config)?;
        #[cfg(target_os = "linux")]
        if choice.chosen == "io_uring" {
            let caps = uring::probe().map_err(io::Error::other)?;
            match UringDriver::new(info, &caps, &choice) {
                Ok(d) => {
                    let handle = d.uring_handle();
                    CURRENT.with(|c| *c.borrow_mut() = Some(Current::Uring(handle)));
                    return Ok(Box::new(d));
                }
                Err(e) => {
                    let reason = format!(
                        "io_uring probed fine but worker {}'s ring failed: {e}",
                        info.index
                    );
                    if forced(&info.config).is_some() || info.config.strict {
                        return Err(io::Error::new(e.kind(), reason));
                    }
                    choice.chosen = "epoll";
                    choice.fallback_reason = Some(format!("fell back from io_uring: {reason}"));
                }
            }
        }
        if let Some(reason) = &choice.fallback_reason {
            if info.index == 0 {
                tracing::warn!(requested = %choice.requested, chosen = choice.chosen, %reason, "I/O driver fallback");
            }
        }
        let driver = EpollDriver::new(
            EVENTS_PER_TURN,
            choice.fallback_reason.as_deref(),
            info.arena.as_ref(),
            info.io_latency.clone(),
        )?;
        let handle = driver.epoll_handle();
        CURRENT.with(|c| *c.borrow_mut() = Some(Current::Epoll(handle)));
        Ok(Box::new(driver))
    })
}

/// The driver a socket created on this thread uses: this worker's, or
/// worker 0's on a thread outside the workers (`block_on`).
pub(crate) fn current() -> io::Result<Current> {
    if let Some(h) = CURRENT.with(|c| c.borrow().clone()) {
        return Ok(h);
    }
    let rt = sprint_core::Handle::try_current().ok_or_else(|| {
        io::Error::other("no Sprint runtime on this thread: create sockets in a task or inside Runtime::block_on")
    })?;
    let (any, _) = rt.driver(0).ok_or_else(|| {
        io::Error::other("this Sprint runtime has no I/O driver: build it with sprint::Builder (not sprint_core's)")
    })?;
    let any = match any.downcast::<EpollHandle>() {
        Ok(h) => return Ok(Current::Epoll(h)),
        Err(any) => any,
    };
    #[cfg(target_os = "linux")]
    let any = match any.downcast::<UringHandle>() {
        Ok(h) => return Ok(Current::Uring(h)),
        Err(any) => any,
    };
    Err(any).map_err(|_| io::Error::other("worker 0's driver is neither epoll nor io_uring"))
}
