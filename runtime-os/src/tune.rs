//! OS tuning with exact restore: each level's process and thread settings,
//! every previous value recorded before a change, a report of what was
//! applied, skipped (and why) or unsupported, strict mode that leaves
//! nothing half-applied, and a fallback chain.
//!
//! Thread settings (scheduling class and priority, nice, timer slack) are
//! made on each worker's own thread and put back before it ends, the
//! scheduling class before the slack (leaving SCHED_FIFO resets the slack).
//! Process settings (RLIMIT_MEMLOCK, transparent huge pages) are owned
//! once per process and reference-counted: a second runtime asking for the
//! same values shares them; asking for different ones is refused.

#[cfg(target_os = "linux")]
use parking_lot::Mutex;
use serde::Serialize;
use sprint_config::{Config, Level, LockMemory, RtPolicy};
use std::fmt;

/// What happened to one setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Changed; the old value is kept for restore.
    Applied {
        /// Before.
        from: String,
        /// Now.
        to: String,
    },
    /// Already as asked (or owned by another runtime of this process).
    Unchanged {
        /// The value.
        value: String,
    },
    /// Not applied, and why.
    Skipped {
        /// Why.
        reason: String,
    },
    /// This platform has no such setting.
    Unsupported {
        /// Why.
        reason: String,
    },
}

/// One line of the apply report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportLine {
    /// `process` or the worker's thread name.
    pub scope: String,
    /// The setting's name.
    pub setting: std::borrow::Cow<'static, str>,
    /// What happened.
    pub outcome: Outcome,
}

impl fmt::Display for ReportLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.scope, self.setting)?;
        match &self.outcome {
            Outcome::Applied { from, to } => write!(f, "applied ({from} -> {to})"),
            Outcome::Unchanged { value } => write!(f, "unchanged ({value})"),
            Outcome::Skipped { reason } => write!(f, "skipped: {reason}"),
            Outcome::Unsupported { reason } => write!(f, "unsupported: {reason}"),
        }
    }
}

/// Tuning could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TuneError {
    /// Strict mode, and a setting could not be applied; everything applied
    /// before it was put back.
    #[error("strict: {scope} {setting} could not be applied: {reason} (nothing was left changed)")]
    Strict {
        /// Where.
        scope: String,
        /// Which.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// Another runtime in this process owns a process-wide setting with a
    /// different value.
    #[error("{setting} is owned by another runtime in this process with {owned}; this one asks for {asked}")]
    Conflict {
        /// Which.
        setting: &'static str,
        /// The value in force.
        owned: String,
        /// The value asked for.
        asked: String,
    },
    /// Every level of a fallback chain failed.
    #[error("no level of the fallback chain could be applied: {0}")]
    NoLevel(String),
}

#[cfg(target_os = "linux")]
use linux::*;
#[cfg(target_os = "linux")]
pub use linux::{sched_of_this_thread, Snapshot};

/// The system calls behind each setting. They are Linux's; on other
/// platforms the tuner reports each requested setting unsupported.
#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    pub(super) use crate::thread::{
        limit_name, memlock, policy_name, set_memlock, set_thp_disabled, thp_disabled,
    };

    /// The scheduling class and priority of this thread.
    pub fn sched_of_this_thread() -> (libc::c_int, libc::c_int) {
        crate::thread::sched(0).unwrap_or((libc::SCHED_OTHER, 0))
    }

    pub(super) fn set_sched(policy: libc::c_int, prio: libc::c_int) -> std::io::Result<()> {
        crate::thread::set_sched(0, policy, prio)
    }

    pub(super) fn nice_of_this_thread() -> i32 {
        crate::thread::nice(0)
    }

    pub(super) fn set_nice(n: i32) -> std::io::Result<()> {
        crate::thread::set_nice(0, n)
    }

    pub(super) fn slack_of_this_thread() -> u64 {
        crate::thread::timer_slack(0).unwrap_or(0)
    }

    pub(super) fn set_slack(ns: u64) -> std::io::Result<()> {
        crate::thread::set_timer_slack(0, ns)
    }

    /// Every setting the tuner may change, as the process and this thread
    /// have them now: what restore must bring back.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct Snapshot {
        /// RLIMIT_MEMLOCK (soft, hard).
        pub memlock: (u64, u64),
        /// PR_GET_THP_DISABLE.
        pub thp_disabled: bool,
        /// This thread's scheduling class and priority.
        pub sched: (i32, i32),
        /// This thread's nice value.
        pub nice: i32,
        /// This thread's timer slack, ns.
        pub timer_slack_ns: u64,
    }

    impl Snapshot {
        /// The settings now.
        pub fn take() -> Snapshot {
            Snapshot {
                memlock: memlock(),
                thp_disabled: thp_disabled(),
                sched: sched_of_this_thread(),
                nice: nice_of_this_thread(),
                timer_slack_ns: slack_of_this_thread(),
            }
        }
    }
}

