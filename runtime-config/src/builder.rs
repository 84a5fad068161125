//! Resolving a configuration in code: a level and a file chosen by the
//! program, settings made in code, and (unless turned off) the `SPRINT_*`
//! variables over them, by the precedence of [`Config::load`]. The
//! `sprint` facade's `Builder` starts a runtime from what this resolves.

use crate::{Config, ConfigError, CpuList, Level};
use std::path::PathBuf;

type Edit = Box<dyn FnOnce(&mut Config)>;

/// Resolves a [`Config`] from a level, a file, code and the environment.
///
/// ```
/// use sprint_config::{ConfigBuilder, Level};
/// let c = ConfigBuilder::new().level(Level::Basic).read_env(false).workers(1).resolve().unwrap();
/// assert_eq!((c.level, c.workers), (Level::Basic, Some(1)));
/// ```
#[derive(Default)]
pub struct ConfigBuilder {
    level: Option<Level>,
    file: Option<PathBuf>,
    read_env: bool,
    explicit: Option<Config>,
    edits: Vec<Edit>,
}

impl std::fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("level", &self.level)
            .field("file", &self.file)
            .field("read_env", &self.read_env)
            .field("edits", &self.edits.len())
            .finish()
    }
}

impl ConfigBuilder {
    /// The Standard level, reading `SPRINT_*` variables.
    pub fn new() -> ConfigBuilder {
        ConfigBuilder {
            read_env: true,
            ..ConfigBuilder::default()
        }
    }

    /// Starts from `config` exactly: no file, no environment.
    pub fn from_config(config: Config) -> ConfigBuilder {
        ConfigBuilder {
            explicit: Some(config),
            ..ConfigBuilder::default()
        }
    }

    /// The level whose preset is the base.
    pub fn level(mut self, level: Level) -> ConfigBuilder {
        self.level = Some(level);
        self
    }

    /// A TOML file, read when resolving (relative to the working
    /// directory).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> ConfigBuilder {
        self.file = Some(path.into());
        self
    }

    /// Whether `SPRINT_*` variables apply (they do by default).
    pub fn read_env(mut self, yes: bool) -> ConfigBuilder {
        self.read_env = yes;
        self
    }

    /// Changes the configuration in code, over the preset.
    pub fn configure(mut self, f: impl FnOnce(&mut Config) + 'static) -> ConfigBuilder {
        self.edits.push(Box::new(f));
        self
    }

    /// The number of workers.
    pub fn workers(self, n: usize) -> ConfigBuilder {
        self.configure(move |c| c.workers = Some(n))
    }

    /// The CPUs to place workers on.
    pub fn cpus(self, cpus: Vec<usize>) -> ConfigBuilder {
        self.configure(move |c| c.cpus = Some(CpuList::new(cpus)))
    }

    /// The resolved configuration, its fields validated (the machine's
    /// CPUs and memory are checked when a runtime starts).
    pub fn resolve(self) -> Result<Config, ConfigError> {
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
}
