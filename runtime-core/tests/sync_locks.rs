//! Notify, Mutex, RwLock and Semaphore: their promises (FIFO, permits,
//! cancellation, close) across two workers, and the local flavours on one.

mod common;
use futures::FutureExt;
use sprint_core::sync::{local, Mutex, Notify, RwLock, Semaphore, TryAcquireError};
use sprint_core::{spawn_local, spawn_local_on, spawn_on, time, Level};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(10);

/// `fut`, setting `waiting` once it has returned `Pending` (it waits).
async fn noting_a_wait<F: Future>(fut: F, waiting: Arc<AtomicBool>) -> F::Output {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        let r = fut.as_mut().poll(cx);
        if r.is_pending() {
            waiting.store(true, SeqCst);
        }
        r
    })
    .await
}

/// Polls once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::pin::Pin::new(fut).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn notify_one_wakes_a_waiter_on_another_worker_or_stores_one_permit() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let n = Arc::new(Notify::new());
        let waiting = Arc::new(AtomicBool::new(false));
        let n2 = n.clone();
        let w = waiting.clone();
        let t = spawn_on(1, async move { noting_a_wait(n2.notified(), w).await }).unwrap();
        common::wait_until_async(WITHIN, "the waiter waits", || waiting.load(SeqCst)).await;
        n.notify_one();
        t.await.unwrap();

        // Nobody waits: the permit is stored, and only one.
        n.notify_one();
        n.notify_one();
        assert_eq!(n.notified().now_or_never(), Some(()));
        assert_eq!(n.notified().now_or_never(), None, "permits do not add up");
    });
}

#[test]
fn notify_waiters_wakes_every_waiter_and_stores_nothing() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let n = Arc::new(Notify::new());
        let waiting = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (n, waiting) = (n.clone(), waiting.clone());
            tasks.push(
                spawn_on(i % 2, async move {
                    let mut f = n.notified();
                    if poll_once(&mut f).is_pending() {
                        waiting.fetch_add(1, SeqCst);
                    }
                    f.await
                })
                .unwrap(),
            );
        }
        common::wait_until_async(WITHIN, "four waiters wait", || waiting.load(SeqCst) == 4).await;
        // A future made before the call but not yet polled is woken too.
        let early = n.notified();
        n.notify_waiters();
        for t in tasks {
            t.await.unwrap();
        }
        early.await;
        assert_eq!(n.notified().now_or_never(), None, "no permit stored");
    });
}

#[test]
fn a_notified_chosen_then_dropped_passes_the_wake_on() {
    let n = Notify::new();
    let mut first = n.notified();
    let mut second = n.notified();
    assert!(poll_once(&mut first).is_pending());
    assert!(poll_once(&mut second).is_pending());
    n.notify_one();
    drop(first);
    assert!(poll_once(&mut second).is_ready());
}

#[test]
fn mutex_hands_the_lock_over_in_fifo_order_across_workers() {
    let rt = common::rt(Level::Standard, 2);
    let order = rt.block_on(async {
        let m = Arc::new(Mutex::new(Vec::new()));
        let held = m.lock().await;
        let mut tasks = Vec::new();
        for i in 0..4 {
            let waiting = Arc::new(AtomicBool::new(false));
            let (m2, w) = (m.clone(), waiting.clone());
            tasks.push(
                spawn_on(i % 2, async move {
                    noting_a_wait(m2.lock(), w).await.push(i);
                })
                .unwrap(),
            );
            common::wait_until_async(WITHIN, "the locker queues", || waiting.load(SeqCst)).await;
        }
        assert!(m.try_lock().is_err(), "held, and others wait");
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let order = m.lock().await.clone();
        order
    });
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn mutex_excludes_across_workers_while_held_over_awaits() {
    let rt = common::rt(Level::Basic, 2);
    let total = rt.block_on(async {
        let m = Arc::new(Mutex::new(0u64));
        let mut tasks = Vec::new();
        for w in 0..4 {
            let m = m.clone();
            tasks.push(
                spawn_on(w % 2, async move {
                    for _ in 0..200 {
                        let mut g = m.lock().await;
                        let v = *g;
                        sprint_core::yield_now().await;
                        *g = v + 1;
                    }
                })
                .unwrap(),
            );
        }
        for t in tasks {
            t.await.unwrap();
        }
        let v = *m.lock().await;
        v
    });
    assert_eq!(total, 800, "no update lost");
}

#[test]
fn a_cancelled_lock_leaves_neither_a_waiter_nor_the_lock() {
    let rt = common::rt(Level::Basic, 1);
    rt.block_on(async {
        let m = Mutex::new(1);
        let g = m.lock().await;
        let timed_out = time::timeout(Duration::from_millis(5), m.lock())
            .await
            .is_err();
        assert!(timed_out, "timed out while held");
        drop(g);
        *m.try_lock().expect("free: the cancelled lock took nothing") += 1;
        assert_eq!(m.into_inner(), 2);
    });
}

#[test]
fn rwlock_shares_reads_and_queues_readers_behind_a_waiting_writer() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let lock = Arc::new(RwLock::new(0));
        let r1 = lock.read().await;
        let r2 = lock.try_read().expect("readers share");
        let waiting = Arc::new(AtomicBool::new(false));
        let (l2, w) = (lock.clone(), waiting.clone());
        let writer = spawn_on(1, async move {
            *noting_a_wait(l2.write(), w).await += 1;
        })
        .unwrap();
        common::wait_until_async(WITHIN, "the writer waits", || waiting.load(SeqCst)).await;
        assert!(
            lock.try_read().is_err(),
            "a reader queues behind the writer"
        );
        drop((r1, r2));
        writer.await.unwrap();
        assert_eq!(*lock.read().await, 1);
        assert!(lock.try_write().is_ok());
    });
}

