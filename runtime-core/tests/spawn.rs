//! spawn, spawn_local, spawn_on, JoinHandle, panics, yield_now, block_on
//! and Handle from threads outside the runtime.

mod common;
use common::thread_name;
use sprint_core::{spawn, spawn_local, spawn_on, task, Handle, Level, SpawnError};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn spawn_returns_the_output() {
    for level in Level::ALL {
        let rt = common::rt(level, 2);
        let v = rt.block_on(async { spawn(async { 21 * 2 }).await.unwrap() });
        assert_eq!(v, 42, "{level}");
    }
}

#[test]
fn spawn_local_runs_a_non_send_future_on_the_spawning_worker() {
    let rt = common::rt(Level::Basic, 2);
    let (outer, inner) = rt.block_on(async {
        sprint_core::spawn_local_on(1, || async {
            let here = thread_name();
            let rc = Rc::new(Cell::new(0));
            let rc2 = rc.clone();
            let inner = spawn_local(async move {
                task::yield_now().await;
                rc2.set(7);
                thread_name()
            })
            .await
            .unwrap();
            assert_eq!(rc.get(), 7);
            (here, inner)
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(outer, "sprint-worker-1");
    assert_eq!(inner, "sprint-worker-1");
}

#[test]
fn spawn_on_places_the_task_on_that_worker_and_refuses_bad_indices() {
    let rt = common::rt(Level::Standard, 2);
    for w in 0..2 {
        let name = rt
            .block_on(async move { spawn_on(w, async { thread_name() }).unwrap().await })
            .unwrap();
        assert_eq!(name, format!("sprint-worker-{w}"));
    }
    let err = rt
        .block_on(async { spawn_on(5, async {}).map(|_| ()) })
        .unwrap_err();
    assert_eq!(
        err,
        SpawnError::NoSuchWorker {
            worker: 5,
            workers: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "no worker 5: this runtime has workers 0..2"
    );
}

#[test]
fn spawn_local_outside_a_worker_panics_with_a_clear_message() {
    let rt = common::rt(Level::Basic, 1);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { drop(spawn_local(async {})) });
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("spawn_local called outside a Sprint worker thread"),
        "{msg}"
    );
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

#[test]
fn abort_drops_the_future_and_reports_cancelled() {
    for level in Level::ALL {
        let rt = common::rt(level, 1);
        let dropped = Arc::new(AtomicBool::new(false));
        let d = DropFlag(dropped.clone());
        let polled = Arc::new(AtomicBool::new(false));
        let p = polled.clone();
        let h = rt.spawn(async move {
            let _d = d;
            p.store(true, SeqCst);
            std::future::pending::<()>().await;
        });
        // Aborted once it waits, not before its first poll.
        common::wait_until(Duration::from_secs(10), "the task is polled", || {
            polled.load(SeqCst)
        });
        assert!(!h.is_finished());
        h.abort();
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_cancelled(), "{level}: {err}");
        assert!(dropped.load(SeqCst), "{level}: future dropped");
    }
}

#[test]
fn abort_after_completion_keeps_the_output() {
    let rt = common::rt(Level::Basic, 1);
    let h = rt.spawn(async { 5 });
    while !h.is_finished() {
        std::thread::yield_now();
    }
    h.abort();
    assert_eq!(rt.block_on(h).unwrap(), 5);
}

#[test]
fn a_panicking_task_becomes_a_join_error_and_the_worker_keeps_running() {
    for level in [Level::Basic, Level::Enterprise] {
        let rt = common::rt(level, 1);
        let err = rt
            .block_on(async { spawn_on(0, async { panic!("boom") }).unwrap().await })
            .unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("boom"), "{err}");
        let payload = err.try_into_panic().unwrap();
        assert_eq!(*payload.downcast::<&str>().unwrap(), "boom");
        let v = rt.block_on(async { spawn_on(0, async { 3 }).unwrap().await.unwrap() });
        assert_eq!(v, 3, "{level}: worker still runs");
        let local = rt.block_on(async {
            spawn_on(0, async {
                spawn_local(async { panic!("local boom") }).await.is_err()
            })
            .unwrap()
            .await
            .unwrap()
        });
        assert!(local);
    }
}

#[test]
fn yield_now_lets_other_tasks_run_in_between() {
    let rt = common::rt(Level::Enterprise, 1);
    let order = rt.block_on(async {
        sprint_core::spawn_local_on(0, || async {
            let log = Rc::new(std::cell::RefCell::new(Vec::new()));
            let (a, b) = (log.clone(), log.clone());
            let t1 = spawn_local(async move {
                for i in 0..3 {
                    a.borrow_mut().push(("a", i));
                    task::yield_now().await;
                }
            });
            let t2 = spawn_local(async move {
                for i in 0..3 {
                    b.borrow_mut().push(("b", i));
                    task::yield_now().await;
                }
            });
            t1.await.unwrap();
            t2.await.unwrap();
            let v = log.borrow().clone();
            v
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(
        order,
        vec![("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    );
}

#[test]
fn block_on_inside_a_worker_panics_instead_of_deadlocking() {
    let rt = common::rt(Level::Basic, 1);
    let handle = rt.handle().clone();
    let err = rt
        .block_on(async move { spawn(async move { handle.block_on(async {}) }).await })
        .unwrap_err();
    assert!(err.is_panic());
    assert!(
        err.to_string()
            .contains("block_on called from inside a Sprint worker"),
        "{err}"
    );
}

#[test]
fn handle_works_from_threads_outside_the_runtime() {
    let rt = common::rt(Level::Standard, 2);
    let handle = rt.handle().clone();
    let count = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (handle, count) = (handle.clone(), count.clone());
            std::thread::spawn(move || {
                let mut hs = Vec::new();
                for i in 0..100 {
                    let count = count.clone();
                    hs.push(handle.spawn(async move {
                        count.fetch_add(1, SeqCst);
                        t * 1000 + i
                    }));
                }
                let on = handle.spawn_on(1, async { thread_name() }).unwrap();
                handle.block_on(async move {
                    for (i, h) in hs.into_iter().enumerate() {
                        assert_eq!(h.await.unwrap(), t * 1000 + i);
                    }
                    assert_eq!(on.await.unwrap(), "sprint-worker-1");
                    assert!(Handle::try_current().is_some());
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count.load(SeqCst), 400);
    assert!(Handle::try_current().is_none());
}

#[test]
fn join_handles_cross_threads_and_report_ids() {
    let rt = common::rt(Level::Basic, 2);
    let h = rt.spawn(async { 1u8 });
    let id = h.id();
    let v = std::thread::spawn(move || futures::executor::block_on(h))
        .join()
        .unwrap();
    assert_eq!(v.unwrap(), 1);
    let h2 = rt.spawn(async { 2u8 });
    assert_ne!(h2.id(), id);
}
