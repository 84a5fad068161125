//! The adaptive controller: moves the runtime's level while it runs, from
//! measured latency and load. Every window it reads the objective's
//! histogram (the change over the window) and the workers' busy time; it
//! steps up one level after `adaptive_up_after` windows in a row that
//! miss the objective, and down one after `adaptive_down_after` windows
//! that meet it with margin (at most half the bound) at a low busy ratio.
//! It climbs fast and comes down slowly: once a streak of misses has
//! stepped it up, every further window that still misses steps it up
//! again, while each step down needs a fresh streak at the new level.
//! A step that reverses the last one is never taken within
//! `adaptive_dwell_ms` of it. The runtime starts
//! with the restart-only settings of the highest level allowed, so a step
//! changes only what can change live: the idle strategy and spin, whether
//! workers steal, and each worker's scheduling class or nice value and
//! timer slack. What the
//! target level would change only with a restart is named in the log. A
//! level that cannot be applied (a missing privilege) is marked
//! unavailable with the reason and not tried again.

use crate::config::{Config, ConfigError, Level};
use crate::metrics::Snapshot;
use crate::runtime::Handle;
use parking_lot::Mutex;
use serde::Serialize;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A latency objective: a histogram's quantile under a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// `task_poll`, `schedule_delay`, `io_latency`, `timer_lateness`, or a
    /// named histogram.
    pub histogram: String,
    /// 0.5, 0.95, 0.99 or 0.999.
    pub quantile: f64,
    /// The bound, ns.
    pub bound_ns: u64,
}

impl FromStr for Objective {
    type Err = String;

    /// `schedule_delay p99 < 500us`: a histogram, `p50`, `p95`, `p99` or
    /// `p99.9`, `<`, and a bound in `ns`, `us`, `ms` or `s`.
    fn from_str(s: &str) -> Result<Objective, String> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [histogram, q, "<", bound] = parts.as_slice() else {
            return Err(format!(
                "{s:?} is not `<histogram> <p50|p95|p99|p99.9> < <bound>` (e.g. `schedule_delay p99 < 500us`)"
            ));
        };
        let quantile = match *q {
            "p50" => 0.5,
            "p95" => 0.95,
            "p99" => 0.99,
            "p99.9" => 0.999,
            other => return Err(format!("quantile {other:?} must be p50, p95, p99 or p99.9")),
        };
        let (num, unit) = bound
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .map(|i| bound.split_at(i))
            .ok_or_else(|| format!("bound {bound:?} needs a unit: ns, us, ms or s"))?;
        let n: f64 = num
            .parse()
            .map_err(|_| format!("bound {bound:?} is not a number with a unit"))?;
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            other => return Err(format!("unit {other:?} must be ns, us, ms or s")),
        };
        if n.is_nan() || n <= 0.0 {
            return Err(format!("bound {bound:?} must be above zero"));
        }
        Ok(Objective {
            histogram: histogram.to_string(),
            quantile,
            bound_ns: (n * scale) as u64,
        })
    }
}

/// One move of the level.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    /// From.
    pub from: Level,
    /// To.
    pub to: Level,
    /// Why, with the figures measured.
    pub reason: String,
    /// What the target level changes only with a restart.
    pub needs_restart: Vec<String>,
}

/// The controller's state, shared with stats and export.
#[derive(Debug)]
pub(crate) struct AdaptiveState {
    level: AtomicU8,
    pub(crate) transitions: AtomicU64,
    pub(crate) history: Mutex<Vec<Transition>>,
    pub(crate) unavailable: Mutex<Vec<(Level, String)>>,
}

fn level_of(i: u8) -> Level {
    Level::ALL[(i as usize).min(Level::ALL.len() - 1)]
}

impl AdaptiveState {
    pub(crate) fn new(level: Level) -> AdaptiveState {
        AdaptiveState {
            level: AtomicU8::new(level.index() as u8),
            transitions: AtomicU64::new(0),
            history: Mutex::new(Vec::new()),
            unavailable: Mutex::new(Vec::new()),
        }
    }

