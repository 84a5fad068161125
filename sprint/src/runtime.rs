//! The facade's runtime: sprint-core's executor with sprint-io's driver
//! on every worker (so sockets always work), and the operations side
//! (`/metrics`, the adaptive controller) started where the configuration
//! asks. Dropping it stops the controller, then the `/metrics` server,
//! then shuts the executor down and puts back what it changed.

use crate::{Config, Handle, JoinHandle};
#[cfg(feature = "metrics-server")]
use sprint_ops::export;
#[cfg(feature = "adaptive")]
use sprint_ops::Controller;
use sprint_ops::{Observed, Problem, Stats};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The executor could not start (configuration, plan, threads,
    /// tuning, memory, I/O drivers).
    #[error(transparent)]
    Start(#[from] sprint_core::BuildError),
    /// The `/metrics` server could not listen on its address.
    #[error("cannot serve /metrics on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The adaptive controller's thread could not start.
    #[error("cannot start the adaptive controller: {0}")]
    Adaptive(std::io::Error),
    /// The configuration asks for a part this build of `sprint` left out.
    #[error("{setting} needs sprint's `{feature}` feature, which this build leaves out")]
    Unavailable {
        /// The setting, e.g. `metrics_addr`.
        setting: &'static str,
        /// The feature that brings the part.
        feature: &'static str,
    },
}

/// The `/metrics` server, or nothing in a build without it.
#[cfg(not(feature = "metrics-server"))]
#[derive(Debug)]
enum NoServer {}

/// The adaptive controller, or nothing in a build without it.
#[cfg(not(feature = "adaptive"))]
#[derive(Debug)]
enum NoController {}

impl From<crate::ConfigError> for BuildError {
    fn from(e: crate::ConfigError) -> BuildError {
        BuildError::Start(e.into())
    }
}

/// A Sprint runtime whose workers wait in an I/O driver (io_uring, or
/// epoll as the level or the probe says). Dropping it shuts it down (see
/// [`Runtime::shutdown_timeout`]).
///
/// ```
/// let rt = sprint::Runtime::new(sprint::Config::for_level(sprint::Level::Basic)).unwrap();
/// let addr = rt.block_on(async {
///     let l = sprint::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     l.local_addr().unwrap()
/// });
/// assert!(addr.port() > 0);
/// ```
#[derive(Debug)]
pub struct Runtime {
    // Fields drop in order: the controller stops first (no level moves
    // during shutdown), then the /metrics server, then the executor.
    #[cfg(feature = "adaptive")]
    adaptive: Option<Controller>,
    #[cfg(not(feature = "adaptive"))]
    adaptive: Option<NoController>,
    #[cfg(feature = "metrics-server")]
    metrics: Option<export::Server>,
    #[cfg(not(feature = "metrics-server"))]
    metrics: Option<NoServer>,
    observed: Observed,
    core: sprint_core::Runtime,
}

impl Runtime {
    /// Starts a runtime from `config` exactly as given (see [`Builder`]
    /// for the level, the file and the environment).
    ///
    /// [`Builder`]: crate::Builder
    pub fn new(config: Config) -> Result<Runtime, BuildError> {
        let core = sprint_core::Runtime::new(config, Some(sprint_io::driver::factory()))?;
        for (worker, line) in core.start_report().drivers().iter().enumerate() {
            tracing::info!(worker, driver = %line, "I/O driver");
        }
        #[cfg(feature = "adaptive")]
        let adaptive = if core.config().adaptive {
            Some(Controller::start(core.handle().clone()).map_err(BuildError::Adaptive)?)
        } else {
            None
        };
        #[cfg(not(feature = "adaptive"))]
        let adaptive: Option<NoController> = match core.config().adaptive {
            true => {
                return Err(BuildError::Unavailable {
                    setting: "adaptive",
                    feature: "adaptive",
                })
            }
            false => None,
        };
        #[cfg(feature = "adaptive")]
        let state = adaptive.as_ref().map(|c| c.state().clone());
        #[cfg(not(feature = "adaptive"))]
        let state = None;
        let observed = Observed::new(
            core.handle().clone(),
            Arc::new(core.start_report().clone()),
            state,
        );
        #[cfg(feature = "metrics-server")]
        let metrics = match &core.config().metrics_addr {
            Some(addr) => Some(export::Server::start(addr, observed.clone()).map_err(
                |source| BuildError::Metrics {
                    addr: addr.clone(),
                    source,
                },
            )?),
            None => None,
        };
        #[cfg(not(feature = "metrics-server"))]
        let metrics: Option<NoServer> = match core.config().metrics_addr {
            Some(_) => {
                return Err(BuildError::Unavailable {
                    setting: "metrics_addr",
                    feature: "metrics-server",
                })
            }
            None => None,
        };
        Ok(Runtime {
            adaptive,
            metrics,
            observed,
            core,
        })
    }

    /// A builder: the Standard level, the `SPRINT_*` variables read.
    pub fn builder() -> crate::Builder {
        crate::Builder::new()
    }

    /// The handle, to clone and send to other threads.
    pub fn handle(&self) -> &Handle {
        self.core.handle()
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        self.core.config()
    }

    /// The start-up report: placement, every tuning setting, the memory
    /// plan, and each worker's I/O driver.
    pub fn start_report(&self) -> &crate::StartReport {
        self.core.start_report()
    }

    /// Runs `future` on this thread to completion. Tasks it spawns go to
    /// the workers; timers it awaits are driven by worker 0.
    ///
    /// # Panics
    /// When called from a worker thread, or inside another `block_on`.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.core.block_on(future)
    }

    /// Makes this runtime the current one on this thread until the guard
    /// drops (see [`Handle::enter`]): `spawn`, `spawn_on` and timers then
    /// work outside `block_on`.
    pub fn enter(&self) -> crate::EnterGuard<'_> {
        self.core.enter()
    }

    /// See [`Handle::spawn`].
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.core.spawn(future)
    }

    /// Each worker's counters (see [`Handle::worker_stats`]).
    pub fn worker_stats(&self) -> Vec<crate::WorkerStats> {
        self.core.worker_stats()
    }

    /// Everything measured, in one serde value (the seed's `GetStats`).
    pub fn stats(&self) -> Stats {
        self.observed.stats()
    }

    /// The problems the runtime sees now (empty when healthy).
    pub fn health(&self) -> Vec<Problem> {
        self.observed.health()
    }

    /// The runtime as the operations side sees it (for a `/metrics`
    /// server of one's own, or `Stats` from another thread).
    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    /// The address `/metrics` is served on, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        #[cfg(feature = "metrics-server")]
        return self.metrics.as_ref().map(|s| s.addr());
        #[cfg(not(feature = "metrics-server"))]
        None
    }

    /// Shuts down: stops the controller and the `/metrics` server, cancels
    /// every task (dropping `!Send` futures on their own worker), joins the
    /// workers and the blocking pool, within `timeout`. Threads still busy
    /// past it are left detached.
    pub fn shutdown_timeout(self, timeout: Duration) -> Result<(), sprint_core::ShutdownTimeout> {
        let Runtime {
            adaptive,
            metrics,
            observed,
            core,
        } = self;
        {
            // Locals drop last first: the controller, then the /metrics
            // server, then the observer, all before the executor.
            let _observed = observed;
            let _server = metrics;
            let _controller = adaptive;
        }
        core.shutdown_timeout(timeout)
    }
}
