//! mimalloc as the global allocator: the runtime sees it and sets the
//! level's reclaim policy (Standard: freed memory returns after 100 ms);
//! `collect()` hands freed memory back at once.

#[global_allocator]
static GLOBAL: sprint::memory::MiMalloc = sprint::memory::MiMalloc;

#[test]
fn the_level_sets_mimallocs_reclaim_and_collect_runs() {
    let rt = sprint::Builder::new()
        .level(sprint::Level::Standard)
        .read_env(false)
        .workers(1)
        .build()
        .unwrap();
    let report = rt.start_report().memory().join("\n");
    assert!(
        report.contains("mimalloc: freed memory returns to the OS after 100 ms (reclaim lazy)"),
        "{report}"
    );
    drop(rt);
    let rt = sprint::Builder::new()
        .level(sprint::Level::Turbo)
        .read_env(false)
        .workers(1)
        .configure(|c| {
            c.huge_pages = false;
            c.lock_memory = sprint::config::LockMemory::None;
            c.rt_policy = sprint::config::RtPolicy::None;
        })
        .build()
        .unwrap();
    let report = rt.start_report().memory().join("\n");
    assert!(
        report.contains("freed memory is never returned (reclaim never)"),
        "{report}"
    );
    let big: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 1 << 20]).collect();
    drop(big);
    sprint::memory::collect();
}
