//! A cross-worker wake goes through the inbox and unparks the target only
//! when it sleeps.

mod common;
use sprint_core::Level;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn waking_an_awake_worker_makes_no_unpark() {
    let rt = common::rt(Level::Basic, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(false));
    let (s, r) = (stop.clone(), running.clone());
    // Keep worker 1 busy (awake) in one long poll.
    rt.handle()
        .spawn_on(1, async move {
            r.store(true, SeqCst);
            while !s.load(SeqCst) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    while !running.load(SeqCst) {
        std::thread::yield_now();
    }
    let before = rt.worker_stats()[1].unparks;
    let hs: Vec<_> = (0..1000)
        .map(|i| rt.handle().spawn_on(1, async move { i }).unwrap())
        .collect();
    let after = rt.worker_stats()[1].unparks;
    stop.store(true, SeqCst);
    let sum: u64 = rt.block_on(async move {
        let mut sum = 0;
        for h in hs {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..1000).sum::<u64>());
    assert_eq!(after, before, "1000 pushes to an awake worker, no unpark");
}

#[test]
fn waking_a_sleeping_worker_unparks_it() {
    let rt = common::rt(Level::Basic, 2);
    // Basic parks at once when idle; the count goes up just before the
    // worker sleeps (its parker is armed by then).
    common::wait_until(Duration::from_secs(10), "worker 1 parks", || {
        rt.worker_stats()[1].parks > 0
    });
    let before = rt.worker_stats()[1].unparks;
    let v = rt.block_on(async { rt.handle().spawn_on(1, async { 5 }).unwrap().await.unwrap() });
    assert_eq!(v, 5);
    assert!(
        rt.worker_stats()[1].unparks > before,
        "the parked worker was woken"
    );
}
