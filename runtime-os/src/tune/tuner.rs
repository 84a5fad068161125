//! The seed's `Apply()` and fallback chain: the calling thread and the
//! process tuned as a configuration (or the first level that applies
//! fully) says, put back by a guard.

use super::*;

/// The seed's `Apply()`: this process and the calling thread tuned as
/// `config` says, put back by the guard (or [`TuneGuard::restore`]).
#[derive(Debug)]
pub struct TuneGuard {
    // Thread settings first: they go back before the process ones.
    _thread: ThreadGuard,
    _process: ProcessGuard,
    /// What was done.
    pub report: Vec<ReportLine>,
    /// The level applied.
    pub level: Level,
}

impl TuneGuard {
    /// Puts every setting back now (what dropping the guard does).
    pub fn restore(self) {
        drop(self)
    }
}

/// Tunes the calling thread and the process as a configuration says.
#[derive(Debug, Clone)]
pub struct Tuner {
    config: Config,
}

impl Tuner {
    /// A tuner for `config`.
    pub fn new(config: Config) -> Tuner {
        Tuner { config }
    }

    /// Applies, or in strict mode fails on the first setting that cannot be
    /// applied, leaving nothing changed.
    pub fn apply(&self) -> Result<TuneGuard, TuneError> {
        let mut report = Vec::new();
        let process = apply_process(&self.config, &mut report)?;
        let thread = match apply_thread(&self.config, "this thread", None, &mut report) {
            Ok(t) => t,
            Err(e) => {
                drop(process);
                return Err(e);
            }
        };
        Ok(TuneGuard {
            _thread: thread,
            _process: process,
            report,
            level: self.config.level,
        })
    }
}

/// The seed's fallback chain: each level but the last is tried strictly,
/// the first that applies fully wins; the last is applied best-effort.
pub fn apply_with_fallback(levels: &[Level]) -> Result<TuneGuard, TuneError> {
    let mut why = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let mut cfg = Config::for_level(*level);
        cfg.strict = i + 1 < levels.len();
        match Tuner::new(cfg).apply() {
            Ok(g) => return Ok(g),
            Err(e) => why.push(format!("{level}: {e}")),
        }
    }
    Err(TuneError::NoLevel(why.join("; ")))
}
