//! watch, broadcast, the unbounded mpsc, and the bounded mpsc's `reserve`,
//! `recv_many` and `closed()`, across two workers.

mod common;
use futures::FutureExt;
use sprint_core::sync::{broadcast, mpsc, watch};
use sprint_core::{spawn_on, Level};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
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

#[test]
fn watch_receivers_see_the_latest_value_and_the_end() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, mut rx) = watch::channel(0u32);
        assert!(!rx.has_changed().unwrap());
        let mut rx2 = rx.clone();
        let seen = spawn_on(1, async move {
            let mut seen = Vec::new();
            while rx2.changed().await.is_ok() {
                seen.push(*rx2.borrow_and_update());
            }
            seen
        })
        .unwrap();
        for i in 1..=50 {
            tx.send(i).unwrap();
            sprint_core::yield_now().await;
        }
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), 50, "the latest value");
        assert!(!rx.borrow().has_changed(), "changed() marked it seen");
        tx.send(51).unwrap();
        assert!(rx.borrow().has_changed(), "borrow leaves it unseen");
        assert!(rx.borrow_and_update().has_changed());
        assert!(rx.changed().now_or_never().is_none(), "nothing new");
        let late = tx.subscribe();
        assert!(
            !late.has_changed().unwrap(),
            "subscribe counts the value as seen"
        );
        drop(tx);
        let seen = seen.await.unwrap();
        assert_eq!(
            seen.last(),
            Some(&51),
            "the last value arrives before the end"
        );
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "in order, maybe skipping"
        );
        assert!(rx.changed().await.is_err(), "the sender is gone");
        assert!(late.has_changed().is_err());
    });
}

#[test]
fn watch_send_needs_a_receiver_and_closed_waits_for_the_last() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, rx) = watch::channel("a");
        let rx2 = rx.clone();
        assert_eq!(tx.receiver_count(), 2);
        let waiting = Arc::new(AtomicBool::new(false));
        let w = waiting.clone();
        let tx = Arc::new(tx);
        let t2 = tx.clone();
        let closed = spawn_on(1, async move { noting_a_wait(t2.closed(), w).await }).unwrap();
        common::wait_until_async(WITHIN, "closed() waits", || waiting.load(SeqCst)).await;
        drop(rx);
        assert_eq!(tx.receiver_count(), 1);
        assert!(tx.closed().now_or_never().is_none(), "one receiver is left");
        drop(rx2);
        closed.await.unwrap();
        assert!(tx.is_closed());
        assert_eq!(tx.send("b"), Err(watch::SendError("b")));
        assert_eq!(
            tx.send_replace("c"),
            "a",
            "send_replace stores without receivers"
        );
        assert_eq!(*tx.borrow(), "c");
    });
}

#[test]
fn broadcast_reaches_every_receiver_on_both_workers() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, rx) = broadcast::channel::<u32>(1024);
        let mut tasks = Vec::new();
        for w in 0..2 {
            let mut rx = if w == 0 {
                tx.subscribe()
            } else {
                rx.resubscribe()
            };
            tasks.push(
                spawn_on(w, async move {
                    let mut got = Vec::new();
                    loop {
                        match rx.recv().await {
                            Ok(v) => got.push(v),
                            Err(broadcast::RecvError::Closed) => return got,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
                .unwrap(),
            );
        }
        drop(rx);
        for i in 0..500 {
            assert_eq!(tx.send(i).unwrap(), 2);
        }
        drop(tx);
        for t in tasks {
            assert_eq!(t.await.unwrap(), (0..500).collect::<Vec<_>>());
        }
    });
}

#[test]
fn a_lagging_receiver_learns_how_many_it_lost_then_goes_on() {
    let rt = common::rt(Level::Basic, 1);
    rt.block_on(async {
        let (tx, mut rx) = broadcast::channel(2);
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.len(), 5);
        assert_eq!(rx.recv().await, Err(broadcast::RecvError::Lagged(3)));
        assert_eq!(rx.recv().await, Ok(3));
        assert_eq!(rx.try_recv(), Ok(4));
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.recv().await, Err(broadcast::RecvError::Closed));
        let (tx, rx) = broadcast::channel(2);
        drop(rx);
        assert_eq!(tx.send(1), Err(broadcast::SendError(1)), "no receiver");
    });
}

#[test]
fn unbounded_sends_never_wait_and_arrive_in_order_per_sender() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, u32)>();
        for w in 0..2 {
            let tx = tx.clone();
            spawn_on(w, async move {
                for i in 0..5000 {
                    tx.send((w, i)).unwrap();
                }
            })
            .unwrap();
        }
        drop(tx);
        let mut next = [0u32; 2];
        while let Some((w, i)) = rx.recv().await {
            assert_eq!(next[w], i, "in order per sender");
            next[w] += 1;
        }
        assert_eq!(next, [5000, 5000]);
        let (tx, rx) = mpsc::unbounded_channel();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(1), Err(mpsc::SendError(1)));
    });
}

#[test]
fn reserve_holds_a_slot_until_the_permit_sends_or_drops() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        let permit = tx.reserve().await.unwrap();
        assert!(matches!(tx.try_send(1), Err(mpsc::TrySendError::Full(1))));
        assert!(tx.try_reserve().is_err());
        drop(permit);
        tx.try_send(2).expect("the dropped permit freed its slot");
        // A reserve waits while full, on another worker, and wakes on recv.
        let tx2 = tx.clone();
        let waiting = Arc::new(AtomicBool::new(false));
        let w = waiting.clone();
        let reserver = spawn_on(1, async move {
            let permit = noting_a_wait(tx2.reserve(), w).await.unwrap();
            permit.send(3);
        })
        .unwrap();
        common::wait_until_async(WITHIN, "reserve waits while full", || waiting.load(SeqCst)).await;
        assert_eq!(rx.recv().await, Some(2));
        reserver.await.unwrap();
        assert_eq!(rx.recv().await, Some(3));
        rx.close();
        assert!(tx.reserve().await.is_err(), "closed");
    });
}

#[test]
fn recv_many_takes_a_batch_and_waits_for_the_first_value() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(8);
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        let mut buf = vec![100];
        assert_eq!(rx.recv_many(&mut buf, 3).await, 3);
        assert_eq!(rx.recv_many(&mut buf, 3).await, 2);
        assert_eq!(buf, [100, 0, 1, 2, 3, 4], "appended");
        assert_eq!(rx.recv_many(&mut buf, 0).await, 0);
        let sender = spawn_on(1, async move {
            tx.send(9).await.unwrap();
        })
        .unwrap();
        buf.clear();
        assert_eq!(rx.recv_many(&mut buf, 10).await, 1);
        assert_eq!(buf, [9]);
        sender.await.unwrap();
        assert_eq!(rx.recv_many(&mut buf, 10).await, 0, "closed and empty");
    });
}

#[test]
fn closed_completes_when_the_receiver_goes() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, rx) = mpsc::channel::<u8>(1);
        let (utx, urx) = mpsc::unbounded_channel::<u8>();
        let waiting = [
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        ];
        let (w0, w1) = (waiting[0].clone(), waiting[1].clone());
        let a = spawn_on(1, async move { noting_a_wait(tx.closed(), w0).await }).unwrap();
        let b = spawn_on(1, async move { noting_a_wait(utx.closed(), w1).await }).unwrap();
        common::wait_until_async(WITHIN, "both closed() wait", || {
            waiting.iter().all(|w| w.load(SeqCst))
        })
        .await;
        assert!(!a.is_finished() && !b.is_finished());
        drop((rx, urx));
        a.await.unwrap();
        b.await.unwrap();
    });
}
