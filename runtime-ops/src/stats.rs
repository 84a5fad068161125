//! `Stats`: everything a runtime measured, in one serde value (the
//! original specification's `GetStats`, and more).

use crate::Observed;
use serde::Serialize;
use sprint_core::metrics::Summary;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

/// One worker's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerFigures {
    /// The worker index.
    pub index: usize,
    /// Its CPU, if pinned.
    pub cpu: Option<usize>,
    /// The kernel's thread id.
    pub tid: i32,
    /// Task polls.
    pub polls: u64,
    /// Tasks it stole.
    pub steals: u64,
    /// Times it went to sleep.
    pub parks: u64,
    /// Time spent polling tasks over time since it started (0 to 1).
    pub busy_ratio: f64,
    /// Tasks queued to run, as last published.
    pub queue_depth: u64,
    /// Tasks spawned onto it.
    pub tasks_spawned: u64,
    /// Tasks of it that finished.
    pub tasks_completed: u64,
    /// Tasks of it still alive.
    pub tasks_alive: u64,
    /// Polls past the stall threshold.
    pub stalls: u64,
    /// The worker thread's page faults and context switches, from
    /// /proc/self/task/<tid> (`None` where the kernel does not say).
    pub thread: Option<ThreadFigures>,
}

/// A thread's counts as the kernel keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ThreadFigures {
    /// Minor page faults.
    pub minor_faults: u64,
    /// Major page faults.
    pub major_faults: u64,
    /// Voluntary context switches (it blocked).
    pub voluntary_switches: u64,
    /// Involuntary context switches (it was preempted).
    pub involuntary_switches: u64,
}

/// Task counts, over all workers.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TaskFigures {
    /// Alive now.
    pub alive: u64,
    /// Spawned so far.
    pub spawned: u64,
    /// Finished so far.
    pub completed: u64,
}

/// Memory, over all workers.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MemoryFigures {
    /// Arena bytes handed out.
    pub arena_used: u64,
    /// Arena bytes reserved (the budget's share).
    pub arena_capacity: u64,
    /// Task-slab cells in use.
    pub slab_cells: u64,
    /// Allocations that went to the global allocator instead of an arena.
    pub fallback_allocations: u64,
    /// The process's resident set, bytes.
    pub rss: u64,
}

/// Everything a runtime measured.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// The level in force (the adaptive controller moves it).
    pub level: sprint_core::Level,
    /// Moves of the level so far.
    pub level_transitions: u64,
    /// The adaptive controller's moves, with their reasons.
    pub transitions: Vec<crate::adaptive::Transition>,
    /// Levels the controller found it cannot apply, and why.
    pub unavailable_levels: Vec<(sprint_core::Level, String)>,
    /// Whether every setting the level asks for was applied (none skipped
    /// or unsupported).
    pub applied: bool,
    /// Seconds since it started.
    pub uptime_seconds: f64,
    /// Per worker.
    pub workers: Vec<WorkerFigures>,
    /// Task counts.
    pub tasks: TaskFigures,
    /// Memory.
    pub memory: MemoryFigures,
    /// Polls past the stall threshold, all workers.
    pub stalls: u64,
    /// The last stall, in words.
    pub last_stall: Option<String>,
    /// Histogram summaries: `task_poll`, `schedule_delay`, `io_latency`,
    /// `timer_lateness`, then the named ones.
    pub histograms: BTreeMap<String, Summary>,
}

/// Reads /proc/self/task/<tid>/stat and status.
pub(crate) fn thread_figures(tid: i32) -> Option<ThreadFigures> {
    if tid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The command may hold spaces and parentheses: fields start after the
    // last ')'. Then state is field 3, minflt 10, majflt 12.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(ThreadFigures {
        minor_faults: f.get(7)?.parse().ok()?,
        major_faults: f.get(9)?.parse().ok()?,
        voluntary_switches: field("voluntary_ctxt_switches:")?,
        involuntary_switches: field("nonvoluntary_ctxt_switches:")?,
    })
}

/// The process's resident set, bytes (0 where unknown).
pub(crate) fn rss_bytes() -> u64 {
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    #[cfg(unix)]
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    #[cfg(not(unix))]
    let page = 4096;
    pages * page
}

impl Observed {
    /// Everything measured (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        let h = &self.handle;
        let mut tasks = TaskFigures::default();
        let mut stalls = 0;
        let mut last_stall = None;
        let workers: Vec<WorkerFigures> = h
            .worker_stats()
            .into_iter()
            .map(|w| {
                stalls += w.stalls;
                if w.last_stall.is_some() {
                    last_stall = w.last_stall.clone();
                }
                let alive = w.spawned.saturating_sub(w.completed);
                tasks.alive += alive;
                tasks.spawned += w.spawned;
                tasks.completed += w.completed;
                WorkerFigures {
                    index: w.index,
                    cpu: w.cpu,
                    tid: w.tid,
                    polls: w.polls,
                    steals: w.steals,
                    parks: w.parks,
                    busy_ratio: (w.busy_ns as f64 / w.uptime_ns.max(1) as f64).min(1.0),
                    queue_depth: w.queue_depth,
                    tasks_spawned: w.spawned,
                    tasks_completed: w.completed,
                    tasks_alive: alive,
                    stalls: w.stalls,
                    thread: thread_figures(w.tid),
                }
            })
            .collect();
        let mut memory = MemoryFigures {
            rss: rss_bytes(),
            ..Default::default()
        };
        for m in h.memory_stats() {
            memory.arena_used += m.arena.used as u64;
            memory.arena_capacity += m.arena.capacity as u64;
            memory.slab_cells += m.slab.cells_in_use;
            memory.fallback_allocations += m.slab.fallback_allocations;
        }
        let mut histograms: BTreeMap<String, Summary> = h
            .histograms()
            .into_iter()
            .map(|(k, s)| (k.to_string(), s.summary()))
            .collect();
        for (k, _, s) in sprint_core::metrics::named_histograms() {
            histograms.insert(k, s.summary());
        }
        let (level, level_transitions, transitions, unavailable_levels) = match &self.adaptive {
            Some(a) => (
                a.level(),
                a.transitions.load(Relaxed),
                a.history.lock().clone(),
                a.unavailable.lock().clone(),
            ),
            None => (h.config().level, 0, Vec::new(), Vec::new()),
        };
        Stats {
            level,
            level_transitions,
            transitions,
            unavailable_levels,
            applied: self.report.applied(),
            uptime_seconds: h.started().elapsed().as_secs_f64(),
            workers,
            tasks,
            memory,
            stalls,
            last_stall,
            histograms,
        }
    }
}
