//! The runtime builder of the facade: sprint-core's builder with
//! sprint-io's driver wired in, so that every runtime built here has
//! sockets.

use crate::{BuildError, Config, ConfigError, Level, Runtime};
use std::path::PathBuf;

/// Builds a [`Runtime`] whose workers wait in an I/O driver.
///
/// ```
/// let rt = sprint::Builder::new().level(sprint::Level::Basic).workers(1).build().unwrap();
/// let addr = rt.block_on(async {
///     let l = sprint::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     l.local_addr().unwrap()
/// });
/// assert!(addr.port() > 0);
/// ```
#[derive(Debug)]
pub struct Builder(sprint_core::Builder);

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Standard level, reading `SPRINT_*` variables.
    pub fn new() -> Builder {
        Builder(sprint_core::Builder::new())
    }

    /// Starts from `config` exactly: no file, no environment.
    pub fn from_config(config: Config) -> Builder {
        Builder(sprint_core::Builder::from_config(config))
    }

    /// The level whose preset is the base.
    pub fn level(self, level: Level) -> Builder {
        Builder(self.0.level(level))
    }

    /// A TOML file read at `build` (relative to the working directory).
    pub fn config_file(self, path: impl Into<PathBuf>) -> Builder {
        Builder(self.0.config_file(path))
    }

    /// Whether `SPRINT_*` variables apply (they do by default).
    pub fn read_env(self, yes: bool) -> Builder {
        Builder(self.0.read_env(yes))
    }

    /// Changes the configuration in code, over the preset.
    pub fn configure(self, f: impl FnOnce(&mut Config) + 'static) -> Builder {
        Builder(self.0.configure(f))
    }

    /// The number of workers.
    pub fn workers(self, n: usize) -> Builder {
        Builder(self.0.workers(n))
    }

    /// The CPUs to place workers on.
    pub fn cpus(self, cpus: Vec<usize>) -> Builder {
        Builder(self.0.cpus(cpus))
    }

    /// The resolved, validated configuration, without starting anything.
    pub fn config(self) -> Result<Config, ConfigError> {
        self.0.config()
    }

    /// Resolves the configuration and starts the runtime with its driver.
    /// The start-up report (each worker's I/O driver, its features, and
    /// the reason for any fallback) is logged at `info`.
    pub fn build(self) -> Result<Runtime, BuildError> {
        let rt = self.0.driver(sprint_io::driver::factory()).build()?;
        for (worker, line) in rt.handle().driver_report().iter().enumerate() {
            tracing::info!(worker, driver = %line, "I/O driver");
        }
        Ok(rt)
    }
}
