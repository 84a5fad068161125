//! The parts of tokio's sync API a tokio user reaches for beyond the
//! basics: `Notified::enable`, merging and splitting semaphore permits,
//! mapped lock guards, cloned `watch` senders and `broadcast`'s
//! `Sender::closed`, `oneshot`'s `Sender::closed` and `Receiver::close`,
//! each across two workers where that is the point,
//! and the local (`!Send`) flavours of `watch` and `broadcast`.

mod common;
use futures::FutureExt;
use sprint_core::sync::{
    broadcast, local, oneshot, watch, Mutex, MutexGuard, Notify, OwnedMutexGuard, RwLock,
    RwLockReadGuard, RwLockWriteGuard, Semaphore,
};
use sprint_core::{spawn_local_on, spawn_on, Level};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(10);

/// Polls once with a waker that does nothing.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn an_enabled_notified_is_in_line_for_notify_one_before_its_first_poll() {
    let n = Notify::new();
    let mut enabled = pin!(n.notified());
    assert!(!enabled.as_mut().enable(), "nothing was notified yet");
    let mut polled = pin!(n.notified());
    assert!(poll_once(polled.as_mut()).is_pending());
    // The enabled future queued first, so notify_one picks it, not the
    // polled one behind it, and stores no permit.
    n.notify_one();
    assert!(poll_once(polled.as_mut()).is_pending());
    assert!(poll_once(enabled.as_mut()).is_ready());
    assert_eq!(n.notified().now_or_never(), None, "no permit stored");

    // An enabled future chosen, then dropped unpolled, passes the wake on.
    {
        let mut chosen = Box::pin(n.notified());
        chosen.as_mut().enable();
        n.notify_one();
    }
    assert!(poll_once(polled.as_mut()).is_ready());

    // With nobody waiting, a permit stored before enable is taken by it.
    n.notify_one();
    let mut late = pin!(n.notified());
    assert!(late.as_mut().enable(), "the stored permit was taken");
    assert_eq!(n.notified().now_or_never(), None, "and is gone");
    assert!(poll_once(late.as_mut()).is_ready());
}

#[test]
fn enable_then_check_then_await_misses_no_notify_one_across_workers() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let n = Arc::new(Notify::new());
        let flag = Arc::new(AtomicBool::new(false));
        let (n2, flag2) = (n.clone(), flag.clone());
        let waiter = spawn_on(1, async move {
            loop {
                let mut notified = pin!(n2.notified());
                notified.as_mut().enable();
                if flag2.load(SeqCst) {
                    return;
                }
                notified.await;
            }
        })
        .unwrap();
        flag.store(true, SeqCst);
        n.notify_one();
        waiter.await.unwrap();
    });
}

#[test]
fn permits_merge_and_split_and_every_part_comes_back() {
    let sem = Semaphore::new(5);
    let mut p = sem.try_acquire_many(3).unwrap();
    p.merge(sem.try_acquire_many(2).unwrap());
    assert_eq!((p.num_permits(), sem.available_permits()), (5, 0));
    let part = p.split(2).unwrap();
    assert_eq!((p.num_permits(), part.num_permits()), (3, 2));
    assert!(p.split(4).is_none(), "only 3 are held");
    assert_eq!(p.num_permits(), 3, "a refused split changes nothing");
    drop(part);
    assert_eq!(sem.available_permits(), 2);
    drop(p);
    assert_eq!(sem.available_permits(), 5);

    let sem = Arc::new(Semaphore::new(4));
    let mut owned = sem.clone().try_acquire_many_owned(1).unwrap();
    owned.merge(sem.clone().try_acquire_many_owned(3).unwrap());
    let half = owned.split(2).unwrap();
    assert!(Arc::ptr_eq(half.semaphore(), &sem));
    assert_eq!((owned.num_permits(), half.num_permits()), (2, 2));
    drop((owned, half));
    assert_eq!(sem.available_permits(), 4);

    let local_sem = local::Semaphore::new(2);
    let mut lp = local_sem.try_acquire().unwrap();
    lp.merge(local_sem.try_acquire().unwrap());
    assert_eq!(lp.split(1).map(|p| p.num_permits()), Some(1));
    assert_eq!(local_sem.available_permits(), 1);
}

#[test]
fn merging_permits_of_two_semaphores_panics_and_leaks_neither() {
    let (a, b) = (Semaphore::new(1), Semaphore::new(1));
    let mut pa = a.try_acquire().unwrap();
    let pb = b.try_acquire().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pa.merge(pb)));
    let msg = r.unwrap_err();
    let msg = (msg.downcast_ref::<&str>().copied())
        .or_else(|| msg.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("");
    assert!(msg.contains("different semaphores"), "{msg}");
    assert_eq!(b.available_permits(), 1, "the other permit went home");
    assert_eq!(pa.num_permits(), 1);
    drop(pa);
    assert_eq!(a.available_permits(), 1);
}

