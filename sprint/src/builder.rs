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
pub struct Builder {
    config: ConfigBuilder,
    /// Install a `tracing` subscriber at `build` (see [`Builder::log`]).
    log: bool,
}

impl Builder {
    /// A builder at the Standard level that reads `SPRINT_*` variables.
    pub fn new() -> Builder {
        Builder {
            config: ConfigBuilder::new(),
            log: false,
        }
    }

    /// Starts from `config` exactly: no file, no environment.
    pub fn from_config(config: Config) -> Builder {
        Builder {
            config: ConfigBuilder::from_config(config),
            log: false,
        }
    }

    /// The level whose preset is the base.
    pub fn level(self, level: Level) -> Builder {
        Builder {
            config: self.config.level(level),
            ..self
        }
    }

    /// A TOML file, read when `build` runs (relative to the working
    /// directory).
    pub fn config_file(self, path: impl Into<PathBuf>) -> Builder {
        Builder {
            config: self.config.config_file(path),
            ..self
        }
    }

    /// Whether `SPRINT_*` variables apply (they do by default).
    pub fn read_env(self, yes: bool) -> Builder {
        Builder {
            config: self.config.read_env(yes),
            ..self
        }
    }

    /// Changes the configuration in code, over the preset.
    pub fn configure(self, f: impl FnOnce(&mut Config) + 'static) -> Builder {
        Builder {
            config: self.config.configure(f),
            ..self
        }
    }

    /// The number of workers.
    pub fn workers(self, n: usize) -> Builder {
        Builder {
            config: self.config.workers(n),
            ..self
        }
    }

    /// The CPUs to place workers on.
    pub fn cpus(self, cpus: Vec<usize>) -> Builder {
        Builder {
            config: self.config.cpus(cpus),
            ..self
        }
    }

    /// Installs a `tracing` fmt subscriber at `build`, filtered by
    /// `SPRINT_LOG` (default `info`), unless the program already set a
    /// global one (see [`install_log_subscriber`](crate::install_log_subscriber)).
    /// Off by default: Sprint never installs a subscriber unasked, so
    /// `tracing_subscriber::fmt().init()` in the program works as usual.
    pub fn log(self, yes: bool) -> Builder {
        Builder { log: yes, ..self }
    }

    /// The resolved configuration, its fields validated, without starting
    /// anything (the machine's CPUs and memory are checked at `build`).
    pub fn config(self) -> Result<Config, ConfigError> {
        self.config.resolve()
    }

    /// Resolves the configuration and starts the runtime with its I/O
    /// driver. The start-up report (each worker's I/O driver, its features,
    /// and the reason for any fallback) is logged at `info`.
    pub fn build(self) -> Result<Runtime, BuildError> {
        if self.log {
            crate::install_log_subscriber();
        }
        Runtime::new(self.config()?)
    }
}
