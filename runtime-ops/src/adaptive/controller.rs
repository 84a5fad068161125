//! The controller's thread: every window it reads the objective's
//! histogram and the workers' busy time, and steps the level.

use super::{AdaptiveState, Transition};
use sprint_core::config::{Config, Level, Objective};
use sprint_core::metrics::Snapshot;
use sprint_core::Handle;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fields only a restart changes, and whether two configurations differ
/// in them. Stealing changes live where the workers have deques
/// (`can_steal`); without them, switching it on needs a restart.
fn restart_only(a: &Config, b: &Config, can_steal: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !can_steal && b.scheduling != sprint_core::config::Scheduling::ThreadPerCore {
        out.push(format!(
            "scheduling ({:?} -> {:?}: the workers started without stealable deques)",
            a.scheduling, b.scheduling
        ));
    }
    macro_rules! cmp {
        ($($f:ident),*) => {$(
            if a.$f != b.$f {
                out.push(format!("{} ({:?} -> {:?})", stringify!($f), a.$f, b.$f));
            }
        )*};
    }
    cmp!(
        pinning,
        arenas,
        arena_prealloc_bytes,
        lock_memory,
        huge_pages,
        io_driver
    );
    out
}

/// Each worker's timer slack when the controller started (`None` where it
/// cannot be read), which a level without a slack of its own restores.
fn original_slacks(handle: &Handle) -> Vec<Option<u64>> {
    handle
        .worker_thread_ids()
        .into_iter()
        .map(|tid| {
            #[cfg(target_os = "linux")]
            return (tid > 0)
                .then(|| sprint_os::thread::timer_slack(tid).ok())
                .flatten();
            // Timer slack is Linux's.
            #[cfg(not(target_os = "linux"))]
            {
                let _ = tid;
                None
            }
        })
        .collect()
}

/// Applies `level`'s live settings to the running workers (on other
/// platforms, the idle strategy only).
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn apply(
    handle: &Handle,
    state: &AdaptiveState,
    level: Level,
    original_slack: &[Option<u64>],
) -> Result<(), String> {
    let c = Config::for_level(level);
    handle
        .set_idle(c.idle, c.idle_spin())
        .map_err(|e| e.to_string())?;
    if handle.can_steal() && handle.config().left_to_level("scheduling") {
        handle
            .set_scheduling(c.scheduling)
            .map_err(|e| e.to_string())?;
    }
    #[cfg(target_os = "linux")]
    for (index, tid) in handle.worker_thread_ids().into_iter().enumerate() {
        use sprint_os::thread;
        if tid <= 0 {
            continue;
        }
        let rt = c.rt_policy != sprint_core::config::RtPolicy::None
            && sprint_os::tune::rt_busy_poll_denied(&c, false).is_none();
        let (policy, prio) = if rt {
            let p = match c.rt_policy {
                sprint_core::config::RtPolicy::RoundRobin => libc::SCHED_RR,
                _ => libc::SCHED_FIFO,
            };
            (p, c.rt_priority as i32)
        } else {
            (libc::SCHED_OTHER, 0)
        };
        if let Err(e) = thread::set_sched(tid, policy, prio) {
            return Err(format!(
                "scheduling class of worker {index}: {e} (needs CAP_SYS_NICE)"
            ));
        }
        if let Some(s) = state.sched.lock().get_mut(index) {
            *s = Some((policy, prio));
        }
        if !rt {
            if let Err(e) = thread::set_nice(tid, c.nice as i32) {
                return Err(format!(
                    "nice {} for worker {index}: {e} (a lower nice value needs CAP_SYS_NICE)",
                    c.nice
                ));
            }
        }
        // A level without a timer slack of its own gets the worker's
        // original one back. Another thread's slack is set through /proc
        // (CAP_SYS_NICE), and only when it differs.
        let Some(slack) = c
            .timer_slack_ns
            .or(original_slack.get(index).copied().flatten())
        else {
            continue;
        };
        if thread::timer_slack(tid).ok() != Some(slack) {
            if let Err(e) = thread::set_timer_slack(tid, slack) {
                return Err(format!(
                    "timer slack of worker {index} (/proc/{tid}/timerslack_ns): {e} (needs CAP_SYS_NICE)"
                ));
            }
        }
    }
    Ok(())
}

/// The objective's histogram now.
fn snapshot(handle: &Handle, name: &str) -> Snapshot {
    if let Some((_, s)) = handle.histograms().into_iter().find(|(n, _)| *n == name) {
        return s;
    }
    sprint_core::metrics::named_histograms()
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, _, s)| s)
        .unwrap_or_else(Snapshot::empty)
}

fn busy_ns(handle: &Handle) -> u64 {
    handle.worker_stats().iter().map(|w| w.busy_ns).sum()
}

