//! Sprint's mesh beside crossbeam-channel and tokio's mpsc, between two
//! threads pinned on CPUs 0 and 1 (Sprint's two workers through
//! `cpus = [0, 1]`; the others' threads by `core_affinity`), every queue
//! bounded at [`CAP`]:
//!
//! - `mesh_stream`: one side sends as fast as the queue lets it, the
//!   other receives; time per message (ns per cross-core message).
//! - `mesh_batch`: [`BATCH`] messages there, one acknowledgement back,
//!   repeated; time per batch (a round trip with a wake each way). On the
//!   mesh the batch is published once, at the end of the sending turn.
//!
//! Sprint runs at Standard (spin, then park); crossbeam's threads block in
//! `send`/`recv`; tokio runs a current-thread runtime on each thread.
//!
//! `cargo bench -p sprint-bench --bench mesh`

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use sprint::mesh::Mesh;
use sprint::{Builder, Level};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Slots per queue.
const CAP: usize = 256;
/// Messages per batch in `mesh_batch`.
const BATCH: u64 = 32;

fn two_cpus() -> bool {
    std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
}

fn sprint_rt() -> sprint::Runtime {
    Builder::new()
        .cpus(vec![0, 1])
        .level(Level::Standard)
        .read_env(false)
        .workers(2)
        .build()
        .expect("a Standard runtime on CPUs 0 and 1")
}

fn pin(cpu: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        panic!("cannot pin a benchmark thread to CPU {cpu}");
    }
}

/// Runs `a` on a thread pinned to CPU 0 and `b` on one pinned to CPU 1,
/// started together; returns the time from the start to the later end.
fn on_two_threads(a: impl FnOnce() + Send, b: impl FnOnce() + Send) -> Duration {
    let start = Barrier::new(3);
    std::thread::scope(|s| {
        let ta = s.spawn(|| {
            pin(0);
            start.wait();
            a();
            Instant::now()
        });
        let tb = s.spawn(|| {
            pin(1);
            start.wait();
            b();
            Instant::now()
        });
        start.wait();
        let t0 = Instant::now();
        let end = ta.join().unwrap().max(tb.join().unwrap());
        end - t0
    })
}

fn tokio_on_this_thread(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio current-thread runtime")
        .block_on(f)
}

/// The mesh: worker 0 sends `iters` messages to worker 1.
fn sprint_stream(rt: &sprint::Runtime, iters: u64) -> Duration {
    let mesh = Mesh::<u64>::with_capacity(rt.handle(), CAP).expect("a capacity in range");
    let m = mesh.clone();
    let consumer = rt
        .handle()
        .spawn_local_on(1, move || async move {
            let rx = m.receiver().expect("worker 1's receiver");
            let mut sum = 0u64;
            for _ in 0..iters {
                sum = sum.wrapping_add(rx.recv().await.expect("a message"));
            }
            std::hint::black_box(sum);
            Instant::now()
        })
        .expect("worker 1");
    let producer = rt
        .handle()
        .spawn_local_on(0, move || async move {
            let tx = mesh.sender().expect("worker 0's sender");
            let start = Instant::now();
            for i in 0..iters {
                tx.send_to(1, i).await.expect("worker 1 receives");
            }
            start
        })
        .expect("worker 0");
    let start = rt.block_on(producer).expect("producer");
    rt.block_on(consumer).expect("consumer") - start
}

/// The mesh: batches from worker 0, an acknowledgement from worker 1.
fn sprint_batch(rt: &sprint::Runtime, iters: u64) -> Duration {
    let mesh = Mesh::<u64>::with_capacity(rt.handle(), CAP).expect("a capacity in range");
    let m = mesh.clone();
    let echo = rt
        .handle()
        .spawn_local_on(1, move || async move {
            let (tx, rx) = m.join().expect("worker 1's ports");
            for _ in 0..iters {
                for _ in 0..BATCH {
                    rx.recv().await.expect("a message");
                }
                tx.send_to(0, 0).await.expect("worker 0 receives");
            }
        })
        .expect("worker 1");
    let batches = rt
        .handle()
        .spawn_local_on(0, move || async move {
            let (tx, rx) = mesh.join().expect("worker 0's ports");
            let start = Instant::now();
            for _ in 0..iters {
                for k in 0..BATCH {
                    tx.send_to(1, k).await.expect("worker 1 receives");
                }
                rx.recv().await.expect("the acknowledgement");
            }
            start.elapsed()
        })
        .expect("worker 0");
    let took = rt.block_on(batches).expect("batches");
    rt.block_on(echo).expect("echo");
    took
}

