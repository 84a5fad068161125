//! What a runtime says about itself: the one start-up report (placement,
//! tuning, memory and I/O drivers, typed), and each worker's counters and
//! memory figures read while it runs.

use serde::Serialize;
use sprint_alloc::{ArenaStats, SlabStats};
use sprint_os::fit::MemoryLimit;
use sprint_os::{Plan, ReportLine};
use std::fmt;
use std::time::Instant;

/// What one worker's start did.
#[derive(Debug, Clone, Default)]
pub struct WorkerStart {
    /// Its thread settings: applied (from what), unchanged, skipped (and
    /// why) or unsupported.
    pub tuning: Vec<ReportLine>,
    /// What its memory could not have, in words (empty when all was as
    /// asked).
    pub memory: Vec<String>,
    /// Its I/O driver, the features it uses and the reason for any
    /// fallback; `None` without a driver.
    pub driver: Option<String>,
    /// The scheduling class and priority its thread settled on after
    /// tuning (Linux), for drift checks.
    pub sched: Option<(i32, i32)>,
}

/// The start-up report: what the runtime planned and applied, runtime-wide
/// then per worker.
#[derive(Debug, Clone)]
pub struct StartReport {
    /// When the runtime started.
    pub started: Instant,
    /// Which worker runs on which CPU, pinned or not.
    pub plan: Plan,
    /// The process-wide settings.
    pub process_tuning: Vec<ReportLine>,
    /// The memory plan in words: the machine, the budget, the arenas.
    pub memory: Vec<String>,
    /// The memory limit the start was checked against.
    pub memory_limit: Option<MemoryLimit>,
    /// Each worker's start, in worker order.
    pub workers: Vec<WorkerStart>,
}

impl StartReport {
    /// Every process and worker setting.
    pub fn tuning(&self) -> Vec<ReportLine> {
        let mut out = self.process_tuning.clone();
        for w in &self.workers {
            out.extend(w.tuning.iter().cloned());
        }
        out
    }

    /// The memory plan, runtime-wide then per worker.
    pub fn memory(&self) -> Vec<String> {
        let mut out = self.memory.clone();
        for (i, w) in self.workers.iter().enumerate() {
            out.extend(w.memory.iter().map(|n| format!("sprint-worker-{i}: {n}")));
        }
        out
    }

    /// Each worker's I/O driver line (`no I/O driver` without one).
    pub fn drivers(&self) -> Vec<String> {
        self.workers
            .iter()
            .map(|w| w.driver.clone().unwrap_or_else(|| "no I/O driver".into()))
            .collect()
    }

    /// Whether every setting asked for was applied (none skipped or
    /// unsupported).
    pub fn applied(&self) -> bool {
        self.tuning().iter().all(|l| {
            matches!(
                l.outcome,
                sprint_os::tune::Outcome::Applied { .. }
                    | sprint_os::tune::Outcome::Unchanged { .. }
            )
        })
    }
}

impl fmt::Display for StartReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plan)?;
        for l in self.tuning() {
            writeln!(f, "tuning: {l}")?;
        }
        for l in self.memory() {
            writeln!(f, "memory: {l}")?;
        }
        for (i, d) in self.drivers().iter().enumerate() {
            writeln!(f, "sprint-worker-{i}: I/O driver {d}")?;
        }
        Ok(())
    }
}

/// A worker's counters, read without stopping it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WorkerStats {
    /// The worker index.
    pub index: usize,
    /// Its planned CPU, if pinned.
    pub cpu: Option<usize>,
    /// The kernel's thread id.
    pub tid: i32,
    /// Task polls.
    pub polls: u64,
    /// Tasks spawned onto this worker.
    pub spawned: u64,
    /// Tasks of this worker that finished.
    pub completed: u64,
    /// Tasks this worker stole.
    pub steals: u64,
    /// Times it went to sleep.
    pub parks: u64,
    /// Times another thread had to wake it with a system call.
    pub unparks: u64,
    /// Tasks that reached it through its inbox.
    pub inbox_received: u64,
    /// Timers it fired.
    pub timers_fired: u64,
    /// Live tasks it owns (not counting stealable ones).
    pub live_tasks: u64,
    /// Tasks queued to run, as last published.
    pub queue_depth: u64,
    /// Time spent polling tasks, ns.
    pub busy_ns: u64,
    /// Time since the worker started, ns.
    pub uptime_ns: u64,
    /// Polls past the stall threshold.
    pub stalls: u64,
    /// The last stall, in words.
    pub last_stall: Option<String>,
    /// How long the poll running now has run, ns (`None`: not polling).
    pub polling_for_ns: Option<u64>,
}

/// One worker's memory figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    /// The worker.
    pub worker: usize,
    /// Its arena (all zero without one).
    pub arena: ArenaStats,
    /// Its task slab.
    pub slab: SlabStats,
    /// The NUMA node the kernel binds its arena to (get_mempolicy).
    pub bound_node: Option<usize>,
}