#[test]
fn semaphore_bounds_concurrency_of_tasks_on_two_workers() {
    let rt = common::rt(Level::Standard, 2);
    let peak = rt.block_on(async {
        let sem = Arc::new(Semaphore::new(3));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
            tasks.push(
                spawn_on(i % 2, async move {
                    let _permit = sem.acquire_owned().await.unwrap();
                    let n = now.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(n, SeqCst);
                    for _ in 0..5 {
                        sprint_core::yield_now().await;
                    }
                    now.fetch_sub(1, SeqCst);
                })
                .unwrap(),
            );
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(sem.available_permits(), 3, "every permit came back");
        peak.load(SeqCst)
    });
    assert!((1..=3).contains(&peak), "at most 3 at once, saw {peak}");
}

#[test]
fn a_dropped_acquire_never_leaks_a_permit() {
    let sem = Semaphore::new(1);
    // Dropped while queued.
    let held = sem.try_acquire().unwrap();
    let mut queued = Box::pin(sem.acquire());
    assert!(poll_once(&mut queued).is_pending());
    drop(queued);
    drop(held);
    assert_eq!(sem.available_permits(), 1);
    // Dropped after the permit was handed to it, before it saw it.
    let held = sem.try_acquire().unwrap();
    let mut granted = Box::pin(sem.acquire());
    assert!(poll_once(&mut granted).is_pending());
    drop(held);
    assert_eq!(sem.available_permits(), 0, "handed to the waiter");
    drop(granted);
    assert_eq!(sem.available_permits(), 1, "handed back on drop");
}

#[test]
fn a_large_request_keeps_its_place_against_small_ones() {
    let sem = Semaphore::new(2);
    let held = sem.try_acquire_many(2).unwrap();
    let mut big = Box::pin(sem.acquire_many(2));
    let mut small = Box::pin(sem.acquire());
    assert!(poll_once(&mut big).is_pending());
    assert!(poll_once(&mut small).is_pending());
    drop(held);
    let big = match poll_once(&mut big) {
        Poll::Ready(p) => p.unwrap(),
        Poll::Pending => panic!("the oldest waiter gets the permits"),
    };
    assert!(
        poll_once(&mut small).is_pending(),
        "the small one waits its turn"
    );
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(big);
    assert!(matches!(poll_once(&mut small), Poll::Ready(Ok(_))));
}

#[test]
fn closing_a_semaphore_fails_waiters_and_later_acquires() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.clone().try_acquire_owned().unwrap();
        let waiting = Arc::new(AtomicBool::new(false));
        let (s2, w) = (sem.clone(), waiting.clone());
        let waiter = spawn_on(1, async move {
            noting_a_wait(s2.acquire(), w).await.map(|_| ())
        })
        .unwrap();
        common::wait_until_async(WITHIN, "the acquire waits", || waiting.load(SeqCst)).await;
        sem.close();
        assert!(waiter.await.unwrap().is_err(), "a waiter fails on close");
        assert!(sem.is_closed());
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
        assert!(sem.acquire().await.is_err());
        drop(held);
        assert_eq!(sem.available_permits(), 1, "held permits still come back");
    });
}

#[test]
fn local_flavours_serve_tasks_of_one_worker() {
    let rt = common::rt(Level::Enterprise, 1);
    let (order, notified) = rt.block_on(async {
        spawn_local_on(0, || async {
            use std::rc::Rc;
            let m = Rc::new(local::Mutex::new(Vec::new()));
            let sem = Rc::new(local::Semaphore::new(1));
            let n = Rc::new(local::Notify::new());
            let held = m.lock().await;
            let permit = sem.clone().acquire_owned().await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..3 {
                let (m, sem) = (m.clone(), sem.clone());
                tasks.push(spawn_local(async move {
                    let _p = sem.acquire().await.unwrap();
                    m.lock().await.push(i);
                }));
                sprint_core::yield_now().await;
            }
            let n2 = n.clone();
            let waiter = spawn_local(async move { n2.notified().await });
            sprint_core::yield_now().await;
            n.notify_one();
            drop((held, permit));
            for t in tasks {
                t.await.unwrap();
            }
            waiter.await.unwrap();
            let lock = local::RwLock::new(5);
            let (a, b) = (lock.read().await, lock.read().await);
            assert!(lock.try_write().is_err());
            drop((a, b));
            *lock.write().await += 1;
            let order = m.lock().await.clone();
            let v = *lock.read().await;
            (order, v)
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(order, [0, 1, 2], "FIFO as the cross-worker flavour");
    assert_eq!(notified, 6);
}