#[test]
fn a_mapped_mutex_guard_holds_the_lock_until_dropped() {
    let m = Mutex::new((0u32, Vec::<u8>::new()));
    let mut part = MutexGuard::map(m.try_lock().unwrap(), |v| &mut v.1);
    part.push(7);
    assert!(m.try_lock().is_err(), "still locked");
    let mut byte = sprint_core::sync::MappedMutexGuard::map(part, |v| &mut v[0]);
    *byte += 1;
    drop(byte);
    let g = m.try_lock().expect("unlocked by the mapped guard's drop");
    let g = MutexGuard::try_map(g, |v| v.1.get_mut(5)).expect_err("no sixth byte");
    assert_eq!(*g, (0, vec![8]), "try_map handed the guard back");
    drop(g);
    assert!(m.try_lock().is_ok());

    let local_m = local::Mutex::new([1, 2]);
    let mut second = local::MutexGuard::map(local_m.try_lock().unwrap(), |a| &mut a[1]);
    *second = 5;
    assert!(local_m.try_lock().is_err());
    drop(second);
    assert_eq!(*local_m.try_lock().unwrap(), [1, 5]);
}

#[test]
fn an_owned_mapped_guard_moves_to_another_worker_and_unlocks_there() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let m = Arc::new(Mutex::new(vec![0u64; 3]));
        let guard = m.clone().lock_owned().await;
        let mapped = OwnedMutexGuard::map(guard, |v| &mut v[2]);
        assert!(Arc::ptr_eq(mapped.mutex(), &m));
        let release = Arc::new(Notify::new());
        let release2 = release.clone();
        let holder = spawn_on(1, async move {
            let mut mapped = mapped;
            *mapped = 9;
            release2.notified().await;
            drop(mapped);
        })
        .unwrap();
        assert!(m.try_lock().is_err(), "the mapped guard holds it");
        release.notify_one();
        let v = m.lock().await.clone();
        assert_eq!(v, [0, 0, 9]);
        holder.await.unwrap();
    });
}

#[test]
fn mapped_rwlock_guards_keep_their_lock_mode() {
    let lock = RwLock::new((String::from("a"), 1u32));
    let name = RwLockReadGuard::map(lock.try_read().unwrap(), |v| v.0.as_str());
    let other = RwLockReadGuard::map(lock.try_read().unwrap(), |v| &v.1);
    assert_eq!((&*name, *other), ("a", 1));
    assert!(
        lock.try_write().is_err(),
        "mapped readers keep the writer out"
    );
    drop((name, other));
    let mut count = RwLockWriteGuard::map(lock.try_write().unwrap(), |v| &mut v.1);
    *count += 1;
    assert!(
        lock.try_read().is_err(),
        "a mapped writer keeps readers out"
    );
    drop(count);
    let g = RwLockReadGuard::try_map(lock.try_read().unwrap(), |v| v.0.get(5..)).unwrap_err();
    assert_eq!(g.1, 2);
}

#[test]
fn cloned_watch_senders_publish_and_the_channel_closes_after_the_last() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, mut rx) = watch::channel(0);
        let tx2 = tx.clone();
        spawn_on(1, async move {
            tx2.send(1).unwrap();
        })
        .unwrap()
        .await
        .unwrap();
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), 1);
        let tx3 = tx.clone();
        drop(tx);
        assert_eq!(rx.has_changed(), Ok(false), "one sender is left");
        let waiter = spawn_on(1, async move { rx.changed().await }).unwrap();
        drop(tx3);
        assert!(waiter.await.unwrap().is_err(), "the last sender closed it");
    });
}

#[test]
fn a_watch_sender_made_alone_refuses_send_until_a_receiver_subscribes() {
    let tx = watch::Sender::new("init");
    assert_eq!(tx.receiver_count(), 0);
    assert!(tx.send("lost").is_err());
    assert_eq!(tx.send_replace("kept"), "init");
    let mut rx = tx.subscribe();
    assert_eq!((*rx.borrow(), rx.has_changed()), ("kept", Ok(false)));
    tx.send("seen").unwrap();
    assert_eq!(rx.changed().now_or_never(), Some(Ok(())));
    assert_eq!(*rx.borrow(), "seen");
}

#[test]
fn broadcast_closed_completes_when_the_last_receiver_goes() {
    let (tx, rx) = broadcast::channel::<u32>(4);
    let rx2 = tx.subscribe();
    assert_eq!(tx.receiver_count(), 2);
    let mut closed = pin!(tx.closed());
    assert!(poll_once(closed.as_mut()).is_pending());
    drop(rx);
    assert!(
        poll_once(closed.as_mut()).is_pending(),
        "one receiver is left"
    );
    drop(rx2);
    assert!(poll_once(closed.as_mut()).is_ready());
    assert!(tx.is_closed());
    assert!(
        tx.closed().now_or_never().is_some(),
        "at once when none is alive"
    );
}

