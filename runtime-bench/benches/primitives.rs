//! Cross-worker wakes, timers and channels on Sprint beside tokio (and
//! glommio and monoio where they have the primitive), one criterion group
//! each.
//!
//! `cargo bench -p sprint-bench --bench primitives`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{criterion_group, criterion_main, Criterion};
use sprint::{Builder, Level};
use std::time::{Duration, Instant};

fn sprint_rt(workers: usize) -> sprint::Runtime {
    Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(workers)
        .build()
        .expect("a Standard runtime")
}

/// Round trips between a task on worker 0 and one on worker 1, through
/// two channels of capacity 1: each leg is a wake of the other worker.
fn cross_worker_wake(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_worker_wake");
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        let rt = sprint_rt(2);
        g.bench_function("sprint", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async move {
                    let (to_b, mut at_b) = sprint::sync::mpsc::channel::<u64>(1);
                    let (to_a, mut at_a) = sprint::sync::mpsc::channel::<u64>(1);
                    let echo = sprint::spawn_on(1, async move {
                        while let Some(v) = at_b.recv().await {
                            if to_a.send(v).await.is_err() {
                                break;
                            }
                        }
                    })
                    .expect("worker 1");
                    let t = sprint::spawn_on(0, async move {
                        let start = Instant::now();
                        for i in 0..iters {
                            to_b.send(i).await.expect("echo alive");
                            at_a.recv().await.expect("echo reply");
                        }
                        start.elapsed()
                    })
                    .expect("worker 0");
                    let took = t.await.expect("bench task");
                    echo.await.expect("echo task");
                    took
                })
            })
        });
        drop(rt);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a tokio runtime");
        g.bench_function("tokio_multi_thread", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async move {
                    let (to_b, mut at_b) = tokio::sync::mpsc::channel::<u64>(1);
                    let (to_a, mut at_a) = tokio::sync::mpsc::channel::<u64>(1);
                    let echo = tokio::spawn(async move {
                        while let Some(v) = at_b.recv().await {
                            if to_a.send(v).await.is_err() {
                                break;
                            }
                        }
                    });
                    let t = tokio::spawn(async move {
                        let start = Instant::now();
                        for i in 0..iters {
                            to_b.send(i).await.expect("echo alive");
                            at_a.recv().await.expect("echo reply");
                        }
                        start.elapsed()
                    });
                    let took = t.await.expect("bench task");
                    echo.await.expect("echo task");
                    took
                })
            })
        });
    }
    g.finish();
}

/// A 1 µs sleep, `iters` times in a row: register, park, fire, wake.
fn timer(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer");
    let d = Duration::from_micros(1);
    let rt = sprint_rt(1);
    g.bench_function("sprint", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                sprint::spawn_on(0, async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        sprint::time::sleep(d).await;
                    }
                    start.elapsed()
                })
                .expect("worker 0")
                .await
                .expect("bench task")
            })
        })
    });
    drop(rt);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::time::sleep(d).await;
                }
                start.elapsed()
            })
        })
    });
    drop(rt);
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .expect("a monoio runtime");
    g.bench_function("monoio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    monoio::time::sleep(d).await;
                }
                start.elapsed()
            })
        })
    });
    drop(rt);
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .make()
        .expect("a glommio executor");
    g.bench_function("glommio", |b| {
        b.iter_custom(|iters| {
            ex.run(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    glommio::timer::sleep(d).await;
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// A producer task sends `iters` values through a bounded channel (64) to
/// a consumer on the same thread.
fn channel(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel");
    let rt = sprint_rt(1);
    g.bench_function("sprint", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                sprint::spawn_on(0, async move {
                    let (tx, mut rx) = sprint::sync::mpsc::channel::<u64>(64);
                    let start = Instant::now();
                    let producer = sprint::spawn_local(async move {
                        for i in 0..iters {
                            tx.send(i).await.expect("consumer alive");
                        }
                    });
                    let mut n = 0;
                    while rx.recv().await.is_some() {
                        n += 1;
                    }
                    producer.await.expect("producer");
                    assert_eq!(n, iters);
                    start.elapsed()
                })
                .expect("worker 0")
                .await
                .expect("bench task")
            })
        })
    });
    drop(rt);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build_local(Default::default())
        .expect("a tokio LocalRuntime");
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(64);
                let start = Instant::now();
                let producer = tokio::task::spawn_local(async move {
                    for i in 0..iters {
                        tx.send(i).await.expect("consumer alive");
                    }
                });
                let mut n = 0;
                while rx.recv().await.is_some() {
                    n += 1;
                }
                producer.await.expect("producer");
                assert_eq!(n, iters);
                start.elapsed()
            })
        })
    });
    drop(rt);
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .make()
        .expect("a glommio executor");
    g.bench_function("glommio", |b| {
        b.iter_custom(|iters| {
            ex.run(async move {
                let (tx, rx) = glommio::channels::local_channel::new_bounded::<u64>(64);
                let start = Instant::now();
                let producer = glommio::spawn_local(async move {
                    for i in 0..iters {
                        tx.send(i).await.expect("consumer alive");
                    }
                });
                let mut n = 0;
                while rx.recv().await.is_some() {
                    n += 1;
                }
                producer.await;
                assert_eq!(n, iters);
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = primitives;
    config = config();
    targets = cross_worker_wake, timer, channel
}
criterion_main!(primitives);
