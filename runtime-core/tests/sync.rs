//! Channels and JoinSet, raced with futures combinators.

mod common;
use futures::future::{select, Either};
use sprint_core::sync::{mpsc, oneshot, JoinSet};
use sprint_core::{spawn, spawn_on, time, Level};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

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
fn oneshot_delivers_and_reports_a_dropped_sender() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, rx) = oneshot::channel();
        spawn_on(1, async move { tx.send(String::from("hi")).unwrap() }).unwrap();
        assert_eq!(rx.await.unwrap(), "hi");
        let (tx, rx) = oneshot::channel::<u8>();
        drop(tx);
        assert_eq!(rx.await, Err(oneshot::RecvError));
        let (tx, rx) = oneshot::channel::<u8>();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(3), Err(3));
    });
}

#[test]
fn send_mpsc_crosses_workers_in_order_per_sender() {
    for level in Level::ALL {
        let rt = common::rt(level, 2);
        let got = rt.block_on(async {
            let (tx, mut rx) = mpsc::channel::<(usize, u32)>(4);
            for w in 0..2 {
                let tx = tx.clone();
                spawn_on(w, async move {
                    for i in 0..1000 {
                        tx.send((w, i)).await.unwrap();
                    }
                })
                .unwrap();
            }
            drop(tx);
            let mut last = [None::<u32>; 2];
            let mut n = 0;
            while let Some((w, i)) = rx.recv().await {
                assert!(last[w].is_none_or(|l| l + 1 == i), "in order per sender");
                last[w] = Some(i);
                n += 1;
            }
            n
        });
        assert_eq!(got, 2000, "{level}");
    }
}

#[test]
fn a_full_channel_makes_senders_wait_and_try_send_says_full() {
    let rt = common::rt(Level::Basic, 2);
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel(1);
        tx.try_send(1).unwrap();
        assert!(matches!(tx.try_send(2), Err(mpsc::TrySendError::Full(2))));
        let tx2 = tx.clone();
        let waiting = Arc::new(AtomicBool::new(false));
        let blocked = spawn(noting_a_wait(
            async move { tx2.send(2).await },
            waiting.clone(),
        ));
        common::wait_until_async(Duration::from_secs(10), "the send waits while full", || {
            waiting.load(SeqCst)
        })
        .await;
        assert!(!blocked.is_finished(), "send waits while full");
        assert_eq!(rx.recv().await, Some(1));
        blocked.await.unwrap().unwrap();
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    });
}

#[test]
fn a_dropped_receiver_fails_sends_and_wakes_waiting_senders() {
    let rt = common::rt(Level::Basic, 2);
    rt.block_on(async {
        let (tx, rx) = mpsc::channel(1);
        tx.send(0u8).await.unwrap();
        let tx2 = tx.clone();
        let sender_waits = Arc::new(AtomicBool::new(false));
        let waiting = spawn(noting_a_wait(
            async move { tx2.send(1).await },
            sender_waits.clone(),
        ));
        common::wait_until_async(Duration::from_secs(10), "the sender waits", || {
            sender_waits.load(SeqCst)
        })
        .await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(mpsc::SendError(1)));
        assert!(tx.is_closed());
        assert!(matches!(tx.try_send(2), Err(mpsc::TrySendError::Closed(2))));
    });
}

#[test]
fn a_cancelled_send_leaves_no_waiter_behind() {
    let rt = common::rt(Level::Basic, 1);
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel(1);
        tx.send(1).await.unwrap();
        let r = time::timeout(Duration::from_millis(5), tx.send(2)).await;
        assert!(r.is_err(), "timed out while full");
        assert_eq!(rx.recv().await, Some(1));
        tx.send(3).await.unwrap();
        assert_eq!(
            rx.recv().await,
            Some(3),
            "the cancelled value was never queued"
        );
    });
}

#[test]
fn local_mpsc_works_between_tasks_of_one_worker() {
    let rt = common::rt(Level::Enterprise, 1);
    let sum = rt.block_on(async {
        sprint_core::spawn_local_on(0, || async {
            let (tx, mut rx) = mpsc::local::channel::<std::rc::Rc<u32>>(2);
            let producer = sprint_core::spawn_local(async move {
                for i in 0..100 {
                    tx.send(std::rc::Rc::new(i)).await.unwrap();
                }
            });
            let mut sum = 0;
            while let Some(v) = rx.recv().await {
                sum += *v;
            }
            producer.await.unwrap();
            sum
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(sum, (0..100).sum::<u32>());
}

#[test]
fn join_set_collects_in_completion_order_and_aborts_on_drop() {
    let rt = common::rt(Level::Basic, 2);
    rt.block_on(async {
        // Three tasks, each finishing when told: they are told in the
        // order 1, 2, 0, one after the other finished, so that order is
        // the completion order whatever the machine's timing.
        let mut set = JoinSet::new();
        let mut go = Vec::new();
        for id in 0..3u32 {
            let (tx, rx) = oneshot::channel::<()>();
            go.push(Some(tx));
            set.spawn(async move {
                rx.await.unwrap();
                id
            });
        }
        assert_eq!(set.len(), 3);
        let mut order = Vec::new();
        for id in [1usize, 2, 0] {
            go[id].take().unwrap().send(()).unwrap();
            order.push(set.join_next().await.unwrap().unwrap());
        }
        assert_eq!(order, vec![1, 2, 0]);
        assert!(set.join_next().await.is_none());
        assert!(set.is_empty());

        let (tx, rx) = oneshot::channel::<()>();
        let mut set = JoinSet::new();
        let abort = set.spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        drop(set);
        assert_eq!(
            rx.await,
            Err(oneshot::RecvError),
            "the task was aborted and dropped"
        );
        // The future is dropped just before the task is marked finished.
        let finished = time::timeout(Duration::from_secs(5), async {
            while !abort.is_finished() {
                sprint_core::task::yield_now().await;
            }
        })
        .await;
        assert!(finished.is_ok(), "the aborted task finishes");
    });
}

#[test]
fn select_races_sprint_futures() {
    let rt = common::rt(Level::Basic, 2);
    rt.block_on(async {
        let (_tx, rx) = oneshot::channel::<u8>();
        let slow = pin!(rx);
        let fast = pin!(time::sleep(Duration::from_millis(5)));
        match select(slow, fast).await {
            Either::Right(((), _)) => {}
            Either::Left(_) => panic!("the receiver has no value"),
        }
        let (tx, mut rx) = mpsc::channel::<u8>(1);
        tx.send(4).await.unwrap();
        let got = futures::select! {
            v = futures::FutureExt::fuse(rx.recv()) => v,
            _ = futures::FutureExt::fuse(time::sleep(Duration::from_secs(5))) => None,
        };
        assert_eq!(got, Some(4));
    });
}