#[test]
fn broadcast_closed_wakes_a_sender_on_another_worker() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, rx) = broadcast::channel::<u32>(4);
        let waiting = Arc::new(AtomicBool::new(false));
        let w = waiting.clone();
        let sender = spawn_on(1, async move {
            let mut closed = pin!(tx.closed());
            std::future::poll_fn(|cx| {
                let r = closed.as_mut().poll(cx);
                w.store(r.is_pending(), SeqCst);
                r
            })
            .await;
            tx.send(1).is_err()
        })
        .unwrap();
        common::wait_until_async(WITHIN, "the sender waits", || waiting.load(SeqCst)).await;
        drop(rx);
        assert!(sender.await.unwrap(), "sends are refused once closed");
    });
}

#[test]
fn local_flavours_map_and_split_on_one_worker() {
    let rt = common::rt(Level::Basic, 1);
    let got = rt.block_on(async {
        spawn_local_on(0, || async {
            let m = std::rc::Rc::new(local::Mutex::new((1u8, 2u8)));
            let g = m.clone().lock_owned().await;
            let mut g = local::OwnedMutexGuard::map(g, |v| &mut v.0);
            *g += 10;
            drop(g);
            let lock = local::RwLock::new(vec![3u8]);
            let first = local::RwLockReadGuard::map(lock.read().await, |v| &v[0]);
            let v = *first;
            drop(first);
            let x = m.lock().await.0;
            (x, v)
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(got, (11, 3));
}

#[test]
fn local_watch_and_broadcast_serve_tasks_of_one_worker() {
    let rt = common::rt(Level::Basic, 1);
    let got = rt.block_on(async {
        spawn_local_on(0, || async {
            let (tx, mut rx) = local::watch::channel(0u32);
            let tx2 = tx.clone();
            let watcher = sprint_core::spawn_local(async move {
                let mut seen = Vec::new();
                while rx.changed().await.is_ok() {
                    seen.push(*rx.borrow_and_update());
                }
                seen
            });
            tx.send(1).unwrap();
            tx2.send(2).unwrap();
            drop((tx, tx2));
            let seen = watcher.await.unwrap();

            let (btx, mut a) = local::broadcast::channel(4);
            let mut b = btx.subscribe();
            let closed = sprint_core::spawn_local({
                let btx = btx.clone();
                async move { btx.closed().await }
            });
            btx.send("x").unwrap();
            let got = (a.recv().await.unwrap(), b.recv().await.unwrap());
            drop((a, b));
            closed.await.unwrap();
            assert!(btx.send("y").is_err());
            (seen, got)
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(*got.0.last().unwrap(), 2, "the latest value is seen");
    assert_eq!(got.1, ("x", "x"));
}

#[test]
fn a_local_watch_ref_kept_while_sending_panics_naming_it() {
    let (tx, rx) = local::watch::channel(0);
    let kept = rx.borrow();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.send_replace(1)));
    let msg = r.unwrap_err();
    let msg = (msg.downcast_ref::<&str>().copied())
        .or_else(|| msg.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("");
    assert!(
        msg.contains("`Ref` from `borrow()` is still alive"),
        "{msg}"
    );
    drop(kept);
    assert_eq!(tx.send_replace(2), 0, "usable once the Ref is gone");
}

#[test]
fn a_oneshot_sender_learns_the_receiver_went_while_it_works() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (mut tx, rx) = oneshot::channel::<u32>();
        let waiting = Arc::new(AtomicBool::new(false));
        let w = waiting.clone();
        let worker = spawn_on(1, async move {
            std::future::poll_fn(|cx| {
                let r = tx.poll_closed(cx);
                w.store(r.is_pending(), SeqCst);
                r
            })
            .await;
            tx.is_closed()
        })
        .unwrap();
        common::wait_until_async(WITHIN, "the sender waits", || waiting.load(SeqCst)).await;
        drop(rx);
        assert!(worker.await.unwrap());
    });

    // close() refuses later sends and ends the wait, but keeps a value
    // sent before.
    let (mut tx, mut rx) = oneshot::channel::<u32>();
    {
        let mut closed = pin!(tx.closed());
        assert!(poll_once(closed.as_mut()).is_pending());
        rx.close();
        assert!(poll_once(closed.as_mut()).is_ready());
    }
    assert_eq!(tx.send(1), Err(1));
    assert!(
        rx.now_or_never().unwrap().is_err(),
        "nothing was sent before"
    );
    let (tx, mut rx) = oneshot::channel::<u32>();
    tx.send(2).unwrap();
    rx.close();
    assert_eq!(rx.try_recv(), Ok(Some(2)));
}
