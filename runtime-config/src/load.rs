//! Reading a configuration from a TOML file and `SPRINT_*` variables.

use super::*;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The preset of a level.
    Preset(Level),
    /// A TOML file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// Code: a builder call or a field set by the program.
    Code,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Preset(l) => write!(f, "{l} preset"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "environment {v}"),
            Source::Code => f.write_str("code"),
        }
    }
}

macro_rules! overlay {
    (plain { $($p:ident: $pt:ty),* $(,)? } optional { $($o:ident: $ot:ty),* $(,)? }) => {
        /// A partial configuration, as a file or the environment gives it.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Overlay {
            level: Option<Level>,
            $($p: Option<$pt>,)*
            $($o: Option<$ot>,)*
        }

        /// Every configuration key (besides `level`).
        pub(super) const KEYS: &[&str] = &[$(stringify!($p),)* $(stringify!($o),)*];

        impl Overlay {
            fn apply(self, cfg: &mut Config, source: &Source) {
                $(if let Some(v) = self.$p {
                    cfg.$p = v;
                    cfg.sources.insert(stringify!($p).to_string(), source.clone());
                })*
                $(if let Some(v) = self.$o {
                    cfg.$o = Some(v);
                    cfg.sources.insert(stringify!($o).to_string(), source.clone());
                })*
            }
        }
    };
}

overlay! {
    plain {
        pinning: Pinning,
        placement: Placement,
        scheduling: Scheduling,
        idle: IdleStrategy,
        idle_spin_us: u64,
        coop_budget: u32,
        event_interval: u32,
        stack_size: usize,
        blocking_keep_alive_ms: u64,
        io_driver: IoDriver,
        uring_registered_buffers: bool,
        uring_sqpoll: bool,
        allocator: Allocator,
        arenas: bool,
        arena_prealloc_bytes: usize,
        prefault: bool,
        lock_memory: LockMemory,
        huge_pages: bool,
        numa_bind: bool,
        reclaim: Reclaim,
        memory_budget_percent: u8,
        rt_policy: RtPolicy,
        rt_priority: u8,
        nice: i8,
        stall_threshold_us: u64,
        metrics: bool,
        metrics_sample_every: u32,
        adaptive: bool,
        adaptive_objective: String,
        adaptive_min_level: Level,
        adaptive_max_level: Level,
        adaptive_window_ms: u64,
        adaptive_up_after: u32,
        adaptive_down_after: u32,
        adaptive_busy_below_percent: u8,
        adaptive_dwell_ms: u64,
        health_max_tasks: u64,
        shutdown_timeout_ms: u64,
        drain_timeout_ms: u64,
        task_spans: bool,
        system_profile: SystemProfile,
        strict: bool,
    }
    optional {
        workers: usize,
        cpus: CpuList,
        max_threads: usize,
        timer_slack_ns: u64,
        metrics_addr: String,
        uring_sqpoll_cpu: usize,
    }
}

/// `SPRINT_*` names that map to a key other than their own lowercase.
const ALIASES: &[(&str, &str)] = &[("SPRINT_IO", "io_driver")];
/// Variables read elsewhere, not configuration keys (`SPRINT_REQUIRE`: the
/// test suites' declared skips, so CI may set it for every process).
const OTHER_VARS: &[&str] = &["SPRINT_CONFIG", "SPRINT_LOG", "SPRINT_REQUIRE"];

fn key_of_var(var: &str) -> Option<String> {
    if let Some((_, k)) = ALIASES.iter().find(|(v, _)| *v == var) {
        return Some(k.to_string());
    }
    let key = var.strip_prefix("SPRINT_")?.to_ascii_lowercase();
    (key == "level" || KEYS.contains(&key.as_str())).then_some(key)
}

fn known_vars() -> String {
    let mut v: Vec<String> = std::iter::once("SPRINT_LEVEL".to_string())
        .chain(
            KEYS.iter()
                .map(|k| format!("SPRINT_{}", k.to_ascii_uppercase())),
        )
        .chain(ALIASES.iter().map(|(v, _)| v.to_string()))
        .chain(OTHER_VARS.iter().map(|v| v.to_string()))
        .collect();
    v.sort();
    v.join(", ")
}

