//! Each worker's memory, as the level asks: an arena within the budget,
//! bound to the worker's NUMA node, with the task slab on top; the whole
//! process locked at the levels that lock everything. All of it is first
//! checked against the memory limit with a headroom ([`crate::fit`]). What cannot
//! be had degrades with a reason in the report (strict mode: an error).

use crate::fit::{self, Demand, MemoryLimit};
use crate::placement::Plan;
use crate::topology::MachineTopology;
use sprint_alloc::budget::Budget;
use sprint_alloc::ArenaConfig;
use sprint_config::{Config, LockMemory};

/// Why memory could not be set up as asked (strict mode), or at all.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// What the level makes resident at start does not fit under the
    /// memory limit less its headroom.
    #[error(
        "the level needs {demand} at start, more than the {} MiB that {limit} leaves after a headroom of {} MiB",
        limit.room() >> 20,
        limit.headroom() >> 20
    )]
    DoesNotFit {
        /// What the start would make resident.
        demand: Demand,
        /// The limit it was checked against.
        limit: MemoryLimit,
    },
    /// RAM could not be read, and arenas need a budget.
    #[error("cannot read the machine's memory for the budget: {0}")]
    BudgetUnreadable(std::io::Error),
    /// The budget leaves each worker less than an arena's minimum.
    #[error("the memory budget {budget} leaves each of {workers} workers {} KiB, too little for an arena", each >> 10)]
    ArenaTooSmall {
        /// The budget.
        budget: Budget,
        /// The workers sharing it.
        workers: usize,
        /// Each one's share, bytes.
        each: usize,
    },
    /// The budget's share of a worker is below the level's preallocation.
    #[error("the memory budget {budget} gives each of {workers} workers {} MiB, less than the {} MiB preallocation", each >> 20, commit >> 20)]
    PreallocOverBudget {
        /// The budget.
        budget: Budget,
        /// The workers sharing it.
        workers: usize,
        /// Each one's share, bytes.
        each: usize,
        /// The preallocation asked for, bytes.
        commit: usize,
    },
    /// mlockall could not be had.
    #[error("mlockall: {0}")]
    LockAll(LockAllError),
}

/// Why `mlockall` was not made.
#[derive(Debug, thiserror::Error)]
pub enum LockAllError {
    /// An AddressSanitizer build: its shadow memory cannot be locked.
    #[error("skipped: an AddressSanitizer build (its shadow memory cannot be locked)")]
    Asan,
    /// Not a Unix.
    #[error("locking all process memory is unsupported on this platform")]
    Unsupported,
    /// The kernel refused (RLIMIT_MEMLOCK, CAP_IPC_LOCK).
    #[error("refused ({0}): memory not locked")]
    Refused(std::io::Error),
}

/// The memory side of the start-up plan.
#[derive(Debug, Clone, Default)]
pub struct MemoryPlan {
    /// Each worker's arena, or none (the global allocator serves).
    pub arenas: Vec<Option<ArenaConfig>>,
    /// What was decided, in words, for the start-up report.
    pub notes: Vec<String>,
    /// Whether to mlockall.
    pub lock_all: bool,
    /// The memory limit the start was checked against (for `health()`).
    pub limit: Option<MemoryLimit>,
}

/// Orders the plan's CPUs by the configuration's placement on `topo`
/// (when the configuration did not name CPUs).
pub fn place(plan: &mut Plan, config: &Config, topo: &MachineTopology) {
    if config.cpus.is_some() {
        return;
    }
    let places = topo.place(&plan.cpus, plan.workers.len(), config.placement);
    if places.len() == plan.workers.len() {
        for (w, p) in plan.workers.iter_mut().zip(places) {
            w.cpu = p.cpu;
        }
    }
}

/// Sizes each worker's arena within the budget.
pub fn plan(
    config: &Config,
    plan: &Plan,
    topo: Option<&MachineTopology>,
) -> Result<MemoryPlan, MemoryError> {
    let mut out = MemoryPlan {
        lock_all: config.lock_memory == LockMemory::All,
        ..MemoryPlan::default()
    };
    let n = plan.workers.len().max(1);
    let budget = match crate::budget::detect(config.memory_budget_percent) {
        Ok(b) => b,
        Err(e) if config.arenas => return Err(MemoryError::BudgetUnreadable(e)),
        Err(e) => {
            out.notes.push(format!(
                "cannot read the machine's memory ({e}): start-up memory not checked"
            ));
            out.arenas = vec![None; n];
            return Ok(out);
        }
    };
    let limit = fit::MemoryLimit::of(&budget);
    let demand = Demand {
        rss: fit::resident_bytes().unwrap_or(0),
        workers: n as u64,
        // The workers and the blocking pool's first thread.
        threads: n as u64 + 1,
        stack: config.stack_size as u64,
        commit: if config.arenas {
            config.arena_prealloc_bytes as u64
        } else {
            0
        },
        resident_commit: config.prefault || config.lock_memory == LockMemory::Arenas,
        lock_all: out.lock_all,
    };
    let fitted = fit::fit(&limit, &demand, config.strict)?;
    out.lock_all = fitted.lock_all;
    out.notes.extend(fitted.notes);
    out.limit = Some(limit);
    if !config.arenas {
        out.arenas = vec![None; n];
        return Ok(out);
    }
    let mut total = budget.total;
    if fitted.arena_room < total {
        out.notes.push(format!(
            "the arenas may reach {} MiB together, not the budget's {} MiB: the rest is the headroom and what is resident",
            fitted.arena_room >> 20,
            total >> 20
        ));
        total = fitted.arena_room;
    }
    let page = 4096usize;
    let ceiling = (total as usize / n) / page * page;
    let mut commit = config.arena_prealloc_bytes.min(fitted.commit as usize);
    if ceiling < 64 * 1024 {
        let refusal = MemoryError::ArenaTooSmall {
            budget: budget.clone(),
            workers: n,
            each: ceiling,
        };
        if config.strict {
            return Err(refusal);
        }
        let why = refusal.to_string();
        out.notes
            .push(format!("{why}: no arenas, the global allocator serves"));
        out.arenas = vec![None; n];
        return Ok(out);
    }
    if commit > ceiling {
        let refusal = MemoryError::PreallocOverBudget {
            budget: budget.clone(),
            workers: n,
            each: ceiling,
            commit,
        };
        if config.strict {
            return Err(refusal);
        }
        let why = refusal.to_string();
        out.notes
            .push(format!("{why}: each arena commits its share"));
        commit = ceiling;
    }
    out.notes.push(format!(
        "budget {budget}: {n} arena(s) of up to {} MiB, {} MiB committed each",
        ceiling >> 20,
        commit >> 20
    ));
    for w in &plan.workers {
        let numa_node = if config.numa_bind {
            topo.and_then(|t| t.node_of(w.cpu)).or(Some(0))
        } else {
            None
        };
        out.arenas.push(Some(ArenaConfig {
            ceiling,
            commit,
            prefault: config.prefault,
            lock: config.lock_memory == LockMemory::Arenas,
            huge_pages: config.huge_pages,
            numa_node,
            strict: config.strict,
        }));
    }
    Ok(out)
}