/// Puts one setting back.
type Restorer = Box<dyn FnOnce() + Send>;

/// Records what to undo, in order.
struct Undo(Vec<(&'static str, Restorer)>);

impl Undo {
    fn run(&mut self) {
        while let Some((_, f)) = self.0.pop() {
            f();
        }
    }
}

/// One setting's attempt.
struct Step<'a> {
    scope: &'a str,
    strict: bool,
    report: &'a mut Vec<ReportLine>,
    undo: &'a mut Undo,
}

impl Step<'_> {
    #[cfg(target_os = "linux")]
    /// Applies one setting: `now` reads it, `set` writes it, `restore` is
    /// recorded (with the old value) before the write.
    fn setting<T: PartialEq + fmt::Display + Clone + Send + 'static>(
        &mut self,
        name: &'static str,
        want: T,
        now: impl Fn() -> T,
        set: impl Fn(&T) -> std::io::Result<()> + Send + Clone + 'static,
        why: impl Fn(&std::io::Error) -> String,
    ) -> Result<(), TuneError> {
        let old = now();
        if old == want {
            self.report.push(ReportLine {
                scope: self.scope.into(),
                setting: name.into(),
                outcome: Outcome::Unchanged {
                    value: old.to_string(),
                },
            });
            return Ok(());
        }
        match set(&want) {
            Ok(()) => {
                let back = old.clone();
                let set2 = set.clone();
                self.undo.0.push((
                    name,
                    Box::new(move || {
                        if let Err(e) = set2(&back) {
                            tracing::error!(setting = name, error = %e, "could not restore a setting");
                        }
                    }),
                ));
                self.report.push(ReportLine {
                    scope: self.scope.into(),
                    setting: name.into(),
                    outcome: Outcome::Applied {
                        from: old.to_string(),
                        to: want.to_string(),
                    },
                });
                Ok(())
            }
            Err(e) => self.skip(name, why(&e)),
        }
    }

    /// A setting not applied: in strict mode an error (after undoing what
    /// was applied), else a report line made by `outcome`.
    fn refuse(
        &mut self,
        name: &'static str,
        reason: String,
        outcome: fn(String) -> Outcome,
    ) -> Result<(), TuneError> {
        if self.strict {
            self.undo.run();
            return Err(TuneError::Strict {
                scope: self.scope.into(),
                setting: name,
                reason,
            });
        }
        self.report.push(ReportLine {
            scope: self.scope.into(),
            setting: name.into(),
            outcome: outcome(reason),
        });
        Ok(())
    }

    /// A setting this platform does not have: reported unsupported, or in
    /// strict mode an error (after undoing what was applied).
    #[cfg(not(target_os = "linux"))]
    fn unsupported(&mut self, name: &'static str) -> Result<(), TuneError> {
        let reason = format!("{name} is a Linux setting; not available on this platform");
        self.refuse(name, reason, |reason| Outcome::Unsupported { reason })
    }

    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn skip(&mut self, name: &'static str, reason: String) -> Result<(), TuneError> {
        self.refuse(name, reason, |reason| Outcome::Skipped { reason })
    }
}

/// A thread's settings, put back on drop (on that thread).
pub struct ThreadGuard {
    undo: Undo,
}

impl fmt::Debug for ThreadGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadGuard")
            .field("changes", &self.undo.0.len())
            .finish()
    }
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.undo.run();
    }
}

#[cfg(target_os = "linux")]
#[derive(Clone, Copy, PartialEq, Eq)]
struct Sched(libc::c_int, libc::c_int);

