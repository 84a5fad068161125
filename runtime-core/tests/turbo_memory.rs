//! Turbo's memory is what its configuration states: each worker's arena
//! preallocation (`arena_prealloc_bytes`), prefaulted and locked by
//! `mlock` of the arenas, not `mlockall` over every mapping; the start
//! report names the preallocation per worker and the bytes locked, and a
//! preallocation the budget cannot hold is refused naming the field.
//! Locking runs in a child process (RLIMIT_MEMLOCK and the locks are
//! process-wide).

use common::Start;
use sprint_core::config::{ConfigBuilder, LockMemory, RtPolicy};
use sprint_core::{BuildError, Level};

mod common;

const CHILD: &str = "TURBO_MEMORY_CHILD_OF_THE_SPRINT_CORE_TESTS";
const MIB: usize = 1 << 20;

fn turbo(prealloc: usize) -> ConfigBuilder {
    ConfigBuilder::new()
        .level(Level::Turbo)
        .read_env(false)
        .workers(1)
        .configure(move |c| {
            c.rt_policy = RtPolicy::None;
            c.arena_prealloc_bytes = prealloc;
        })
}

fn report_child(case: &str) {
    let prealloc: usize = case.parse().unwrap();
    let rt = turbo(prealloc).build().unwrap();
    let r = rt.start_report();
    let m = &r.start_memory;
    println!("PREALLOC {}", m.prealloc_per_worker);
    println!("LOCK {} {}", m.lock, m.locked_bytes);
    println!("ARENA {}", rt.handle().memory_stats()[0].arena.committed);
    println!("VMLCK {}", sprint_os::fit::locked_bytes().expect("procfs"));
    println!("MEMORY {}", r.memory().join(" | "));
    let tuning: Vec<String> = r.tuning().iter().map(|l| l.to_string()).collect();
    println!("TUNING {}", tuning.join(" | "));
}

#[test]
fn turbo_reports_its_preallocation_per_worker_and_the_memory_it_locked() {
    if let Ok(case) = std::env::var(CHILD) {
        return report_child(&case);
    }
    for prealloc in [8 * MIB, 24 * MIB] {
        let out = common::run_child(
            "turbo_reports_its_preallocation_per_worker_and_the_memory_it_locked",
            CHILD,
            &prealloc.to_string(),
        );
        let line = |tag| common::tagged(&out, tag).trim().to_string();
        // The preallocation follows the configuration, and the arena
        // commits it.
        assert_eq!(line("PREALLOC "), prealloc.to_string(), "{out}");
        assert_eq!(line("ARENA "), prealloc.to_string(), "{out}");
        // Root here has CAP_IPC_LOCK: the arena's preallocation is locked,
        // by mlock of the arena, and nothing else is.
        assert_eq!(line("LOCK "), format!("arenas {prealloc}"), "{out}");
        let vmlck: usize = line("VMLCK ").parse().unwrap();
        assert_eq!(
            vmlck, prealloc,
            "the locked mappings are the arena's preallocation alone (no mlockall of stacks and reservations): {out}"
        );
        let mib = prealloc / MIB;
        let memory = line("MEMORY ");
        assert!(
            memory.starts_with(&format!(
                "preallocation: {mib} MiB per worker (arena_prealloc_bytes), 1 worker(s), prefaulted at start | locked: {mib} MiB by mlock of the 1 worker arena(s) as committed"
            )),
            "{memory}"
        );
        let tuning = line("TUNING ");
        assert!(
            tuning.contains(&format!(
                "process locked memory: applied (nothing locked -> {mib} MiB by mlock of the 1 worker arena(s) as committed)"
            )),
            "{tuning}"
        );
    }
}

#[test]
fn a_preallocation_the_budget_cannot_hold_is_refused_naming_the_field() {
    // Validation refuses it before anything is locked or committed.
    let err = turbo(1 << 50).build().unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, BuildError::Plan(sprint_os::PlanError::Config(_))),
        "{msg}"
    );
    assert!(
        msg.starts_with(
            "invalid value for `arena_prealloc_bytes`: 1125899906842624: the limit is "
        ),
        "{msg}"
    );
    assert!(
        msg.contains("one worker's arena preallocation must fit in the memory budget"),
        "{msg}"
    );
}

#[test]
fn without_locking_nothing_is_reported_locked() {
    let rt = turbo(4 * MIB)
        .configure(|c| c.lock_memory = LockMemory::None)
        .build()
        .unwrap();
    let m = &rt.start_report().start_memory;
    assert_eq!((m.lock, m.locked_bytes), (LockMemory::None, 0));
    assert_eq!(m.prealloc_per_worker, 4 * MIB);
    let tuning: Vec<String> = rt
        .start_report()
        .tuning()
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert!(
        tuning
            .iter()
            .any(|l| l == "process locked memory: unchanged (nothing locked (lock_memory = none))"),
        "{tuning:?}"
    );
}
