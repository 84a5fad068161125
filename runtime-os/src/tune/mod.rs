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

mod process;
mod thread;
mod tuner;

pub use process::{apply_process, ProcessGuard};
pub use thread::{
    apply_thread, keep_calling_thread_on, rt_busy_poll_denied, AffinityGuard, RtDenied, ThreadGuard,
};
pub use tuner::{apply_with_fallback, TuneGuard, Tuner};
