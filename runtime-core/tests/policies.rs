//! The level table's scheduling policies and idle strategies.

use common::Start;
use sprint_core::config::ConfigBuilder;
mod common;
use sprint_core::config::{IdleStrategy, Scheduling};
use sprint_core::{spawn, Config, Level};
use std::time::Duration;

#[test]
fn levels_map_to_the_design_table() {
    use IdleStrategy::*;
    use Scheduling::*;
    let want = [
        (Level::Basic, WorkStealing, Park),
        (Level::Standard, WorkStealing, SpinThenPark),
        (Level::Aggressive, StealWhenIdle, SpinThenPark),
        (Level::Enterprise, ThreadPerCore, SpinThenPark),
        (Level::Turbo, ThreadPerCore, BusyPoll),
    ];
    for (level, sched, idle) in want {
        let c = Config::for_level(level);
        assert_eq!((c.scheduling, c.idle), (sched, idle), "{level}");
    }
    let stacks: Vec<_> = Level::ALL
        .iter()
        .map(|l| Config::for_level(*l).stack_size)
        .collect();
    assert_eq!(stacks, vec![2 << 20, 2 << 20, 1 << 20, 1 << 20, 256 << 10]);
    let stall: Vec<_> = Level::ALL
        .iter()
        .map(|l| Config::for_level(*l).stall_threshold_us)
        .collect();
    assert_eq!(stall, vec![100_000, 10_000, 2_000, 1_000, 250]);
}

/// One worker spawns a burst of Send tasks that each block its thread
/// briefly; with stealing, the other worker takes some.
fn steals_for(level: Level) -> u64 {
    steals_on(&common::rt(level, 2))
}

/// The steals of one burst on `rt` (its workers' total grows by that much).
fn steals_on(rt: &sprint_core::Runtime) -> u64 {
    let before: u64 = rt.worker_stats().iter().map(|s| s.steals).sum();
    rt.block_on(async {
        sprint_core::spawn_on(0, async {
            let hs: Vec<_> = (0..200)
                // Each holds its worker's thread a moment (the behaviour
                // under test: work the other worker may take meanwhile).
                .map(|_| spawn(async { std::thread::sleep(Duration::from_micros(200)) }))
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        })
        .unwrap()
        .await
        .unwrap()
    });
    rt.worker_stats().iter().map(|s| s.steals).sum::<u64>() - before
}

#[test]
fn stealing_levels_steal_and_thread_per_core_never_does() {
    assert!(steals_for(Level::Basic) > 0, "work stealing");
    assert!(steals_for(Level::Aggressive) > 0, "steal when idle");
    assert_eq!(steals_for(Level::Enterprise), 0, "thread-per-core");
}

/// Stealing switches off and on while the runtime runs; a runtime that
/// started thread-per-core refuses to switch it on, naming the restart.
#[test]
fn stealing_changes_live() {
    use sprint_core::config::Scheduling;
    let rt = common::rt(Level::Basic, 2);
    assert_eq!(rt.handle().scheduling(), Scheduling::WorkStealing);
    assert!(steals_on(&rt) > 0, "work stealing steals");
    rt.handle()
        .set_scheduling(Scheduling::ThreadPerCore)
        .unwrap();
    assert_eq!(rt.handle().scheduling(), Scheduling::ThreadPerCore);
    assert_eq!(steals_on(&rt), 0, "no steals once switched off");
    rt.handle()
        .set_scheduling(Scheduling::StealWhenIdle)
        .unwrap();
    assert!(steals_on(&rt) > 0, "steals again once switched on");
    drop(rt);
    let rt = common::rt(Level::Enterprise, 2);
    let e = rt
        .handle()
        .set_scheduling(Scheduling::WorkStealing)
        .unwrap_err()
        .to_string();
    assert!(e.contains("work-stealing") && e.contains("restart"), "{e}");
    assert_eq!(rt.handle().scheduling(), Scheduling::ThreadPerCore);
    assert_eq!(steals_on(&rt), 0);
}

#[test]
fn busy_poll_never_parks_and_park_parks() {
    let mut cfg = Config::for_level(Level::Turbo);
    cfg.rt_policy = sprint_core::config::RtPolicy::None;
    cfg.workers = Some(1);
    let rt = ConfigBuilder::from_config(cfg).build().unwrap();
    // Not a wait for an event: idle time in which a busy-polling worker
    // would park if it wrongly did.
    std::thread::sleep(Duration::from_millis(30));
    rt.block_on(async { spawn(async {}).await.unwrap() });
    assert_eq!(rt.worker_stats()[0].parks, 0, "busy-poll never parks");
    drop(rt);
    let rt = common::rt(Level::Basic, 1);
    rt.block_on(async { spawn(async {}).await.unwrap() });
    common::wait_until(
        Duration::from_secs(10),
        "the park strategy parks when idle",
        || rt.worker_stats()[0].parks > 0,
    );
}

