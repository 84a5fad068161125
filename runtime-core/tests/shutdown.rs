//! Dropping the runtime cancels every task, drops !Send futures on their
//! own worker, joins every thread and leaks nothing.

mod common;
use sprint_core::{spawn, spawn_local, sync::mpsc, time, Level};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
    label: &'static str,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let t = common::thread_name();
        self.log
            .lock()
            .unwrap()
            .push(format!("{}@{}", self.label, t));
    }
}

#[test]
fn drop_cancels_pending_tasks_on_their_own_workers() {
    for level in Level::ALL {
        let log = Arc::new(Mutex::new(Vec::new()));
        let rt = common::rt(level, 2);
        let l = log.clone();
        // Tasks whose recorder exists (each makes it on its first poll).
        let started = Arc::new(AtomicUsize::new(0));
        let st = started.clone();
        rt.block_on(async move {
            for w in 0..2 {
                let (l, st) = (l.clone(), st.clone());
                sprint_core::spawn_local_on(w, move || async move {
                    let rec = Recorder {
                        log: l,
                        label: "local",
                    };
                    let _keep = std::rc::Rc::new(rec);
                    st.fetch_add(1, SeqCst);
                    std::future::pending::<()>().await;
                })
                .unwrap();
            }
            let (l2, st2) = (l.clone(), st.clone());
            spawn(async move {
                let _r = Recorder {
                    log: l2,
                    label: "send",
                };
                st2.fetch_add(1, SeqCst);
                // Pending until cancelled: a timer far away.
                time::sleep(Duration::from_secs(3600)).await;
            });
            // A task parked on a channel whose sender sits in another
            // parked task: a cycle only cancellation breaks.
            let (tx, mut rx) = mpsc::channel::<u8>(1);
            let l3 = l.clone();
            spawn(async move {
                let _r = Recorder {
                    log: l3,
                    label: "cycle",
                };
                st.fetch_add(1, SeqCst);
                let _tx = tx;
                rx.recv().await;
            });
        });
        common::wait_until(Duration::from_secs(10), "all four tasks run", || {
            started.load(SeqCst) == 4
        });
        drop(rt);
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 4, "{level}: every task dropped: {log:?}");
        for w in 0..2 {
            let want = format!("local@sprint-worker-{w}");
            assert!(log.contains(&want), "{level}: {want} in {log:?}");
        }
        assert!(
            log.iter().all(|e| e.contains("@sprint-worker-")),
            "{level}: {log:?}"
        );
    }
}

#[test]
fn join_handles_of_cancelled_tasks_report_cancellation_after_shutdown() {
    let rt = common::rt(Level::Standard, 2);
    let h = rt.spawn(std::future::pending::<()>());
    let handle = rt.handle().clone();
    drop(rt);
    let err = futures::executor::block_on(h).unwrap_err();
    assert!(err.is_cancelled());
    let late = handle.spawn(async { 1 });
    assert!(
        futures::executor::block_on(late)
            .unwrap_err()
            .is_cancelled(),
        "spawn after shutdown"
    );
}

#[test]
fn wakers_outliving_the_runtime_are_harmless() {
    let rt = common::rt(Level::Enterprise, 1);
    let (wtx, wrx) = std::sync::mpsc::channel();
    rt.spawn(std::future::poll_fn(move |cx| {
        let _ = wtx.send(cx.waker().clone());
        std::task::Poll::<()>::Pending
    }));
    let waker = wrx.recv().unwrap();
    drop(rt);
    waker.wake_by_ref();
    waker.wake();
}

#[test]
fn shutdown_timeout_reports_a_worker_stuck_in_a_blocking_poll() {
    let rt = common::rt(Level::Basic, 1);
    let release = Arc::new(AtomicUsize::new(0));
    let r = release.clone();
    let running = Arc::new(AtomicUsize::new(0));
    let run = running.clone();
    rt.spawn(async move {
        run.store(1, SeqCst);
        // Blocks its worker's thread (the behaviour under test) until
        // released.
        while r.load(SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    common::wait_until(Duration::from_secs(10), "the blocking task runs", || {
        running.load(SeqCst) == 1
    });
    let err = rt.shutdown_timeout(Duration::from_millis(50)).unwrap_err();
    assert_eq!(err.stuck, 1);
    release.store(1, SeqCst);
}

#[test]
fn tasks_spawned_while_shutting_down_are_cancelled_too() {
    let rt = common::rt(Level::Aggressive, 2);
    let count = Arc::new(AtomicUsize::new(0));
    struct SpawnOnDrop(Arc<AtomicUsize>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let c = self.0.clone();
            let h = spawn_local(async move {
                c.fetch_add(100, SeqCst);
            });
            drop(h);
            self.0.fetch_add(1, SeqCst);
        }
    }
    let c = count.clone();
    let started = Arc::new(AtomicUsize::new(0));
    let st = started.clone();
    rt.block_on(async move {
        sprint_core::spawn_local_on(0, move || async move {
            let _s = SpawnOnDrop(c);
            st.store(1, SeqCst);
            std::future::pending::<()>().await
        })
        .unwrap();
    });
    common::wait_until(Duration::from_secs(10), "the task holds its guard", || {
        started.load(SeqCst) == 1
    });
    drop(rt);
    assert_eq!(
        count.load(SeqCst),
        1,
        "the drop ran; the task it spawned never did"
    );
}

#[test]
fn every_kind_of_spawn_after_shutdown_is_cancelled_without_leaking() {
    for level in Level::ALL {
        let rt = common::rt(level, 2);
        let handle = rt.handle().clone();
        drop(rt);
        let late = handle.spawn(async { 1 });
        assert!(
            futures::executor::block_on(late)
                .unwrap_err()
                .is_cancelled(),
            "{level}: spawn"
        );
        let late_on = handle.spawn_on(1, async { 1 }).unwrap();
        assert!(
            futures::executor::block_on(late_on)
                .unwrap_err()
                .is_cancelled(),
            "{level}: spawn_on"
        );
        let late_local = handle.spawn_local_on(0, || async { 1 }).unwrap();
        assert!(
            futures::executor::block_on(late_local)
                .unwrap_err()
                .is_cancelled(),
            "{level}: spawn_local_on"
        );
        let late_blocking = handle.spawn_blocking(|| 1);
        assert!(
            futures::executor::block_on(late_blocking)
                .unwrap_err()
                .is_cancelled(),
            "{level}: spawn_blocking"
        );
    }
}