fn crossbeam_stream(iters: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
    on_two_threads(
        move || {
            for i in 0..iters {
                tx.send(i).expect("the receiver lives");
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..iters {
                sum = sum.wrapping_add(rx.recv().expect("a message"));
            }
            std::hint::black_box(sum);
        },
    )
}

fn crossbeam_batch(iters: u64) -> Duration {
    let (to_b, at_b) = crossbeam_channel::bounded::<u64>(CAP);
    let (to_a, at_a) = crossbeam_channel::bounded::<u64>(CAP);
    on_two_threads(
        move || {
            for _ in 0..iters {
                for k in 0..BATCH {
                    to_b.send(k).expect("the receiver lives");
                }
                at_a.recv().expect("the acknowledgement");
            }
        },
        move || {
            for _ in 0..iters {
                for _ in 0..BATCH {
                    at_b.recv().expect("a message");
                }
                to_a.send(0).expect("the sender lives");
            }
        },
    )
}

fn tokio_stream(iters: u64) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAP);
    on_two_threads(
        move || {
            tokio_on_this_thread(async move {
                for i in 0..iters {
                    tx.send(i).await.expect("the receiver lives");
                }
            })
        },
        move || {
            tokio_on_this_thread(async move {
                let mut sum = 0u64;
                for _ in 0..iters {
                    sum = sum.wrapping_add(rx.recv().await.expect("a message"));
                }
                std::hint::black_box(sum);
            })
        },
    )
}

fn tokio_batch(iters: u64) -> Duration {
    let (to_b, mut at_b) = tokio::sync::mpsc::channel::<u64>(CAP);
    let (to_a, mut at_a) = tokio::sync::mpsc::channel::<u64>(CAP);
    on_two_threads(
        move || {
            tokio_on_this_thread(async move {
                for _ in 0..iters {
                    for k in 0..BATCH {
                        to_b.send(k).await.expect("the receiver lives");
                    }
                    at_a.recv().await.expect("the acknowledgement");
                }
            })
        },
        move || {
            tokio_on_this_thread(async move {
                for _ in 0..iters {
                    for _ in 0..BATCH {
                        at_b.recv().await.expect("a message");
                    }
                    to_a.send(0).await.expect("the sender lives");
                }
            })
        },
    )
}

fn configure(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn mesh_stream(c: &mut Criterion) {
    if !two_cpus() {
        eprintln!("mesh_stream: skipped, fewer than 2 CPUs");
        return;
    }
    let mut g = c.benchmark_group("mesh_stream");
    configure(&mut g);
    let rt = sprint_rt();
    g.bench_function("sprint_mesh", |b| b.iter_custom(|n| sprint_stream(&rt, n)));
    drop(rt);
    g.bench_function("crossbeam_channel", |b| b.iter_custom(crossbeam_stream));
    g.bench_function("tokio_mpsc", |b| b.iter_custom(tokio_stream));
    g.finish();
}

fn mesh_batch(c: &mut Criterion) {
    if !two_cpus() {
        eprintln!("mesh_batch: skipped, fewer than 2 CPUs");
        return;
    }
    let mut g = c.benchmark_group(format!("mesh_batch_{BATCH}"));
    configure(&mut g);
    let rt = sprint_rt();
    g.bench_function("sprint_mesh", |b| b.iter_custom(|n| sprint_batch(&rt, n)));
    drop(rt);
    g.bench_function("crossbeam_channel", |b| b.iter_custom(crossbeam_batch));
    g.bench_function("tokio_mpsc", |b| b.iter_custom(tokio_batch));
    g.finish();
}

criterion_group!(benches, mesh_stream, mesh_batch);
criterion_main!(benches);