/// The controller's thread; stops when dropped.
#[derive(Debug)]
pub struct Controller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<AdaptiveState>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop.store(true, Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Controller {
    /// Starts the controller of the runtime behind `handle`, by its
    /// configuration's `adaptive_*` fields (validated when the runtime
    /// started), on a thread of its own.
    pub fn start(handle: Handle) -> std::io::Result<Controller> {
        let cfg = handle.config().clone();
        let objective: Objective = cfg
            .adaptive_objective
            .parse()
            .map_err(std::io::Error::other)?;
        let state = Arc::new(AdaptiveState::new(cfg.level, handle.workers()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (stop.clone(), state.clone());
        let thread = std::thread::Builder::new()
            .name("sprint-adaptive".into())
            .spawn(move || run(handle, st2, cfg, objective, s2))?;
        Ok(Controller {
            stop,
            thread: Some(thread),
            state,
        })
    }

    /// The level in force, its moves, and what the controller set.
    pub fn state(&self) -> &Arc<AdaptiveState> {
        &self.state
    }
}

fn run(
    handle: Handle,
    state: Arc<AdaptiveState>,
    cfg: Config,
    objective: Objective,
    stop: Arc<AtomicBool>,
) {
    let window = Duration::from_millis(cfg.adaptive_window_ms);
    let dwell = Duration::from_millis(cfg.adaptive_dwell_ms);
    let workers = handle.workers().max(1) as f64;
    let original_slack = original_slacks(&handle);
    let mut prev = snapshot(&handle, &objective.histogram);
    let mut prev_busy = busy_ns(&handle);
    // When the last step was taken, and whether it went up.
    let mut last_step: Option<(Instant, bool)> = None;
    let (mut missed, mut held) = (0u32, 0u32);
    loop {
        let until = Instant::now() + window;
        while Instant::now() < until {
            if stop.load(Acquire) {
                return;
            }
            std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
        }
        let now = snapshot(&handle, &objective.histogram);
        let delta = now.minus(&prev);
        prev = now;
        let b = busy_ns(&handle);
        let busy = (b.saturating_sub(prev_busy)) as f64 / (window.as_nanos() as f64 * workers);
        prev_busy = b;
        let n = delta.count();
        let q = delta.quantile(objective.quantile);
        let miss = n > 0 && q > objective.bound_ns;
        let good = (n == 0 || q.saturating_mul(2) <= objective.bound_ns)
            && busy * 100.0 < f64::from(cfg.adaptive_busy_below_percent);
        if miss {
            missed += 1;
            held = 0;
        } else if good {
            held += 1;
            missed = 0;
        } else {
            missed = 0;
            held = 0;
        }
        // The dwell holds back only a step against the last one's
        // direction: that is what would oscillate.
        let may =
            |up: bool| last_step.is_none_or(|(t, was_up)| was_up == up || t.elapsed() >= dwell);
        let cur = state.level();
        let unavailable = |l: Level| state.unavailable.lock().iter().any(|(u, _)| *u == l);
        let target = if missed >= cfg.adaptive_up_after && may(true) {
            Level::ALL
                .iter()
                .copied()
                .filter(|l| *l > cur && *l <= cfg.adaptive_max_level && !unavailable(*l))
                .min()
        } else if held >= cfg.adaptive_down_after && may(false) {
            Level::ALL
                .iter()
                .copied()
                .filter(|l| *l < cur && *l >= cfg.adaptive_min_level && !unavailable(*l))
                .max()
        } else {
            None
        };
        let Some(to) = target else { continue };
        let reason = format!(
            "{} {} {} ns (bound {} ns, {} samples) over {} windows; busy {:.0} %",
            objective.histogram,
            if to > cur { "missed at" } else { "held at" },
            q,
            objective.bound_ns,
            n,
            if to > cur { missed } else { held },
            busy * 100.0
        );
        match apply(&handle, &state, to, &original_slack) {
            Ok(()) => {
                let t = Transition {
                    from: cur,
                    to,
                    reason,
                    needs_restart: restart_only(
                        handle.config(),
                        &Config::for_level(to),
                        handle.can_steal(),
                    ),
                };
                tracing::info!(
                    from = %t.from, to = %t.to, reason = %t.reason,
                    needs_restart = ?t.needs_restart,
                    "adaptive: level changed"
                );
                state.level.store(to.index() as u8, Relaxed);
                state.transitions.fetch_add(1, Relaxed);
                state.history.lock().push(t);
                last_step = Some((Instant::now(), to > cur));
                // A miss streak carries on up (the next missed window
                // steps again); a step down starts a fresh streak.
                held = 0;
                if to < cur {
                    missed = 0;
                }
            }
            Err(why) => {
                tracing::warn!(level = %to, %why, "adaptive: level unavailable");
                state.unavailable.lock().push((to, why));
                // Put the level in force back, whatever was half applied.
                if let Err(e) = apply(&handle, &state, cur, &original_slack) {
                    tracing::error!(level = %cur, error = %e, "adaptive: could not re-apply the level in force");
                }
            }
        }
    }
}
