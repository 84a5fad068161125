//! The blocking pool: bounded by max_threads, always at least one thread.

use common::Start;
use sprint_core::config::ConfigBuilder;
mod common;
use sprint_core::{spawn_blocking, Config, Level};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn blocking_jobs_run_on_the_pool_threads() {
    let rt = common::rt(Level::Basic, 1);
    let name = rt.block_on(async { spawn_blocking(common::thread_name).await.unwrap() });
    assert!(name.starts_with("sprint-blocking-"), "{name}");
    let from_worker = rt.block_on(async {
        sprint_core::spawn(async { spawn_blocking(|| 2 + 2).await.unwrap() })
            .await
            .unwrap()
    });
    assert_eq!(from_worker, 4);
}

#[test]
fn max_threads_bounds_the_pool() {
    // 1 worker + 2 blocking threads.
    let rt = common::rt_with(Level::Basic, |c| {
        c.workers = Some(1);
        c.max_threads = Some(3);
    });
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            rt.handle().spawn_blocking(move || {
                let now = running.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                // Holds its thread, so that jobs would overlap beyond the
                // bound if the pool let them (the behaviour under test).
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, SeqCst);
            })
        })
        .collect();
    rt.block_on(async {
        for h in hs {
            h.await.unwrap();
        }
    });
    let peak = peak.load(SeqCst);
    assert!(
        (1..=2).contains(&peak),
        "at most two blocking threads ran at once: {peak}"
    );
    assert!(rt.handle().blocking_threads() <= 2);
}

#[test]
fn the_pool_always_has_a_thread_even_at_the_minimum() {
    let mut cfg = Config::for_level(Level::Turbo);
    cfg.rt_policy = sprint_core::config::RtPolicy::None;
    cfg.workers = Some(1);
    cfg.max_threads = Some(2);
    cfg.idle = sprint_core::config::IdleStrategy::Park;
    let rt = ConfigBuilder::from_config(cfg).build().unwrap();
    assert_eq!(rt.handle().blocking_threads(), 1);
    assert_eq!(
        rt.block_on(async { spawn_blocking(|| 9).await.unwrap() }),
        9
    );
}

#[test]
fn max_threads_below_workers_plus_one_is_a_validation_error_naming_the_minimum() {
    let mut cfg = Config::for_level(Level::Basic);
    cfg.workers = Some(2);
    cfg.max_threads = Some(2);
    let err = cfg
        .validate_on(&sprint_core::config::Machine::with_cpus(&[0, 1]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid value for `max_threads`: 2: the minimum is 3: 2 workers plus at least 1 blocking thread"
    );
}

#[test]
fn a_panicking_blocking_job_is_a_join_error_and_the_pool_goes_on() {
    let rt = common::rt(Level::Basic, 1);
    let err = rt
        .block_on(async { spawn_blocking(|| panic!("blocking boom")).await })
        .map(|_: ()| ())
        .unwrap_err();
    assert!(err.is_panic() && err.to_string().contains("blocking boom"));
    assert_eq!(
        rt.block_on(async { spawn_blocking(|| 1).await.unwrap() }),
        1
    );
}
