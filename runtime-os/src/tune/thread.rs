//! A worker thread's settings: its real-time class (or nice value) and
//! timer slack, applied on the thread itself and put back before it ends,
//! the class before the slack (leaving SCHED_FIFO resets the slack).

use super::*;

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

/// The thread that starts a runtime, moved off the pinned workers' CPUs;
/// its mask is put back (by thread id, whichever thread drops the guard)
/// when the runtime ends.
#[derive(Debug)]
pub struct AffinityGuard {
    #[cfg(target_os = "linux")]
    tid: crate::thread::Tid,
    #[cfg(target_os = "linux")]
    before: Vec<usize>,
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Err(e) = crate::thread::set_affinity(self.tid, &self.before) {
            // The thread may have ended: then there is nothing to put back.
            tracing::debug!(tid = self.tid, error = %e, "calling thread's affinity not put back");
        }
    }
}

/// Moves the calling thread to `cpus` (the CPUs no pinned worker takes),
/// reporting the change under `scope`; `None` where it is already there
/// or cannot be moved (the report says why).
pub fn keep_calling_thread_on(
    cpus: &[usize],
    scope: &str,
    report: &mut Vec<ReportLine>,
) -> Option<AffinityGuard> {
    let line = |outcome| ReportLine {
        scope: scope.to_string(),
        setting: "affinity (off the pinned workers' CPUs)".into(),
        outcome,
    };
    #[cfg(target_os = "linux")]
    {
        let list = |c: &[usize]| sprint_config::CpuList::new(c.to_vec()).to_string();
        let tid = crate::thread::current_tid();
        let before = match crate::thread::affinity(0) {
            Ok(b) => b,
            Err(e) => {
                report.push(line(Outcome::Skipped {
                    reason: format!("cannot read this thread's affinity: {e}"),
                }));
                return None;
            }
        };
        let mut want: Vec<usize> = cpus
            .iter()
            .copied()
            .filter(|c| before.contains(c))
            .collect();
        want.sort_unstable();
        if want.is_empty() || want == before {
            report.push(line(Outcome::Unchanged {
                value: list(&before),
            }));
            return None;
        }
        if let Err(e) = crate::thread::set_affinity(0, &want) {
            report.push(line(Outcome::Skipped {
                reason: format!("the kernel refused: {e}"),
            }));
            return None;
        }
        report.push(line(Outcome::Applied {
            from: list(&before),
            to: list(&want),
        }));
        Some(AffinityGuard { tid, before })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpus;
        report.push(line(Outcome::Unsupported {
            reason: "thread affinity is set per thread only on Linux".into(),
        }));
        None
    }
}
