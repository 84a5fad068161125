//! `block_in_place`: at a stealing level the worker's other tasks run
//! elsewhere while it blocks; at the thread-per-core levels it is refused
//! with the level named, without running the closure; off the workers it
//! just runs.

use sprint::config::Scheduling;
use sprint::task::{block_in_place, BlockInPlaceError};
use sprint::{Builder, Level};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn at_a_stealing_level_other_tasks_run_while_a_worker_blocks() {
    let rt = Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(2)
        .build()
        .unwrap();
    let other_ran = Arc::new(AtomicBool::new(false));
    let flag = other_ran.clone();
    let got = rt.block_on(async move {
        sprint::spawn_on(0, async move {
            // Spawned here, stealable: queued behind the blocking call on
            // this worker, it can only run if worker 1 takes it.
            let seen = flag.clone();
            let other = sprint::spawn(async move { seen.store(true, SeqCst) });
            let r = block_in_place(|| {
                let until = Instant::now() + Duration::from_secs(20);
                while !flag.load(SeqCst) && Instant::now() < until {
                    std::thread::yield_now();
                }
                flag.load(SeqCst)
            });
            other.await.unwrap();
            r
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(got, Ok(true));
    assert!(other_ran.load(SeqCst));
}

#[test]
fn at_thread_per_core_it_is_refused_naming_the_level() {
    let rt = Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(1)
        .configure(|c| c.scheduling = Scheduling::ThreadPerCore)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = {
        let ran = ran.clone();
        rt.block_on(async move {
            sprint::spawn(async move { block_in_place(|| ran.store(true, SeqCst)) })
                .await
                .unwrap()
        })
    };
    let e = r.unwrap_err();
    assert_eq!(
        e,
        BlockInPlaceError {
            worker: 0,
            level: Level::Basic,
            scheduling: Scheduling::ThreadPerCore
        }
    );
    let text = e.to_string();
    assert!(
        text.contains("thread-per-core") && text.contains("spawn_blocking"),
        "{text}"
    );
    assert!(!ran.load(SeqCst), "a refused closure never runs");
}

#[test]
fn off_the_workers_it_just_runs() {
    assert_eq!(block_in_place(|| 5), Ok(5));
}
