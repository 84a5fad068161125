//! Each worker's memory, as the level asks: an arena within the budget,
//! bound to the worker's NUMA node, with the task slab on top; the whole
//! process locked at the levels that lock everything. All of it is first
//! checked against the memory limit with a headroom ([`fit`]). What cannot
//! be had degrades with a reason in the report (strict mode: an error).

pub mod fit;

use crate::config::{Config, Level, LockMemory};
use crate::topology::Plan;
use serde::Serialize;
use sprint_alloc::topology::{MachineTopology, Placement};
use sprint_alloc::{ArenaConfig, ArenaStats, SlabStats};

/// Allocation accounting for tests and benchmarks: a counting global
/// allocator over the system's.
pub use sprint_alloc::counting;

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

/// The memory side of the start-up plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryPlan {
    pub(crate) arenas: Vec<Option<ArenaConfig>>,
    pub(crate) notes: Vec<String>,
    pub(crate) lock_all: bool,
    /// The memory limit the start was checked against (for `health()`).
    pub(crate) limit: Option<fit::MemoryLimit>,
}

/// How a level places workers on the machine.
pub fn placement_for(level: Level) -> Placement {
    match level {
        Level::Basic | Level::Standard | Level::Aggressive => Placement::Spread,
        Level::Enterprise | Level::Turbo => Placement::Pack,
    }
}

/// Orders the plan's CPUs by the level's placement on `topo` (when the
/// configuration did not name CPUs).
pub(crate) fn place(plan: &mut Plan, config: &Config, topo: &MachineTopology) {
    if config.cpus.is_some() {
        return;
    }
    let places = topo.place(&plan.cpus, plan.workers.len(), placement_for(config.level));
    if places.len() == plan.workers.len() {
        for (w, p) in plan.workers.iter_mut().zip(places) {
            w.cpu = p.cpu;
        }
    }
}

/// Sizes each worker's arena within the budget.
pub(crate) fn plan(
    config: &Config,
    plan: &Plan,
    topo: Option<&MachineTopology>,
) -> Result<MemoryPlan, String> {
    let mut out = MemoryPlan {
        lock_all: config.lock_memory == LockMemory::All,
        ..MemoryPlan::default()
    };
    let n = plan.workers.len().max(1);
    let budget = match sprint_alloc::budget::detect(config.memory_budget_percent) {
        Ok(b) => b,
        Err(e) if config.arenas => {
            return Err(format!(
                "cannot read the machine's memory for the budget: {e}"
            ))
        }
        Err(e) => {
            out.notes.push(format!(
                "cannot read the machine's memory ({e}): start-up memory not checked"
            ));
            out.arenas = vec![None; n];
            return Ok(out);
        }
    };
    let limit = fit::MemoryLimit::of(&budget);
    let demand = fit::Demand {
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
        let why = format!(
            "the memory budget {budget} leaves each of {n} workers {} KiB, too little for an arena",
            ceiling / 1024
        );
        if config.strict {
            return Err(why);
        }
        out.notes
            .push(format!("{why}: no arenas, the global allocator serves"));
        out.arenas = vec![None; n];
        return Ok(out);
    }
    if commit > ceiling {
        let why = format!(
            "the memory budget {budget} gives each of {n} workers {} MiB, less than the {} MiB preallocation",
            ceiling >> 20,
            commit >> 20
        );
        if config.strict {
            return Err(why);
        }
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
pub fn purge_delay(reclaim: crate::config::Reclaim) -> Option<u32> {
    use crate::config::Reclaim;
    match reclaim {
        Reclaim::Soon => Some(0),
        Reclaim::Lazy => Some(100),
        Reclaim::Keep => Some(10_000),
        Reclaim::Never => None,
    }
}

/// Applies `allocator = mimalloc`: the reclaim policy if mimalloc is the
/// global allocator, else a note saying why not.
pub(crate) fn apply_allocator(config: &Config, notes: &mut Vec<String>) {
    if config.allocator != crate::config::Allocator::Mimalloc {
        return;
    }
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
            notes.push("allocator = mimalloc, but the program's global allocator is not mimalloc: add `#[global_allocator] static GLOBAL: sprint::memory::MiMalloc = sprint::memory::MiMalloc;`".into());
        }
    }
    #[cfg(not(feature = "mimalloc"))]
    notes.push("allocator = mimalloc, but Sprint was built without its `mimalloc` feature: the system allocator serves".into());
}

/// Returns the global allocator's freed memory to the OS now (mimalloc's
/// `mi_collect`; the Rust form of the seed's `TriggerGC`).
#[cfg(feature = "mimalloc")]
pub fn collect() {
    sprint_alloc::mimalloc::collect()
}

#[cfg(feature = "mimalloc")]
pub use sprint_alloc::mimalloc::MiMalloc;

/// mlockall for the levels that lock everything; the guard undoes it.
#[derive(Debug)]
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) struct LockAll(bool);

impl LockAll {
    pub(crate) fn apply(strict: bool, notes: &mut Vec<String>) -> Result<LockAll, String> {
        if sprint_alloc::arena::under_asan() {
            let why =
                "mlockall skipped: an AddressSanitizer build (its shadow memory cannot be locked)";
            if strict {
                return Err(why.into());
            }
            notes.push(why.into());
            return Ok(LockAll(false));
        }
        #[cfg(not(unix))]
        {
            let why = "locking all process memory (mlockall) is unsupported on this platform";
            if strict {
                return Err(why.into());
            }
            notes.push(why.into());
            Ok(LockAll(false))
        }
        #[cfg(unix)]
        Self::mlockall(strict, notes)
    }

    #[cfg(unix)]
    fn mlockall(strict: bool, notes: &mut Vec<String>) -> Result<LockAll, String> {
        // SAFETY: mlockall has no memory preconditions.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
            notes.push("all process memory locked (mlockall)".into());
            return Ok(LockAll(true));
        }
        let e = std::io::Error::last_os_error();
        let why = format!("mlockall refused ({e}): memory not locked");
        if strict {
            return Err(why);
        }
        notes.push(why);
        Ok(LockAll(false))
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
