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

/// The memory a runtime holds at start: each worker's preallocation, and
/// what is locked in RAM and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartMemory {
    /// Bytes each worker's arena committed at start (`arena_prealloc_bytes`,
    /// less where the memory limit did not leave room); 0 without arenas.
    pub prealloc_per_worker: usize,
    /// Workers with an arena.
    pub arenas: usize,
    /// Whether the preallocation was touched at start (`prefault`).
    pub prefaulted: bool,
    /// How memory is locked, as it turned out: `arenas` (mlock of each
    /// worker's arena as far as it is committed), `all` (mlockall: every
    /// mapping, now and later) or `none` (not asked, or refused: the
    /// memory report says why).
    pub lock: sprint_config::LockMemory,
    /// Bytes locked: the arenas' mlocked bytes; under mlockall, the
    /// process's locked mappings (VmLck).
    pub locked_bytes: u64,
}

/// `n` bytes in the largest whole unit.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

impl StartMemory {
    /// The preallocation, in words.
    pub fn prealloc_line(&self) -> String {
        if self.arenas == 0 {
            return "preallocation: none (no arenas: the global allocator serves)".into();
        }
        format!(
            "preallocation: {} per worker (arena_prealloc_bytes), {} worker(s), {}",
            bytes(self.prealloc_per_worker as u64),
            self.arenas,
            if self.prefaulted {
                "prefaulted at start"
            } else {
                "faulted in on use"
            }
        )
    }

    /// What is locked, in words.
    pub fn locked_line(&self) -> String {
        use sprint_config::LockMemory;
        match self.lock {
            LockMemory::None => "locked: nothing (lock_memory = none, or refused)".into(),
            LockMemory::Arenas => format!(
                "locked: {} by mlock of the {} worker arena(s) as committed",
                bytes(self.locked_bytes),
                self.arenas
            ),
            LockMemory::All => format!(
                "locked: {} of mappings by mlockall (MCL_CURRENT | MCL_FUTURE: every later mapping is faulted in and locked whole)",
                bytes(self.locked_bytes)
            ),
        }
    }
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
    /// The preallocation per worker and the memory locked.
    pub start_memory: StartMemory,
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

    /// The memory plan, runtime-wide then per worker; the first two lines
    /// are the preallocation per worker and what is locked.
    pub fn memory(&self) -> Vec<String> {
        let mut out = vec![
            self.start_memory.prealloc_line(),
            self.start_memory.locked_line(),
        ];
        out.extend(self.memory.iter().cloned());
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