/// A variable's text as a TOML value: numbers and booleans as such,
/// anything else as a string.
fn env_value(text: &str) -> toml::Value {
    let t = text.trim();
    if let Ok(i) = t.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match t.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return toml::Value::Boolean(true),
        "false" | "no" | "off" => return toml::Value::Boolean(false),
        _ => {}
    }
    toml::Value::String(t.to_string())
}

fn clean_message(e: &impl fmt::Display) -> String {
    e.to_string().trim().replace('\n', " ").replace("  ", " ")
}

/// The `SPRINT_*` variables, each as an overlay of its own.
fn env_overlays(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(Source, Overlay)>, ConfigError> {
    let mut out = Vec::new();
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("SPRINT_"))
        .collect();
    vars.sort();
    for (var, value) in vars {
        if OTHER_VARS.contains(&var.as_str()) {
            continue;
        }
        let Some(key) = key_of_var(&var) else {
            return Err(ConfigError::UnknownVariable {
                var,
                known: known_vars(),
            });
        };
        let mut table = toml::Table::new();
        let v = if key == "level" || key == "cpus" {
            toml::Value::String(value.trim().to_string())
        } else {
            env_value(&value)
        };
        table.insert(key.clone(), v);
        let overlay: Overlay = toml::Value::Table(table)
            .try_into()
            .map_err(|e| ConfigError::invalid(&var, &value, clean_message(&e)))?;
        out.push((Source::Env(var), overlay));
    }
    Ok(out)
}

fn parse_file_text(text: &str, origin: &Path) -> Result<Overlay, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.display().to_string(),
        message: clean_message(&e),
    })
}

impl Config {
    /// The full precedence: `level` (from code; Standard if `None`), then
    /// the TOML file at `file` (relative to the working directory; its
    /// `level` overrides the code's), then the process's `SPRINT_*`
    /// variables (`SPRINT_LEVEL` overrides both; `SPRINT_CONFIG` names a
    /// file when `file` is `None`). The result is validated.
    pub fn load(level: Option<Level>, file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with(level, |_| {}, file)
    }

    /// [`Config::load`] with settings made in code, over the preset and
    /// under the file and the environment.
    pub fn load_with(
        level: Option<Level>,
        code: impl FnOnce(&mut Config),
        file: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let env_file = vars
            .iter()
            .find(|(k, _)| k == "SPRINT_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let file = file.map(Path::to_path_buf).or(env_file);
        Config::load_from(level, code, file.as_deref(), vars)
    }

    /// Reads `file` (if any), resolves it with `code` and `vars` by the
    /// precedence of [`Config::load`], and validates the result.
    pub fn load_from(
        level: Option<Level>,
        code: impl FnOnce(&mut Config),
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match file {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
            ),
            None => None,
        };
        let cfg = Config::resolve_with(level, code, file.zip(text.as_deref()), vars)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The preset of `SPRINT_LEVEL` (Standard if unset) with the other
    /// `SPRINT_*` variables over it.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::resolve(None, None, std::env::vars())
    }

    /// A configuration from TOML text alone (its `level`, or Standard).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::resolve(None, Some((Path::new("TOML"), text)), std::iter::empty())
    }

    /// The precedence of [`Config::load`] over explicit inputs, without
    /// validation: `file` is `(path, contents)`, `vars` the environment.
    pub fn resolve(
        level: Option<Level>,
        file: Option<(&Path, &str)>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Config::resolve_with(level, |_| {}, file, vars)
    }

    /// [`Config::resolve`] with settings made in code (builder calls),
    /// applied over the preset and under the file and the environment.
    pub fn resolve_with(
        level: Option<Level>,
        code: impl FnOnce(&mut Config),
        file: Option<(&Path, &str)>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file_overlay = match file {
            Some((path, text)) => Some((path.to_path_buf(), parse_file_text(text, path)?)),
            None => None,
        };
        let mut env = env_overlays(vars)?;
        let mut chosen = (level.unwrap_or(Level::Standard), Source::Code);
        if level.is_none() {
            chosen.1 = Source::Preset(Level::Standard);
        }
        if let Some((path, o)) = &file_overlay {
            if let Some(l) = o.level {
                chosen = (l, Source::File(path.clone()));
            }
        }
        for (src, o) in &env {
            if let Some(l) = o.level {
                chosen = (l, src.clone());
            }
        }
        let mut cfg = Config::for_level(chosen.0);
        cfg.sources.insert("level".into(), chosen.1);
        let before = cfg.clone();
        code(&mut cfg);
        mark_code_changes(&before, &mut cfg);
        if let Some((path, o)) = file_overlay {
            o.apply(&mut cfg, &Source::File(path));
        }
        for (src, o) in env.drain(..) {
            o.apply(&mut cfg, &src);
        }
        Ok(cfg)
    }

    /// Where each effective value came from.
    pub fn sources(&self) -> &BTreeMap<String, Source> {
        &self.sources
    }
}