/// The reclaim policy as mimalloc's purge delay (ms; `None`: never).
pub fn purge_delay(reclaim: sprint_config::Reclaim) -> Option<u32> {
    use sprint_config::Reclaim;
    match reclaim {
        Reclaim::Soon => Some(0),
        Reclaim::Lazy => Some(100),
        Reclaim::Keep => Some(10_000),
        Reclaim::Never => None,
    }
}

/// Applies `allocator = mimalloc`: the reclaim policy if mimalloc is the
/// global allocator, else a note saying why not. The note goes in the
/// report (logged at `info`) only when the program asked for mimalloc (the
/// setting came from code, a file or the environment); when it is only the
/// level's recommendation it is logged at `debug`, so a program that never
/// mentioned mimalloc is not told at start-up that it lacks it.
pub fn apply_allocator(config: &Config, notes: &mut Vec<String>) {
    if config.allocator != sprint_config::Allocator::Mimalloc {
        return;
    }
    let asked = !matches!(
        config.sources.get("allocator"),
        None | Some(sprint_config::Source::Preset(_))
    );
    let mut missing = |note: &str| {
        if asked {
            notes.push(note.into());
        } else {
            tracing::debug!(
                "{note} (the level's recommendation; set `allocator` to be told at info)"
            );
        }
    };
    #[cfg(feature = "mimalloc")]
    {
        if sprint_alloc::mimalloc::is_global() {
            let delay = purge_delay(config.reclaim);
            sprint_alloc::mimalloc::set_purge_delay(delay);
            notes.push(match delay {
                Some(ms) => format!(
                    "mimalloc: freed memory returns to the OS after {ms} ms (reclaim {})",
                    config.reclaim
                ),
                None => format!(
                    "mimalloc: freed memory is never returned (reclaim {})",
                    config.reclaim
                ),
            });
        } else {
            missing("allocator = mimalloc, but the program's global allocator is not mimalloc: add `#[global_allocator] static GLOBAL: sprint::memory::MiMalloc = sprint::memory::MiMalloc;`");
        }
    }
    #[cfg(not(feature = "mimalloc"))]
    missing("allocator = mimalloc, but Sprint was built without its `mimalloc` feature: the system allocator serves");
}

/// mlockall for the levels that lock everything; the guard undoes it.
#[derive(Debug)]
#[cfg_attr(not(unix), allow(dead_code))]
pub struct LockAll(bool);

impl LockAll {
    /// mlockall now; where it cannot be had, an error (`strict`) or a note.
    pub fn apply(strict: bool, notes: &mut Vec<String>) -> Result<LockAll, MemoryError> {
        let refused = if sprint_alloc::arena::under_asan() {
            LockAllError::Asan
        } else {
            match Self::mlockall() {
                Ok(()) => {
                    notes.push("all process memory locked (mlockall)".into());
                    return Ok(LockAll(true));
                }
                Err(e) => e,
            }
        };
        if strict {
            return Err(MemoryError::LockAll(refused));
        }
        notes.push(format!("mlockall {refused}"));
        Ok(LockAll(false))
    }

    /// Whether mlockall was made (and is undone on drop).
    pub fn locked(&self) -> bool {
        self.0
    }

    #[cfg(unix)]
    fn mlockall() -> Result<(), LockAllError> {
        // SAFETY: mlockall has no memory preconditions.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
            Ok(())
        } else {
            Err(LockAllError::Refused(std::io::Error::last_os_error()))
        }
    }

    #[cfg(not(unix))]
    fn mlockall() -> Result<(), LockAllError> {
        Err(LockAllError::Unsupported)
    }
}

impl Drop for LockAll {
    fn drop(&mut self) {
        #[cfg(unix)]
        if self.0 {
            // SAFETY: undoes the mlockall this guard made.
            unsafe { libc::munlockall() };
        }
    }
}
