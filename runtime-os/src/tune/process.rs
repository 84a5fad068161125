//! The process-wide settings (RLIMIT_MEMLOCK, transparent huge pages):
//! owned once per process and reference-counted, so a second runtime
//! asking for the same values shares them and one asking for different
//! ones is refused.

use super::*;

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