/// The idle strategy changes while the runtime runs: a parking worker
/// starts busy-polling (and stops parking), then parks again.
#[test]
fn the_idle_strategy_changes_live() {
    use sprint_core::config::IdleStrategy;
    let rt = common::rt(Level::Basic, 1);
    let parks = || rt.worker_stats()[0].parks;
    let wake = || rt.block_on(async { spawn(async {}).await.unwrap() });
    // Woken (it runs a task), the worker parks again once idle.
    let parks_after_a_wake = |what: &str| {
        let before = parks();
        wake();
        common::wait_until(Duration::from_secs(10), what, || parks() > before);
    };
    parks_after_a_wake("Basic parks when idle");
    rt.handle()
        .set_idle(IdleStrategy::BusyPoll, Duration::ZERO)
        .unwrap();
    assert_eq!(rt.handle().idle().0, IdleStrategy::BusyPoll);
    // The worker may finish one park it was in; after that it never parks.
    wake();
    let settled = parks();
    // Not a wait for an event: idle time in which a busy-polling worker
    // would park if it wrongly did.
    std::thread::sleep(Duration::from_millis(100));
    wake();
    assert!(
        parks() <= settled + 1,
        "a busy-polling worker does not park"
    );
    rt.handle()
        .set_idle(IdleStrategy::SpinThenPark, Duration::from_micros(50))
        .unwrap();
    assert_eq!(
        rt.handle().idle(),
        (IdleStrategy::SpinThenPark, Duration::from_micros(50))
    );
    parks_after_a_wake("spin-then-park parks again");
}

/// At the levels that steal, a task spawned from outside the runtime onto a
/// worker that is blocked in a task (here until released, up to 20 s) does
/// not wait for it: an idle worker takes it from the blocked worker's inbox.
#[test]
fn remote_spawns_do_not_wait_behind_a_blocked_worker() {
    use std::sync::atomic::{AtomicBool, Ordering::*};
    use std::sync::{mpsc, Arc};
    for level in [Level::Basic, Level::Standard] {
        let rt = common::rt(level, 2);
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s, r) = (started.clone(), release.clone());
        let blocker = rt
            .handle()
            .spawn_on(0, async move {
                s.store(true, Release);
                let until = std::time::Instant::now() + Duration::from_secs(20);
                // Blocks its worker's thread, as a mistaken synchronous call
                // in a task would (the behaviour under test), until released.
                while !r.load(Acquire) && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !started.load(Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the blocker never ran"
            );
            std::thread::yield_now();
        }
        let (tx, rx) = mpsc::channel();
        // Spawned from this thread, outside the runtime: round robin puts
        // half of them in worker 0's inbox.
        for i in 0..8 {
            let tx = tx.clone();
            drop(rt.spawn(async move { tx.send(i).unwrap() }));
        }
        let mut got = Vec::new();
        for _ in 0..8 {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(i) => got.push(i),
                Err(_) => break,
            }
        }
        let still_blocked = !release.swap(true, AcqRel);
        rt.block_on(blocker).unwrap();
        got.sort();
        assert_eq!(
            got,
            (0..8).collect::<Vec<_>>(),
            "{level}: tasks waited behind the blocked worker"
        );
        assert!(still_blocked);
    }
}

/// At the levels that steal, a woken task runs in turn: two `spawn`ed
/// tasks on one worker that keep yielding take turns. The worker's deque
/// was last-in first-out, so a task that woke itself ran again at once and
/// the other waited for it to finish (a hyper server under wrk at Standard
/// held requests for hundreds of milliseconds that way).
#[test]
fn woken_tasks_take_turns_at_the_stealing_levels() {
    use std::sync::atomic::{AtomicU64, Ordering::*};
    use std::sync::Arc;
    for level in [Level::Basic, Level::Standard, Level::Aggressive] {
        let rt = common::rt(level, 1);
        let turns = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
        // The most turns one task took while the other had taken none.
        let ahead = Arc::new(AtomicU64::new(0));
        let out = rt.block_on({
            let (turns, ahead) = (turns.clone(), ahead.clone());
            async move {
                sprint_core::spawn_on(0, async move {
                    let hs: Vec<_> = (0..2)
                        .map(|me| {
                            let (turns, ahead) = (turns.clone(), ahead.clone());
                            spawn(async move {
                                for _ in 0..10_000 {
                                    let mine = turns[me].fetch_add(1, Relaxed) + 1;
                                    if turns[1 - me].load(Relaxed) == 0 {
                                        ahead.fetch_max(mine, Relaxed);
                                    }
                                    sprint_core::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                })
                .unwrap()
                .await
            }
        });
        out.unwrap();
        let ahead = ahead.load(Relaxed);
        assert!(
            ahead <= 2,
            "{level}: one task ran {ahead} times before the other ran once"
        );
    }
}
