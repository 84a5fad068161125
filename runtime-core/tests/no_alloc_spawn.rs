//! With an arena (Standard and up), spawning and joining a task calls the
//! global allocator zero times: cells come from the worker's slab. Counted
//! by a `#[global_allocator]` that forwards to the system allocator (its
//! own binary: the allocator is process-wide). The arena is never the
//! global allocator.

mod common;
use common::Start;
use sprint_core::config::ConfigBuilder;
use sprint_core::{spawn_local, Level};

use sprint_alloc::counting::{self, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn spawn_and_join(tasks: usize, level: Level, arenas: bool) -> (u64, sprint_core::MemoryStats) {
    let rt = ConfigBuilder::new()
        .level(level)
        .read_env(false)
        .workers(1)
        // A poll past the stall threshold is logged, and the log line is
        // formatted (one allocation): on a loaded machine, under ASan, a
        // poll of this loop was once preempted past Standard's 10 ms.
        // That is the cold path the threshold is for, not a spawn's cost.
        .configure(move |c| {
            c.stall_threshold_us = 10_000_000;
            c.arenas = arenas;
        })
        .build()
        .unwrap();
    let allocs = rt.block_on(async move {
        sprint_core::spawn_on(0, async move {
            let mut handles = Vec::with_capacity(256);
            let mut payload = [0u8; 200];
            let before = counting::allocations();
            let mut sum = 0u64;
            for i in 0..tasks {
                payload[0] = i as u8;
                // Two size classes: a small future and a 200-byte one.
                if i % 2 == 0 {
                    handles.push(spawn_local(async move { i as u64 }));
                } else {
                    handles.push(spawn_local(async move { payload[0] as u64 }));
                }
                if handles.len() == 256 {
                    for h in handles.drain(..) {
                        sum += h.await.unwrap();
                    }
                }
            }
            for h in handles.drain(..) {
                sum += h.await.unwrap();
            }
            assert!(sum > 0);
            counting::allocations() - before
        })
        .unwrap()
        .await
        .unwrap()
    });
    let stats = rt.handle().memory_stats()[0].clone();
    (allocs, stats)
}

// No libtest harness in this binary (`harness = false`): the counter is
// process-wide, and libtest's main thread allocates beside a running test
// (its records of running tests, its warning about one past 60 s).
fn main() {
    spawn_allocates_nothing_globally_with_an_arena();
    println!("test spawn_allocates_nothing_globally_with_an_arena ... ok");
    every_spawn_function_allocates_nothing_in_bursts_at_every_level_with_an_arena();
    println!(
        "test every_spawn_function_allocates_nothing_in_bursts_at_every_level_with_an_arena ... ok"
    );
}

/// Bursts of `burst` tasks spawned with `how` from worker 0 of a
/// two-worker runtime at `level` (so, at the levels that steal, the other
/// worker steals some), each burst joined before the next; the global
/// allocations over `bursts` bursts after `warm` bursts of warm-up.
fn bursts(level: Level, how: How, burst: usize, warm: usize, bursts: usize) -> u64 {
    let rt = ConfigBuilder::new()
        .level(level)
        .read_env(false)
        .workers(2)
        .configure(|c| {
            c.stall_threshold_us = 10_000_000;
            c.rt_policy = sprint_core::config::RtPolicy::None;
        })
        .build()
        .unwrap();
    rt.block_on(async move {
        sprint_core::spawn_on(0, async move {
            let mut handles = Vec::with_capacity(burst);
            let mut before = 0;
            for b in 0..warm + bursts {
                if b == warm {
                    before = counting::allocations();
                }
                for i in 0..burst {
                    handles.push(match how {
                        How::Spawn => sprint_core::spawn(async move { i as u64 }),
                        How::SpawnLocal => spawn_local(async move { i as u64 }),
                        How::SpawnOn => {
                            sprint_core::spawn_on(i % 2, async move { i as u64 }).unwrap()
                        }
                    });
                }
                let mut sum = 0;
                for h in handles.drain(..) {
                    sum += h.await.unwrap();
                }
                assert_eq!(sum, (burst * (burst - 1) / 2) as u64);
            }
            counting::allocations() - before
        })
        .unwrap()
        .await
        .unwrap()
    })
}

#[derive(Debug, Clone, Copy)]
enum How {
    Spawn,
    SpawnLocal,
    SpawnOn,
}

/// "Zero allocations per spawn" for every spawn function at every level
/// with an arena, the stealing ones included, under bursts that overflow
/// a work-stealing deque's first buffer: 100,000 spawns after warm-up.
fn every_spawn_function_allocates_nothing_in_bursts_at_every_level_with_an_arena() {
    let mut found = Vec::new();
    for level in [
        Level::Basic,
        Level::Standard,
        Level::Aggressive,
        Level::Enterprise,
    ] {
        for how in [How::Spawn, How::SpawnLocal, How::SpawnOn] {
            let allocs = bursts(level, how, 1_000, 10, 100);
            if allocs != 0 {
                found.push(format!("{level} {how:?}: {allocs}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "global allocations over 100 bursts of 1,000 spawns: {found:?}"
    );
}

fn spawn_allocates_nothing_globally_with_an_arena() {
    // From the very first spawn: cold cells are carved from the arena.
    let (allocs, stats) = spawn_and_join(20_000, Level::Standard, true);
    assert_eq!(
        allocs, 0,
        "global allocations over 20,000 spawns: {stats:?}"
    );
    assert!(stats.slab.cells_carved > 0, "{stats:?}");
    assert_eq!(stats.slab.fallback_allocations, 0, "{stats:?}");
    // Without an arena the counter does see the spawns: the test can fail.
    let (allocs, _) = spawn_and_join(2_000, Level::Basic, false);
    assert!(allocs > 0, "without an arena, cells are global");
}