/// Marks as `Source::Code` every field that code changed.
fn mark_code_changes(before: &Config, after: &mut Config) {
    let (Ok(toml::Value::Table(b)), Ok(toml::Value::Table(a))) = (
        toml::Value::try_from(before),
        toml::Value::try_from(&*after),
    ) else {
        return;
    };
    for key in KEYS {
        if b.get(*key) != a.get(*key) {
            after.sources.insert(key.to_string(), Source::Code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_read_as_numbers_booleans_or_words() {
        assert_eq!(env_value(" 42 "), toml::Value::Integer(42));
        assert_eq!(env_value("on"), toml::Value::Boolean(true));
        assert_eq!(env_value("No"), toml::Value::Boolean(false));
        assert_eq!(
            env_value("spin-then-park"),
            toml::Value::String("spin-then-park".into())
        );
        assert_eq!(key_of_var("SPRINT_IO").as_deref(), Some("io_driver"));
        assert_eq!(
            key_of_var("SPRINT_IDLE_SPIN_US").as_deref(),
            Some("idle_spin_us")
        );
        assert_eq!(key_of_var("SPRINT_LEVEL").as_deref(), Some("level"));
        assert_eq!(key_of_var("SPRINT_NOPE"), None);
    }

    #[test]
    fn precedence_is_preset_code_file_environment_and_each_value_says_whence() {
        let file = Path::new("/etc/sprint.toml");
        let c = Config::resolve_with(
            Some(Level::Basic),
            |c| {
                c.coop_budget = 7;
                c.event_interval = 5;
            },
            Some((file, "event_interval = 9\nidle_spin_us = 3\n")),
            vars(&[("SPRINT_IDLE_SPIN_US", "4"), ("HOME", "/root")]),
        )
        .unwrap();
        assert_eq!(c.level, Level::Basic);
        assert_eq!(c.coop_budget, 7);
        assert_eq!(c.event_interval, 9, "the file over code");
        assert_eq!(c.idle_spin_us, 4, "the environment over the file");
        let s = c.sources();
        assert_eq!(s["level"], Source::Code);
        assert_eq!(s["coop_budget"], Source::Code);
        assert_eq!(s["event_interval"], Source::File(file.to_path_buf()));
        assert_eq!(s["idle_spin_us"], Source::Env("SPRINT_IDLE_SPIN_US".into()));
        assert_eq!(s["nice"], Source::Preset(Level::Basic));
    }

    #[test]
    fn the_files_level_and_then_the_environments_choose_the_preset() {
        let file = Path::new("f.toml");
        let c = Config::resolve(
            Some(Level::Basic),
            Some((file, "level = \"turbo\"")),
            vars(&[]),
        )
        .unwrap();
        assert_eq!((c.level, c.idle), (Level::Turbo, IdleStrategy::BusyPoll));
        let c = Config::resolve(
            Some(Level::Basic),
            Some((file, "level = \"turbo\"")),
            vars(&[("SPRINT_LEVEL", "aggressive")]),
        )
        .unwrap();
        assert_eq!(c.level, Level::Aggressive);
        assert_eq!(c.sources()["level"], Source::Env("SPRINT_LEVEL".into()));
    }

    #[test]
    fn unknown_keys_variables_and_values_are_errors_that_name_them() {
        let e = Config::from_toml("idle_spn_us = 3")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("TOML: ") && e.contains("idle_spn_us"), "{e}");
        let e = Config::resolve(None, None, vars(&[("SPRINT_WORKRS", "2")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SPRINT_WORKRS") && e.contains("SPRINT_WORKERS"),
            "{e}"
        );
        let e = Config::resolve(None, None, vars(&[("SPRINT_IDLE", "sometimes")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SPRINT_IDLE") && e.contains("sometimes"), "{e}");
        // Variables Sprint reads elsewhere are not configuration keys.
        Config::resolve(
            None,
            None,
            vars(&[("SPRINT_LOG", "debug"), ("SPRINT_REQUIRE", "root")]),
        )
        .unwrap();
    }
}
