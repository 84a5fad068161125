//! Per-worker arenas as the levels ask, and every way they degrade: each
//! privilege is dropped for real in a child process (the limits and
//! capabilities are process-wide), and strict mode turns each degradation
//! into an error.

use common::Start;
use sprint_core::config::ConfigBuilder;
use sprint_core::config::LockMemory;
use sprint_core::{spawn_local, try_spawn_local, Level, SpawnError};

mod common;

const CHILD: &str = "MEMORY_CHILD_OF_THE_SPRINT_CORE_TESTS";

/// Real-time scheduling is tested in tests/tune.rs alone.
fn builder(level: Level) -> ConfigBuilder {
    ConfigBuilder::new()
        .level(level)
        .read_env(false)
        .workers(1)
        .configure(|c| c.rt_policy = sprint_core::config::RtPolicy::None)
}

#[test]
fn an_arena_per_worker_commits_its_preallocation_within_the_budget() {
    let rt = builder(Level::Aggressive).build().unwrap();
    let s = &rt.handle().memory_stats()[0];
    let cfg = rt.config();
    assert_eq!(s.arena.committed, cfg.arena_prealloc_bytes, "{s:?}");
    assert!(s.arena.capacity >= s.arena.committed, "{s:?}");
    let report = rt.start_report().memory().join("\n");
    assert!(report.contains("budget"), "{report}");
}

#[test]
fn enterprise_locks_and_binds_its_arena_as_the_kernel_reports() {
    let rt = builder(Level::Enterprise)
        .configure(|c| c.huge_pages = false)
        .build()
        .unwrap();
    let s = &rt.handle().memory_stats()[0];
    // Root here has CAP_IPC_LOCK: the lock is granted.
    assert!(s.arena.locked >= rt.config().arena_prealloc_bytes, "{s:?}");
    // Bound to the worker's node, as get_mempolicy reports it.
    assert_eq!(s.bound_node, Some(0), "{s:?}");
    let vmlck = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmLck:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        .unwrap();
    assert!(vmlck * 1024 >= s.arena.locked, "VmLck {vmlck} kB");
}

