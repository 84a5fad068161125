//! Spawning at depth: many tasks outstanding at once on one worker. The
//! arena grows in the large steps `sprint_alloc::arena::grow_target` says
//! (not one per megabyte), and once a depth has been reached, reaching it
//! again recycles cells: the worker thread takes no page fault, carves
//! nothing and falls back to the global allocator for nothing.

use common::Start;
use sprint_alloc::arena::grow_target;
use sprint_core::config::{ConfigBuilder, SystemProfile};
use sprint_core::{spawn_local, Level};

mod common;

/// Tasks outstanding at once: their cells (160 bytes each) need about
/// 46 MiB, well past Aggressive's 16 MiB preallocation.
const DEPTH: usize = 300_000;

/// Minor page faults of the calling thread so far.
fn thread_minor_faults() -> u64 {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    assert_eq!(r, 0, "getrusage: {}", std::io::Error::last_os_error());
    u.ru_minflt as u64
}

/// Spawns `DEPTH` empty tasks holding every handle, then joins them;
/// returns the minor page faults the worker thread took meanwhile (the
/// handles' vector is allocated and touched before counting).
async fn round() -> u64 {
    let mut handles = Vec::with_capacity(DEPTH);
    handles.resize_with(DEPTH, || None);
    handles.clear();
    let before = thread_minor_faults();
    for _ in 0..DEPTH {
        handles.push(Some(spawn_local(async {})));
    }
    for h in handles.drain(..) {
        h.expect("a handle").await.expect("an empty task");
    }
    thread_minor_faults() - before
}

#[test]
fn the_arena_grows_in_large_steps_and_a_depth_reached_again_takes_no_page_fault() {
    // Aggressive prefaults its arena; it neither locks memory nor asks for
    // huge pages, so the test needs no privilege. No system profile: the
    // test changes nothing outside the process.
    let rt = ConfigBuilder::new()
        .level(Level::Aggressive)
        .read_env(false)
        .workers(1)
        .configure(|c| {
            common::no_rt(c);
            c.system_profile = SystemProfile::None;
        })
        .build()
        .expect("an Aggressive runtime");
    assert!(rt.config().prefault, "Aggressive prefaults");
    let start = rt.handle().memory_stats().remove(0);
    assert_eq!(start.arena.growths, 0, "{start:?}");

    let on_worker = |f| {
        rt.block_on(async {
            sprint_core::spawn_on(0, f)
                .expect("worker 0")
                .await
                .expect("the round")
        })
    };
    on_worker(round());
    let warm = rt.handle().memory_stats().remove(0);
    assert!(
        warm.arena.used > 2 * start.arena.committed,
        "the depth outgrew the preallocation: {warm:?}"
    );
    // The steps the rule takes from the start's commitment to what the
    // cells use (each growth is triggered by a cell just past the end).
    let mut committed = start.arena.committed;
    let mut steps = 0;
    while committed < warm.arena.used {
        committed = grow_target(committed, committed + 1, warm.arena.capacity);
        steps += 1;
    }
    assert_eq!(warm.arena.committed, committed, "{warm:?}");
    assert_eq!(warm.arena.growths, steps, "{warm:?}");
    assert!(steps <= 4, "{steps} steps to {} MiB", committed >> 20);

    let faults = on_worker(round());
    let again = rt.handle().memory_stats().remove(0);
    if sprint_alloc::arena::under_asan() {
        // Its allocator quarantines what is freed and maps fresh memory
        // (and shadow memory) for what is allocated, on any thread.
        println!("under AddressSanitizer: {faults} minor faults, not asserted");
    } else {
        assert_eq!(faults, 0, "minor page faults on the worker thread");
    }
    assert_eq!(again.slab.cells_carved, warm.slab.cells_carved, "{again:?}");
    assert_eq!(again.slab.fallback_allocations, 0, "{again:?}");
    assert_eq!(again.arena, warm.arena, "no growth the second time");
}
