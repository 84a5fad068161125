//! Sharded state on 2 and 4 workers: each call runs on the chosen
//! worker's own instance, on that worker's thread, from tasks and from
//! outside the runtime; a panic reaches the caller; dropping the last
//! handle drops each instance on its worker.

mod common;
use sprint_core::config::IdleStrategy;
use sprint_core::mesh::{MeshError, Sharded};
use sprint_core::{Level, Runtime};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const GIVE_UP: Duration = Duration::from_secs(60);

fn runtime(workers: usize) -> Runtime {
    common::rt_with(Level::Basic, move |c| {
        c.workers = Some(workers);
        c.idle = IdleStrategy::Park;
    })
}

/// A `!Send` instance: who built it, and the callers it served.
struct Shard {
    built_on: String,
    callers: Rc<RefCell<Vec<usize>>>,
}

fn each_worker_calls_every_worker(workers: usize) {
    let rt = runtime(workers);
    let shards = Sharded::new(rt.handle(), |_| Shard {
        built_on: common::thread_name(),
        callers: Rc::default(),
    })
    .unwrap();
    assert_eq!(shards.workers(), workers);
    let mut calls = Vec::new();
    for from in 0..workers {
        let s = shards.clone();
        calls.push(
            rt.handle()
                .spawn_local_on(from, move || async move {
                    let mut seen = Vec::new();
                    for round in 0..50 {
                        for to in 0..workers {
                            let (ran_on, built_on) = s
                                .invoke_on(to, move |shard: &mut Shard| {
                                    shard.callers.borrow_mut().push(from * 1000 + round);
                                    (common::thread_name(), shard.built_on.clone())
                                })
                                .await
                                .unwrap();
                            seen.push((to, ran_on, built_on));
                        }
                    }
                    seen
                })
                .unwrap(),
        );
    }
    for call in calls {
        for (to, ran_on, built_on) in rt.block_on(call).unwrap() {
            let want = format!("sprint-worker-{to}");
            assert_eq!(ran_on, want, "the closure ran on its target's thread");
            assert_eq!(built_on, want, "the instance was built there");
        }
    }
    // From outside the runtime: through the inbox, same instance.
    for to in 0..workers {
        let callers = rt
            .block_on(shards.invoke_on(to, |s: &mut Shard| s.callers.borrow().clone()))
            .unwrap();
        assert_eq!(callers.len(), 50 * workers, "worker {to}'s instance");
        for from in 0..workers {
            let mine: Vec<usize> = callers
                .iter()
                .filter(|c| **c / 1000 == from)
                .map(|c| c % 1000)
                .collect();
            assert_eq!(mine, (0..50).collect::<Vec<_>>(), "in the caller's order");
        }
    }
    assert_eq!(
        rt.block_on(shards.invoke_on(workers, |_: &mut Shard| ()))
            .unwrap_err(),
        MeshError::NoSuchWorker {
            worker: workers,
            workers
        }
    );
}

#[test]
fn invoke_on_runs_on_the_chosen_workers_instance_on_2_workers() {
    each_worker_calls_every_worker(2);
}

#[test]
fn invoke_on_runs_on_the_chosen_workers_instance_on_4_workers() {
    each_worker_calls_every_worker(4);
}

#[test]
fn a_panic_in_the_closure_reaches_the_caller_and_the_shard_keeps_serving() {
    let rt = runtime(2);
    let counters = Sharded::new(rt.handle(), |w| w as u64).unwrap();
    let c = counters.clone();
    let failed = rt
        .handle()
        .spawn_local_on(0, move || async move {
            c.invoke_on(1, |_: &mut u64| -> u64 { panic!("boom on purpose") })
                .await
        })
        .unwrap();
    let err = rt.block_on(failed).unwrap_err();
    assert!(err.is_panic(), "{err}");
    let c = counters.clone();
    let after = rt
        .handle()
        .spawn_local_on(0, move || async move {
            c.invoke_on(1, |n: &mut u64| {
                *n += 1;
                *n
            })
            .await
        })
        .unwrap();
    assert_eq!(rt.block_on(after).unwrap(), Ok(2));
    assert_eq!(counters.local(|n| *n), None, "not a worker thread");
}

/// Records where it was dropped.
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Drop for Recorder {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(common::thread_name());
    }
}

#[test]
fn dropping_the_last_handle_drops_each_instance_on_its_worker() {
    let rt = runtime(2);
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let shards = Sharded::new(rt.handle(), move |_| Recorder(l.clone())).unwrap();
    for to in 0..2 {
        rt.block_on(shards.invoke_on(to, |_: &mut Recorder| ()))
            .unwrap();
    }
    drop(shards);
    common::wait_until(GIVE_UP, "both instances are dropped", || {
        log.lock().unwrap().len() == 2
    });
    let mut where_ = log.lock().unwrap().clone();
    where_.sort();
    assert_eq!(where_, ["sprint-worker-0", "sprint-worker-1"]);
}
