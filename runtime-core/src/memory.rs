//! Each worker's memory, as the level asks: an arena within the budget,
//! bound to the worker's NUMA node, with the task slab on top; the whole
//! process locked at the levels that lock everything. What cannot be had
//! degrades with a reason in the report (strict mode: an error).

use crate::config::{Config, Level, LockMemory};
use crate::topology::Plan;
use serde::Serialize;
use sprint_alloc::topology::{MachineTopology, Placement};
use sprint_alloc::{ArenaConfig, ArenaStats, SlabStats};

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
    if !config.arenas {
        out.arenas = vec![None; n];
        return Ok(out);
    }
    let budget = sprint_alloc::budget::detect(config.memory_budget_percent)
        .map_err(|e| format!("cannot read the machine's memory for the budget: {e}"))?;
    let page = 4096usize;
    let ceiling = (budget.total as usize / n) / page * page;
    let mut commit = config.arena_prealloc_bytes;
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

/// mlockall for the levels that lock everything; the guard undoes it.
#[derive(Debug)]
pub(crate) struct LockAll(bool);

impl LockAll {
    pub(crate) fn apply(strict: bool, notes: &mut Vec<String>) -> Result<LockAll, String> {
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
        if self.0 {
            // SAFETY: undoes the mlockall this guard made.
            unsafe { libc::munlockall() };
        }
    }
}
