//! spawn+join and same-worker ping-pong on Sprint (inside a worker; the
//! batch group at Standard, ping-pong at Basic, Standard and Turbo),
//! tokio (current_thread on its LocalRuntime, and multi_thread), monoio
//! and glommio, side by side in one criterion group each; and spawn+join
//! at depth ([`DEPTH`] tasks outstanding) on Sprint at every level beside
//! tokio current_thread, monoio and glommio, in ns per task, with the
//! minor page faults of the spawning thread printed after each.
//!
//! Every runtime runs its tasks on CPU 0, as glommio's executor is placed:
//! Sprint's worker through `cpus = [0]` (which pins at every level), and
//! the thread that runs tokio's and monoio's `block_on` pinned there by
//! [`on_cpu0`] (Sprint's starting thread moves off a pinned worker's CPU
//! while the runtime lives, and back).
//!
//! `cargo bench -p sprint-bench --bench executor`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::SamplingMode;
use criterion::{criterion_group, criterion_main, Criterion};
use sprint::config::{RtPolicy, SystemProfile};
use sprint::{Builder, Level};
use sprint_bench::{ping_pong_local, ping_pong_send, spawn_join, spawn_join_deep, Deep, DEPTH};
use std::time::Duration;

fn sprint_rt() -> sprint::Runtime {
    on_cpu0();
    Builder::new()
        .cpus(vec![0])
        .level(Level::Standard)
        .read_env(false)
        .build()
        .expect("a Standard runtime")
}

fn on_worker<F>(rt: &sprint::Runtime, f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    rt.block_on(async move {
        sprint::spawn_on(0, f)
            .expect("worker 0")
            .await
            .expect("bench task")
    })
}

/// Pins the calling thread (the one that runs tokio's and monoio's
/// `block_on`) to CPU 0, where Sprint's worker and glommio's executor run.
fn on_cpu0() {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: 0 }) {
        panic!("cannot pin the benchmark thread to CPU 0");
    }
}

fn tokio_local() -> tokio::runtime::LocalRuntime {
    on_cpu0();
    tokio::runtime::Builder::new_current_thread()
        .build_local(Default::default())
        .expect("a tokio LocalRuntime")
}

fn tokio_multi() -> tokio::runtime::Runtime {
    on_cpu0();
    tokio::runtime::Builder::new_multi_thread()
        .build()
        .expect("a tokio runtime")
}

type MonoioRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

fn monoio_rt() -> MonoioRuntime {
    on_cpu0();
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("a monoio runtime")
}

fn glommio_rt() -> glommio::LocalExecutor {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .make()
        .expect("a glommio executor (needs RLIMIT_MEMLOCK >= 512 KiB)")
}

fn spawn_join_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    let rt = sprint_rt();
    g.bench_function("sprint", |b| {
        b.iter_custom(|iters| {
            on_worker(&rt, async move {
                spawn_join(iters, || sprint::spawn_local(async {})).await
            })
        })
    });
    drop(rt);
    let rt = tokio_local();
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| rt.block_on(spawn_join(iters, || tokio::task::spawn_local(async {}))))
    });
    drop(rt);
    let rt = tokio_multi();
    g.bench_function("tokio_multi_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(spawn_join(iters, || tokio::spawn(async {})))
                    .await
                    .expect("bench task")
            })
        })
    });
    drop(rt);
    let mut rt = monoio_rt();
    g.bench_function("monoio", |b| {
        b.iter_custom(|iters| rt.block_on(spawn_join(iters, || monoio::spawn(async {}))))
    });
    drop(rt);
    let ex = glommio_rt();
    g.bench_function("glommio", |b| {
        b.iter_custom(|iters| ex.run(spawn_join(iters, || glommio::spawn_local(async {}))))
    });
    g.finish();
}

/// One worker at `level`, as the level sets it up except what would
/// change the machine for everyone: no real-time class (a SCHED_FIFO
/// busy-poller starves the machine), no lowered nice value and no system
/// profile. None of these is on the spawn path.
fn sprint_at(level: Level) -> sprint::Runtime {
    sprint_configured(level, |_| {})
}

/// [`sprint_at`], with a change to the level's configuration.
fn sprint_configured(
    level: Level,
    change: impl FnOnce(&mut sprint::Config) + 'static,
) -> sprint::Runtime {
    on_cpu0();
    Builder::new()
        .cpus(vec![0])
        .level(level)
        .read_env(false)
        .workers(1)
        .configure(|c| {
            c.rt_policy = RtPolicy::None;
            c.nice = 0;
            c.system_profile = SystemProfile::None;
            change(c);
        })
        .build()
        .unwrap_or_else(|e| panic!("a {level} runtime: {e}"))
}

