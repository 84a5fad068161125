//! The runtime builder: a level and a file chosen in code; the file and
//! the `SPRINT_*` variables still override what code sets. It resolves
//! the configuration with sprint-config's [`ConfigBuilder`] and starts a
//! [`Runtime`], which always has I/O.

use crate::config::ConfigBuilder;
use crate::{BuildError, Config, ConfigError, Level, Runtime};
use std::path::PathBuf;

/// Builds a [`Runtime`].
///
/// ```
/// let rt = sprint::Builder::new().level(sprint::Level::Basic).workers(1).build().unwrap();
/// assert_eq!(rt.start_report().plan.workers.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct Builder(ConfigBuilder);

impl Builder {
    /// A builder at the Standard level that reads `SPRINT_*` variables.
    pub fn new() -> Builder {
        Builder(ConfigBuilder::new())
    }

    /// Starts from `config` exactly: no file, no environment.
    pub fn from_config(config: Config) -> Builder {
        Builder(ConfigBuilder::from_config(config))
    }

    /// The level whose preset is the base.
    pub fn level(self, level: Level) -> Builder {
        Builder(self.0.level(level))
    }

    /// A TOML file, read when `build` runs (relative to the working
    /// directory).
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

    /// The resolved configuration, its fields validated, without starting
    /// anything (the machine's CPUs and memory are checked at `build`).
    pub fn config(self) -> Result<Config, ConfigError> {
        self.0.resolve()
    }

    /// Resolves the configuration and starts the runtime with its I/O
    /// driver. The start-up report (each worker's I/O driver, its features,
    /// and the reason for any fallback) is logged at `info`.
    pub fn build(self) -> Result<Runtime, BuildError> {
        Runtime::new(self.config()?)
    }
}