#[cfg(target_os = "linux")]
impl fmt::Display for Sched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 > 0 {
            write!(f, "{} {}", policy_name(self.0), self.1)
        } else {
            f.write_str(&policy_name(self.0))
        }
    }
}

/// Why a spinning worker must not take a real-time class, if it must not;
/// `None` when the worker parks at once or real-time spinning is sound.
///
/// - A busy-poller on the last allowed CPU would leave none to the rest of
///   the system.
/// - With kernel RT throttling on (the default, and Sprint never turns it
///   off) a real-time thread that does not sleep is stopped for the rest
///   of every period: 50 ms of each second by default. A worker that
///   busy-polls, or spins before parking (a load that keeps it from
///   parking keeps it spinning), runs into that. Measured with the relay
///   (`relay_bench report`): p99 28–63 ms at Enterprise and Turbo that
///   way, against 0.7–2.7 ms spinning at SCHED_OTHER. So such a worker
///   spins at its nice value instead.
pub fn rt_busy_poll_denied(config: &Config, last_cpu: bool) -> Option<RtDenied> {
    if config.idle == sprint_config::IdleStrategy::Park || config.rt_policy == RtPolicy::None {
        return None;
    }
    if last_cpu && config.idle == sprint_config::IdleStrategy::BusyPoll {
        return Some(RtDenied::LastCpu);
    }
    #[cfg(target_os = "linux")]
    let throttling = crate::thread::rt_throttling();
    #[cfg(not(target_os = "linux"))]
    let throttling: Option<(i64, i64)> = None;
    match throttling {
        Some((runtime, period)) if runtime >= 0 && runtime < period => {
            Some(RtDenied::Throttled(format!(
                "SCHED_OTHER, spinning at nice {} (the level's choice: kernel RT throttling, kernel.sched_rt_runtime_us = {runtime} of {period}, would stop a real-time thread that spins for {} ms of every {} ms)",
                config.nice,
                (period - runtime) / 1000,
                period / 1000
            )))
        }
        _ => None,
    }
}

/// Why a worker is kept SCHED_OTHER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtDenied {
    /// It would busy-poll real-time on the last allowed CPU: a degradation
    /// (skipped, and an error in strict mode).
    LastCpu,
    /// RT throttling would stop it every period: the level's behaviour on
    /// this machine, not a degradation.
    Throttled(String),
}

/// What `config` asks of a worker thread, given whether real-time
/// busy-polling on it is safe (a CPU is left to the rest of the system).
#[cfg(target_os = "linux")]
fn want_rt(config: &Config, rt_allowed: bool) -> Option<(libc::c_int, i32)> {
    let policy = match config.rt_policy {
        RtPolicy::None => return None,
        RtPolicy::Fifo => libc::SCHED_FIFO,
        RtPolicy::RoundRobin => libc::SCHED_RR,
    };
    rt_allowed.then_some((policy, config.rt_priority as i32))
}

/// Applies `config`'s thread settings to the calling thread: the
/// real-time class (or nice), then the timer slack. `rt_denied` keeps the
/// thread SCHED_OTHER with that reason in the report
/// (see [`rt_busy_poll_denied`]).
pub fn apply_thread(
    config: &Config,
    scope: &str,
    rt_denied: Option<&RtDenied>,
    report: &mut Vec<ReportLine>,
) -> Result<ThreadGuard, TuneError> {
    let mut undo = Undo(Vec::new());
    #[cfg_attr(target_os = "linux", allow(unused_mut))]
    let mut step = Step {
        scope,
        strict: config.strict,
        report,
        undo: &mut undo,
    };
    #[cfg(not(target_os = "linux"))]
    {
        let _ = rt_denied;
        if config.rt_policy != RtPolicy::None {
            step.unsupported("scheduling class")?;
        }
        if config.nice != 0 {
            step.unsupported("nice")?;
        }
        if config.timer_slack_ns.is_some() {
            step.unsupported("timer slack ns")?;
        }
        Ok(ThreadGuard { undo })
    }
    #[cfg(target_os = "linux")]
    apply_thread_linux(config, rt_denied, step)
}

