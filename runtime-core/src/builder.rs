//! The runtime builder: choose a level and a file in code; the file and
//! the `SPRINT_*` variables still override what code sets.

use crate::config::{Config, CpuList, Level};
use crate::runtime::{BuildError, Runtime};
use std::path::PathBuf;

type Edit = Box<dyn FnOnce(&mut Config)>;

/// Builds a [`Runtime`].
///
/// ```
/// use sprint_core::{Builder, Level};
/// let rt = Builder::new().level(Level::Basic).workers(1).build().unwrap();
/// assert_eq!(rt.plan().workers.len(), 1);
/// ```
#[derive(Default)]
pub struct Builder {
    level: Option<Level>,
    file: Option<PathBuf>,
    read_env: bool,
    explicit: Option<Config>,
    edits: Vec<Edit>,
    driver: Option<crate::driver::DriverFactory>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("level", &self.level)
            .field("file", &self.file)
            .field("read_env", &self.read_env)
            .field("edits", &self.edits.len())
            .finish()
    }
}

impl Builder {
    /// A builder at the Standard level that reads `SPRINT_*` variables.
    pub fn new() -> Builder {
        Builder {
            read_env: true,
            ..Builder::default()
        }
    }

    /// Starts from `config` exactly: no file, no environment.
    pub fn from_config(config: Config) -> Builder {
        Builder {
            explicit: Some(config),
            ..Builder::default()
        }
    }

    /// The level whose preset is the base.
    pub fn level(mut self, level: Level) -> Builder {
        self.level = Some(level);
        self
    }

    /// A TOML file, read when `build` runs (relative to the working
    /// directory).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Builder {
        self.file = Some(path.into());
        self
    }

    /// Whether `SPRINT_*` variables apply (they do by default).
    pub fn read_env(mut self, yes: bool) -> Builder {
        self.read_env = yes;
        self
    }

    /// Changes the configuration in code, over the preset.
    pub fn configure(mut self, f: impl FnOnce(&mut Config) + 'static) -> Builder {
        self.edits.push(Box::new(f));
        self
    }

    /// Each worker waits in a driver that `factory` builds on its thread
    /// (the `sprint` facade passes sprint-io's).
    pub fn driver(mut self, factory: crate::driver::DriverFactory) -> Builder {
        self.driver = Some(factory);
        self
    }

    /// The number of workers.
    pub fn workers(self, n: usize) -> Builder {
        self.configure(move |c| c.workers = Some(n))
    }

    /// The CPUs to place workers on.
    pub fn cpus(self, cpus: Vec<usize>) -> Builder {
        self.configure(move |c| c.cpus = Some(CpuList::new(cpus)))
    }

    /// The resolved configuration, validated, without starting anything.
    pub fn config(self) -> Result<Config, crate::ConfigError> {
        let edits = self.edits;
        let code = move |c: &mut Config| {
            for e in edits {
                e(c);
            }
        };
        match self.explicit {
            Some(mut cfg) => {
                code(&mut cfg);
                cfg.validate()?;
                Ok(cfg)
            }
            None if self.read_env => Config::load_with(self.level, code, self.file.as_deref()),
            None => Config::load_from(self.level, code, self.file.as_deref(), std::iter::empty()),
        }
    }

    /// Resolves the configuration and starts the runtime.
    pub fn build(mut self) -> Result<Runtime, BuildError> {
        let driver = self.driver.take();
        Runtime::with_driver(self.config()?, driver)
    }
}
