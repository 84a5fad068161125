//! spawn+join and same-worker ping-pong on Sprint (Standard, inside a
//! worker; ping-pong at Basic and Turbo without the real-time class too), tokio (current_thread on its LocalRuntime, and multi_thread),
//! monoio and glommio, side by side in one criterion group each.
//!
//! `cargo bench -p sprint-bench --bench executor`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{criterion_group, criterion_main, Criterion};
use sprint::config::RtPolicy;
use sprint::{Builder, Level};
use sprint_bench::{ping_pong_local, ping_pong_send, spawn_join};
use std::time::Duration;

fn sprint_rt() -> sprint::Runtime {
    Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .build()
        .expect("a Standard runtime")
}

fn on_worker<F>(rt: &sprint::Runtime, f: F) -> Duration
where
    F: std::future::Future<Output = Duration> + Send + 'static,
{
    rt.block_on(async move {
        sprint::spawn_on(0, f)
            .expect("worker 0")
            .await
            .expect("bench task")
    })
}

fn tokio_local() -> tokio::runtime::LocalRuntime {
    tokio::runtime::Builder::new_current_thread()
        .build_local(Default::default())
        .expect("a tokio LocalRuntime")
}

fn tokio_multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .build()
        .expect("a tokio runtime")
}

type MonoioRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

fn monoio_rt() -> MonoioRuntime {
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

/// A runtime at `level`. `busy` (Turbo) gets one worker and no real-time
/// class: a busy-polling worker on every core of a small, shared machine
/// starves it, and a real-time one is throttled there.
fn sprint_at(level: Level, busy: bool) -> sprint::Runtime {
    let b = Builder::new().level(level).read_env(false);
    let b = if busy {
        b.workers(1).configure(|c| c.rt_policy = RtPolicy::None)
    } else {
        b
    };
    b.build().expect("a Sprint runtime")
}

fn ping_pong_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("ping_pong");
    // Standard keeps the name "sprint" the earlier figures used.
    for (name, level, busy) in [
        ("sprint_basic", Level::Basic, false),
        ("sprint", Level::Standard, false),
        ("sprint_turbo_nort", Level::Turbo, true),
    ] {
        let rt = sprint_at(level, busy);
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

criterion_group! {
    name = executor;
    config = config();
    targets = spawn_join_group, ping_pong_group
}
criterion_main!(executor);