#[cfg(target_os = "linux")]
fn apply_thread_linux(
    config: &Config,
    rt_denied: Option<&RtDenied>,
    mut step: Step<'_>,
) -> Result<ThreadGuard, TuneError> {
    let cap = |e: &std::io::Error| {
        format!("{e}: changing the scheduling class needs CAP_SYS_NICE (or RLIMIT_RTPRIO)")
    };
    let rt_allowed = rt_denied.is_none();
    match want_rt(config, rt_allowed) {
        Some((policy, prio)) => step.setting(
            "scheduling class",
            Sched(policy, prio),
            || {
                let (p, q) = sched_of_this_thread();
                Sched(p, q)
            },
            |s: &Sched| set_sched(s.0, s.1),
            cap,
        )?,
        None if config.rt_policy != RtPolicy::None => match rt_denied {
            Some(RtDenied::Throttled(why)) => step.report.push(ReportLine {
                scope: step.scope.into(),
                setting: "scheduling class".into(),
                outcome: Outcome::Unchanged { value: why.clone() },
            }),
            _ => step.skip(
                "scheduling class",
                "left SCHED_OTHER: real-time busy-polling on every allowed CPU would leave none to the system".into(),
            )?,
        },
        None => {}
    }
    if want_rt(config, rt_allowed).is_none() && config.nice != 0 {
        step.setting(
            "nice",
            config.nice as i32,
            nice_of_this_thread,
            |n: &i32| set_nice(*n),
            |e| format!("{e}: a lower nice value needs CAP_SYS_NICE (or RLIMIT_NICE)"),
        )?;
    }
    if let Some(ns) = config.timer_slack_ns {
        step.setting(
            "timer slack ns",
            ns,
            slack_of_this_thread,
            |n: &u64| set_slack(*n),
            |e| format!("{e}"),
        )?;
    }
    // Undo runs last in, first out. Leaving SCHED_FIFO resets the timer
    // slack, so the scheduling class must go back first: move it last.
    let mut undo = Undo(std::mem::take(&mut step.undo.0));
    undo.0.sort_by_key(|(name, _)| *name == "scheduling class");
    Ok(ThreadGuard { undo })
}

/// The process-wide settings in force, and how many runtimes share them.
#[cfg(target_os = "linux")]
struct Owned {
    refs: usize,
    memlock: Option<(u64, u64)>,
    thp_enabled: bool,
    undo: Undo,
}

#[cfg(target_os = "linux")]
static PROCESS: Mutex<Option<Owned>> = Mutex::new(None);

/// A share of the process-wide settings; the last one dropped puts them
/// back.
#[derive(Debug)]
pub struct ProcessGuard(());

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        let mut p = PROCESS.lock();
        #[cfg(target_os = "linux")]
        if let Some(o) = p.as_mut() {
            o.refs -= 1;
            if o.refs == 0 {
                if let Some(mut o) = p.take() {
                    o.undo.run();
                }
            }
        }
    }
}

/// Applies `config`'s process-wide settings (or joins the runtime that
/// already did): RLIMIT_MEMLOCK raised where memory is locked, and
/// transparent huge pages allowed where the level asks for huge pages.
pub fn apply_process(
    config: &Config,
    report: &mut Vec<ReportLine>,
) -> Result<ProcessGuard, TuneError> {
    let want_memlock = config.lock_memory != LockMemory::None;
    let want_thp = config.huge_pages;
    #[cfg(not(target_os = "linux"))]
    {
        let mut undo = Undo(Vec::new());
        let mut step = Step {
            scope: "process",
            strict: config.strict,
            report,
            undo: &mut undo,
        };
        if want_memlock {
            step.unsupported("RLIMIT_MEMLOCK")?;
        }
        if want_thp {
            step.unsupported("THP disabled (PR_SET_THP_DISABLE)")?;
        }
        Ok(ProcessGuard(()))
    }
    #[cfg(target_os = "linux")]
    apply_process_linux(want_memlock, want_thp, config, report)
}

