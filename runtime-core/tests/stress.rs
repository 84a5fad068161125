//! A million tasks across the workers, every output checked.

mod common;
use sprint_core::{spawn, spawn_local, spawn_on, Level};

#[test]
fn a_million_tasks_across_workers_all_deliver_their_outputs() {
    const N: u64 = 1_000_000;
    for level in [Level::Basic, Level::Enterprise] {
        let rt = common::rt(level, 2);
        let workers = rt.handle().workers() as u64;
        let total = rt.block_on(async move {
            let mut per_worker = Vec::new();
            for w in 0..workers {
                per_worker.push(
                    spawn_on(w as usize, async move {
                        let mut sum = 0u64;
                        let mut batch = Vec::with_capacity(1000);
                        let mut i = w;
                        while i < N {
                            let v = i;
                            if v % 2 == 0 {
                                batch.push(spawn(async move { v * 3 }));
                            } else {
                                batch.push(spawn_local(async move { v * 3 }));
                            }
                            if batch.len() == 1000 {
                                for h in batch.drain(..) {
                                    sum += h.await.unwrap();
                                }
                            }
                            i += workers;
                        }
                        for h in batch.drain(..) {
                            sum += h.await.unwrap();
                        }
                        sum
                    })
                    .unwrap(),
                );
            }
            let mut total = 0;
            for h in per_worker {
                total += h.await.unwrap();
            }
            total
        });
        assert_eq!(total, 3 * (N * (N - 1) / 2), "{level}");
        // Workers publish their counters when they go idle.
        common::wait_until(
            std::time::Duration::from_secs(10),
            &format!("{level}: the workers count {N} spawns"),
            || rt.worker_stats().iter().map(|s| s.spawned).sum::<u64>() >= N,
        );
    }
}

#[test]
fn many_cross_worker_wakes_all_arrive() {
    let rt = common::rt(Level::Aggressive, 2);
    let n = rt.block_on(async {
        let (tx, mut rx) = sprint_core::sync::mpsc::channel::<u32>(8);
        spawn_on(1, async move {
            for i in 0..50_000 {
                tx.send(i).await.unwrap();
            }
        })
        .unwrap();
        spawn_on(0, async move {
            let mut next = 0;
            while let Some(i) = rx.recv().await {
                assert_eq!(i, next);
                next += 1;
            }
            next
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(n, 50_000);
}