#[test]
fn a_full_arena_refuses_try_spawn_and_spawn_falls_back_counted() {
    // 1 % of RAM for one worker; tasks of ~1 KiB that stay pending fill it.
    let rt = builder(Level::Standard)
        .configure(|c| c.memory_budget_percent = 1)
        .build()
        .unwrap();
    let (refused_after, fallback) = rt.block_on(async {
        sprint_core::spawn_on(0, async {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            let rx = futures::future::FutureExt::shared(rx);
            let mut n = 0usize;
            let err = loop {
                let rx = rx.clone();
                let pad = [1u8; 700];
                match try_spawn_local(async move {
                    let _ = rx.await;
                    pad[0]
                }) {
                    Ok(_) => n += 1,
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(err, SpawnError::MemoryBudget { worker: 0 }),
                "{err}"
            );
            // spawn_local still works: it falls back to the global allocator.
            let pad = [7u8; 700];
            let h = spawn_local(async move { pad[1] });
            assert_eq!(h.await.unwrap(), 7);
            let fallback = sprint_core::Handle::current().memory_stats()[0]
                .slab
                .fallback_allocations;
            drop(tx);
            (n, fallback)
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert!(refused_after > 1000, "{refused_after}");
    assert!(fallback >= 1, "the fallback is counted");
}

fn degrade_child(case: &str) {
    match case {
        "memlock" => {
            // Drop CAP_IPC_LOCK for real and lower RLIMIT_MEMLOCK to 64 KiB.
            for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
                caps::drop(None, set, caps::Capability::CAP_IPC_LOCK).unwrap();
            }
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            // SAFETY: setrlimit with a valid struct.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) }, 0);
            let rt = builder(Level::Enterprise)
                .configure(|c| c.huge_pages = false)
                .build()
                .unwrap();
            println!("REPORT {}", rt.start_report().memory().join(" | "));
            println!("LOCKED {}", rt.handle().memory_stats()[0].arena.locked);
            drop(rt);
            let err = builder(Level::Enterprise)
                .configure(|c| {
                    c.huge_pages = false;
                    c.strict = true
                })
                .build()
                .unwrap_err();
            println!("STRICT {err}");
            // Turbo locks everything: mlockall is refused the same way.
            let rt = builder(Level::Turbo)
                .configure(|c| {
                    c.huge_pages = false;
                    c.lock_memory = LockMemory::All
                })
                .build()
                .unwrap();
            println!("ALL {}", rt.start_report().memory().join(" | "));
        }
        other => panic!("unknown case {other}"),
    }
}

fn run_child(case: &str) -> String {
    common::run_child(
        "without_the_privilege_locking_degrades_with_a_reason",
        CHILD,
        case,
    )
}

use common::tagged as line;

#[test]
fn without_the_privilege_locking_degrades_with_a_reason() {
    if let Ok(case) = std::env::var(CHILD) {
        return degrade_child(&case);
    }
    let out = run_child("memlock");
    let report = line(&out, "REPORT ");
    assert!(
        report.contains("mlock of") && report.contains("refused"),
        "{report}"
    );
    assert!(report.contains("RLIMIT_MEMLOCK = 64 KiB"), "{report}");
    assert_eq!(line(&out, "LOCKED ").trim(), "0");
    let strict = line(&out, "STRICT ");
    // Strict stops at the first setting it cannot have: the locked-memory
    // limit it cannot raise without CAP_SYS_RESOURCE, or the lock itself.
    assert!(
        strict.contains("RLIMIT_MEMLOCK") || strict.contains("mlock"),
        "{strict}"
    );
    let all = line(&out, "ALL ");
    assert!(
        all.contains("mlockall refused")
            || all.contains("mlockall skipped: an AddressSanitizer build"),
        "{all}"
    );
}

#[test]
fn no_huge_pages_reserved_falls_back_to_transparent_ones_or_fails_when_strict() {
    if sprint_alloc::arena::free_huge_pages() > 0 {
        common::skip(
            "no-reserved-hugepages",
            "this machine has explicit huge pages reserved",
        );
        return;
    }
    let rt = builder(Level::Enterprise).build().unwrap();
    let report = rt.start_report().memory().join("\n");
    assert!(
        report.contains("no explicit huge pages reserved"),
        "{report}"
    );
    assert!(report.contains("transparent huge pages"), "{report}");
    assert_eq!(rt.handle().memory_stats()[0].arena.huge_page_bytes, 0);
    drop(rt);
    let err = builder(Level::Enterprise)
        .configure(|c| c.strict = true)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("huge pages"), "{err}");
}

#[test]
fn a_budget_too_small_for_the_preallocation_degrades_or_fails_when_strict() {
    // Validation lets one worker preallocate the whole budget (Standard:
    // 75 % of the memory); the memory limit's headroom and what is
    // already resident leave less room than that, so the arena commits
    // its share and says so, or strict mode refuses.
    let huge = sprint_os::budget::detect(75).unwrap().total as usize;
    let rt = builder(Level::Standard)
        .configure(move |c| c.arena_prealloc_bytes = huge)
        .build()
        .unwrap();
    let report = rt.start_report().memory().join("\n");
    assert!(
        report.contains(&format!("less than the {} MiB preallocation", huge >> 20)),
        "{report}"
    );
    let s = &rt.handle().memory_stats()[0];
    assert_eq!(
        s.arena.committed, s.arena.capacity,
        "commits its whole share"
    );
    drop(rt);
    let err = builder(Level::Standard)
        .configure(move |c| {
            c.arena_prealloc_bytes = huge;
            c.strict = true
        })
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("memory budget"), "{err}");
}

#[test]
fn asking_for_mimalloc_without_it_installed_says_so() {
    // This binary's global allocator is the system's.
    let rt = builder(Level::Basic)
        .configure(|c| c.allocator = sprint_core::config::Allocator::Mimalloc)
        .build()
        .unwrap();
    let report = rt.start_report().memory().join("\n");
    assert!(
        report.contains("allocator = mimalloc, but"),
        "the program asked for mimalloc; the report must say it is not there: {report}"
    );
    drop(rt);
    // Standard only recommends it: the program is not told at start-up.
    let rt = builder(Level::Standard).build().unwrap();
    let report = rt.start_report().memory().join("\n");
    assert!(
        !report.contains("allocator = mimalloc, but"),
        "the level's recommendation is not reported: {report}"
    );
}

#[test]
fn a_future_too_large_for_a_cell_falls_back_and_is_counted() {
    let rt = builder(Level::Standard).build().unwrap();
    let before = rt.handle().memory_stats()[0].slab.fallback_allocations;
    let got = rt.block_on(async {
        sprint_core::spawn_on(0, async {
            let big = [3u8; 4000];
            let h = spawn_local(async move { big[3999] });
            // try_spawn_local refuses it: it cannot come from the arena.
            let big2 = [4u8; 4000];
            let refused = try_spawn_local(async move { big2[0] }).is_err();
            (h.await.unwrap(), refused)
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(got, (3, true));
    let after = rt.handle().memory_stats()[0].slab.fallback_allocations;
    assert_eq!(
        after - before,
        1,
        "the 4 KB future went to the global allocator, counted"
    );
}