/// Runs `iters` deep rounds with `round`, keeps each round's minor page
/// faults, and returns the time per task.
fn deep_rounds(iters: u64, faults: &mut Vec<u64>, mut round: impl FnMut() -> Deep) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let d = round();
        total += d.elapsed;
        faults.extend(d.minor_faults);
    }
    total / DEPTH as u32
}

/// Prints the minor page faults of the spawning thread per deep round:
/// the first round (cold) and the most of any later one (warm).
fn print_faults(name: &str, faults: &[u64]) {
    if faults.is_empty() {
        return; // Filtered out of this run.
    }
    let first = faults.first().copied().unwrap_or(0);
    let later = faults.iter().skip(1).max().copied().unwrap_or(0);
    println!(
        "faults: spawn_join_deep/{name} first {first} later_max {later} rounds {}",
        faults.len()
    );
}

fn spawn_join_deep_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join_deep");
    g.sampling_mode(SamplingMode::Flat);
    let levels = [
        ("sprint_basic", Level::Basic),
        ("sprint_standard", Level::Standard),
        ("sprint_aggressive", Level::Aggressive),
        ("sprint_enterprise", Level::Enterprise),
        ("sprint_turbo", Level::Turbo),
    ];
    for (name, level) in levels {
        let rt = sprint_at(level);
        let mut faults = Vec::new();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                deep_rounds(iters, &mut faults, || {
                    on_worker(
                        &rt,
                        spawn_join_deep(DEPTH, || sprint::spawn_local(async {})),
                    )
                })
            })
        });
        drop(rt);
        print_faults(name, &faults);
    }
    let rt = tokio_local();
    let mut faults = Vec::new();
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            deep_rounds(iters, &mut faults, || {
                rt.block_on(spawn_join_deep(
                    DEPTH,
                    || tokio::task::spawn_local(async {}),
                ))
            })
        })
    });
    drop(rt);
    print_faults("tokio_current_thread", &faults);
    let mut rt = monoio_rt();
    let mut faults = Vec::new();
    g.bench_function("monoio", |b| {
        b.iter_custom(|iters| {
            deep_rounds(iters, &mut faults, || {
                rt.block_on(spawn_join_deep(DEPTH, || monoio::spawn(async {})))
            })
        })
    });
    drop(rt);
    print_faults("monoio", &faults);
    let ex = glommio_rt();
    let mut faults = Vec::new();
    g.bench_function("glommio", |b| {
        b.iter_custom(|iters| {
            deep_rounds(iters, &mut faults, || {
                ex.run(spawn_join_deep(DEPTH, || glommio::spawn_local(async {})))
            })
        })
    });
    drop(ex);
    print_faults("glommio", &faults);
    g.finish();
}

fn ping_pong_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("ping_pong");
    // Standard keeps the name "sprint" the earlier figures used.
    for (name, level) in [
        ("sprint_basic", Level::Basic),
        ("sprint", Level::Standard),
        ("sprint_turbo_nort", Level::Turbo),
    ] {
        let rt = sprint_at(level);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                on_worker(&rt, async move {
                    let local = sprint::spawn_local(async move {
                        ping_pong_local(iters, sprint::spawn_local).await
                    });
                    local.await.expect("ping-pong task")
                })
            })
        });
        drop(rt);
    }
    let rt = tokio_local();
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| rt.block_on(ping_pong_local(iters, tokio::task::spawn_local)))
    });
    drop(rt);
    let rt = tokio_multi();
    g.bench_function("tokio_multi_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                tokio::spawn(ping_pong_send(iters, tokio::spawn))
                    .await
                    .expect("bench task")
            })
        })
    });
    drop(rt);
    let mut rt = monoio_rt();
    g.bench_function("monoio", |b| {
        b.iter_custom(|iters| rt.block_on(ping_pong_local(iters, monoio::spawn)))
    });
    drop(rt);
    let ex = glommio_rt();
    g.bench_function("glommio", |b| {
        b.iter_custom(|iters| ex.run(ping_pong_local(iters, glommio::spawn_local)))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// A deep round takes 0.1–0.6 s: ten rounds a runtime after one warm-up
/// round keep the group near two minutes.
fn deep_config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = executor;
    config = config();
    targets = spawn_join_group, ping_pong_group
}
criterion_group! {
    name = deep;
    config = deep_config();
    targets = spawn_join_deep_group
}
criterion_main!(executor, deep);