    /// The level in force.
    pub(crate) fn level(&self) -> Level {
        level_of(self.level.load(Relaxed))
    }
}

/// Fields only a restart changes, and whether two configurations differ
/// in them. Stealing changes live where the workers have deques
/// (`can_steal`); without them, switching it on needs a restart.
fn restart_only(a: &Config, b: &Config, can_steal: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !can_steal && b.scheduling != crate::config::Scheduling::ThreadPerCore {
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

/// Starts from the highest level's restart-only settings and the lowest
/// level's live ones (fields the operator set keep their values).
pub(crate) fn starting_config(config: &Config) -> Result<Config, ConfigError> {
    crate::config::validate::validate_adaptive(config)?;
    let hi = Config::for_level(config.adaptive_max_level);
    let lo = Config::for_level(config.adaptive_min_level);
    let mut c = config.clone();
    macro_rules! take {
        ($from:ident: $($f:ident),*) => {$(
            if left_to_level(config, stringify!($f)) {
                c.$f = $from.$f.clone();
            }
        )*};
    }
    take!(hi: pinning, arenas, arena_prealloc_bytes, prefault, lock_memory, huge_pages, numa_bind, io_driver, uring_registered_buffers, uring_sqpoll, stack_size);
    take!(lo: scheduling, idle, idle_spin_us, rt_policy, rt_priority, nice, timer_slack_ns, coop_budget, event_interval);
    c.level = config.adaptive_min_level;
    Ok(c)
}

/// Whether a runtime built from `config` gives its workers stealable
/// deques: where its scheduling steals, or where the adaptive controller
/// may move to a level that steals (and the operator left `scheduling`
/// to the level).
pub(crate) fn needs_deques(config: &Config) -> bool {
    use crate::config::Scheduling::ThreadPerCore;
    if config.scheduling != ThreadPerCore {
        return true;
    }
    config.adaptive
        && left_to_level(config, "scheduling")
        && Level::ALL
            .iter()
            .filter(|l| **l >= config.adaptive_min_level && **l <= config.adaptive_max_level)
            .any(|l| Config::for_level(*l).scheduling != ThreadPerCore)
}

/// Whether `field` comes from the level (the operator did not set it):
/// only those the controller takes from a level.
fn left_to_level(config: &Config, field: &str) -> bool {
    matches!(
        config.sources().get(field),
        Some(crate::config::Source::Preset(_)) | None
    )
}

/// Each worker's timer slack when the controller started (`None` where it
/// cannot be read), which a level without a slack of its own restores.
fn original_slacks(handle: &Handle) -> Vec<Option<u64>> {
    handle
        .shared
        .workers
        .iter()
        .map(|w| {
            std::fs::read_to_string(format!("/proc/{}/timerslack_ns", w.tid.load(Relaxed)))
                .ok()
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// Applies `level`'s live settings to the running workers (on other
/// platforms, the idle strategy only).
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn apply(handle: &Handle, level: Level, original_slack: &[Option<u64>]) -> Result<(), String> {
    let c = Config::for_level(level);
    handle
        .set_idle(c.idle, c.idle_spin())
        .map_err(|e| e.to_string())?;
    if handle.shared.policy.can_steal && left_to_level(&handle.shared.info.config, "scheduling") {
        handle
            .set_scheduling(c.scheduling)
            .map_err(|e| e.to_string())?;
    }
    #[cfg(target_os = "linux")]
    for w in &handle.shared.workers {
        let tid = w.tid.load(Relaxed);
        if tid <= 0 {
            continue;
        }
        let rt = c.rt_policy != crate::config::RtPolicy::None
            && crate::tune::rt_busy_poll_denied(&c, false).is_none();
        let (policy, prio) = if rt {
            let p = match c.rt_policy {
                crate::config::RtPolicy::RoundRobin => libc::SCHED_RR,
                _ => libc::SCHED_FIFO,
            };
            (p, c.rt_priority as i32)
        } else {
            (libc::SCHED_OTHER, 0)
        };
        let param = libc::sched_param {
            sched_priority: prio,
        };
        // SAFETY: a worker thread of this process; a valid parameter.
        if unsafe { libc::sched_setscheduler(tid, policy, &param) } != 0 {
            return Err(format!(
                "scheduling class of worker {}: {} (needs CAP_SYS_NICE)",
                w.index,
                std::io::Error::last_os_error()
            ));
        }
        *w.expected_sched.lock() = Some((policy, prio));
        if !rt {
            // SAFETY: setpriority on a thread id of this process.
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, c.nice as i32) }
                != 0
            {
                return Err(format!(
                    "nice {} for worker {}: {} (a lower nice value needs CAP_SYS_NICE)",
                    c.nice,
                    w.index,
                    std::io::Error::last_os_error()
                ));
            }
        }
        // A level without a timer slack of its own gets the worker's
        // original one back. Another thread's slack is set through /proc
        // (CAP_SYS_NICE), and only when it differs.
        let Some(slack) = c
            .timer_slack_ns
            .or(original_slack.get(w.index).copied().flatten())
        else {
            continue;
        };
        let path = format!("/proc/{tid}/timerslack_ns");
        let now: Option<u64> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        if now != Some(slack) {
            if let Err(e) = std::fs::write(&path, slack.to_string()) {
                return Err(format!(
                    "timer slack of worker {} ({path}): {e} (needs CAP_SYS_NICE)",
                    w.index
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
    crate::metrics::named_histograms()
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, _, s)| s)
        .unwrap_or_else(Snapshot::empty)
}

fn busy_ns(handle: &Handle) -> u64 {
    handle
        .shared
        .workers
        .iter()
        .map(|w| w.counters.busy_ns.load(Relaxed))
        .sum()
}

/// The controller's thread; stops when dropped.
#[derive(Debug)]
pub(crate) struct Controller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
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
    pub(crate) fn start(handle: Handle, config: &Config) -> std::io::Result<Controller> {
        let objective: Objective = config
            .adaptive_objective
            .parse()
            .map_err(std::io::Error::other)?;
        let cfg = config.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sprint-adaptive".into())
            .spawn(move || run(handle, cfg, objective, s2))?;
        Ok(Controller {
            stop,
            thread: Some(thread),
        })
    }
}

fn run(handle: Handle, cfg: Config, objective: Objective, stop: Arc<AtomicBool>) {
    let window = Duration::from_millis(cfg.adaptive_window_ms);
    let dwell = Duration::from_millis(cfg.adaptive_dwell_ms);
    let workers = handle.shared.workers.len().max(1) as f64;
    let state = &handle.shared.adaptive;
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
        match apply(&handle, to, &original_slack) {
            Ok(()) => {
                let t = Transition {
                    from: cur,
                    to,
                    reason,
                    needs_restart: restart_only(
                        &handle.shared.info.config,
                        &Config::for_level(to),
                        handle.shared.policy.can_steal,
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
                if let Err(e) = apply(&handle, cur, &original_slack) {
                    tracing::error!(level = %cur, error = %e, "adaptive: could not re-apply the level in force");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_and_bad_ones_say_why() {
        let o: Objective = "schedule_delay p99 < 500us".parse().unwrap();
        assert_eq!(
            o,
            Objective {
                histogram: "schedule_delay".into(),
                quantile: 0.99,
                bound_ns: 500_000
            }
        );
        assert_eq!(
            "x p99.9 < 2ms".parse::<Objective>().unwrap().bound_ns,
            2_000_000
        );
        for bad in [
            "",
            "x p98 < 1ms",
            "x p99 > 1ms",
            "x p99 < 1",
            "x p99 < 1h",
            "x p99 < 0ms",
        ] {
            assert!(bad.parse::<Objective>().is_err(), "{bad:?}");
        }
    }
}