#[cfg(target_os = "linux")]
fn apply_process_linux(
    want_memlock: bool,
    want_thp: bool,
    config: &Config,
    report: &mut Vec<ReportLine>,
) -> Result<ProcessGuard, TuneError> {
    let mut p = PROCESS.lock();
    if let Some(o) = p.as_mut() {
        let owned_thp = o.thp_enabled;
        if want_thp && !owned_thp && thp_disabled() {
            let e = TuneError::Conflict {
                setting: "THP disabled (PR_SET_THP_DISABLE)",
                owned: "disabled".into(),
                asked: "enabled".into(),
            };
            if config.strict {
                return Err(e);
            }
            report.push(ReportLine {
                scope: "process".into(),
                setting: "THP disabled (PR_SET_THP_DISABLE)".into(),
                outcome: Outcome::Skipped {
                    reason: e.to_string(),
                },
            });
        }
        o.refs += 1;
        if want_memlock && o.memlock.is_none() {
            report.push(ReportLine {
                scope: "process".into(),
                setting: "RLIMIT_MEMLOCK".into(),
                outcome: Outcome::Skipped {
                    reason: "another runtime in this process owns the process settings and did not raise it".into(),
                },
            });
        }
        report.push(ReportLine {
            scope: "process".into(),
            setting: "process settings".into(),
            outcome: Outcome::Unchanged {
                value: format!(
                    "owned by the first runtime of this process ({} sharing)",
                    o.refs
                ),
            },
        });
        return Ok(ProcessGuard(()));
    }
    let mut undo = Undo(Vec::new());
    let mut step = Step {
        scope: "process",
        strict: config.strict,
        report,
        undo: &mut undo,
    };
    let mut memlock_now = None;
    if want_memlock {
        let (soft, hard) = memlock();
        // The soft limit may rise to the hard one without privilege; past
        // it needs CAP_SYS_RESOURCE.
        #[derive(Clone, Copy, PartialEq, Eq)]
        struct Lim(u64, u64);
        impl fmt::Display for Lim {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "soft {}, hard {}",
                    limit_name(self.0),
                    limit_name(self.1)
                )
            }
        }
        step.setting(
            "RLIMIT_MEMLOCK",
            Lim(hard, hard),
            || {
                let (s, h) = memlock();
                Lim(s, h)
            },
            |l: &Lim| set_memlock(l.0, l.1),
            |e| format!("{e}"),
        )?;
        // The hard limit matters only without CAP_IPC_LOCK, and only if it
        // is below what will be locked (everything, for mlockall).
        let need = match config.lock_memory {
            LockMemory::All => libc::RLIM_INFINITY,
            _ => (config.arena_prealloc_bytes as u64)
                .saturating_mul(config.workers.unwrap_or(1) as u64),
        };
        let ipc_lock = caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_IPC_LOCK,
        )
        .unwrap_or(false);
        if ipc_lock {
            step.report.push(ReportLine {
                scope: "process".into(),
                setting: "RLIMIT_MEMLOCK hard".into(),
                outcome: Outcome::Unchanged {
                    value: format!("{} (CAP_IPC_LOCK: no limit applies)", limit_name(hard)),
                },
            });
        } else if hard < need {
            match set_memlock(libc::RLIM_INFINITY, libc::RLIM_INFINITY) {
                Ok(()) => {
                    let back = (soft, hard);
                    step.undo.0.push((
                        "RLIMIT_MEMLOCK hard",
                        Box::new(move || {
                            let _ = set_memlock(back.0, back.1);
                        }),
                    ));
                    step.report.push(ReportLine {
                        scope: "process".into(),
                        setting: "RLIMIT_MEMLOCK hard".into(),
                        outcome: Outcome::Applied {
                            from: limit_name(hard),
                            to: "unlimited".into(),
                        },
                    });
                }
                Err(e) => step.skip(
                    "RLIMIT_MEMLOCK hard",
                    format!(
                        "{e}: raising the hard limit past {} needs CAP_SYS_RESOURCE (locking needs {})",
                        limit_name(hard),
                        limit_name(need)
                    ),
                )?,
            }
        }
        memlock_now = Some(memlock());
    }
    if want_thp {
        step.setting(
            "THP disabled (PR_SET_THP_DISABLE)",
            false,
            thp_disabled,
            |d: &bool| set_thp_disabled(*d),
            |e| format!("{e}"),
        )?;
    }
    *p = Some(Owned {
        refs: 1,
        memlock: memlock_now,
        thp_enabled: want_thp,
        undo,
    });
    Ok(ProcessGuard(()))
}

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
