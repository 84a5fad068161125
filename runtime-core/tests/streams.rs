//! The futures ecosystem: `futures::select!` takes Sleep, Timeout and
//! oneshot::Receiver without `.fuse()`, and `StreamExt` works on Interval,
//! the mpsc and broadcast receivers and JoinSet.

mod common;
use futures::StreamExt;
use sprint_core::sync::{broadcast, mpsc, oneshot, JoinSet};
use sprint_core::{spawn_local_on, spawn_on, time, Level};
use std::time::Duration;

#[test]
fn select_takes_fused_timers_and_oneshot_without_fuse() {
    let rt = common::rt(Level::Standard, 2);
    let order = rt.block_on(async {
        let (tx, mut rx) = oneshot::channel::<u8>();
        let mut sleep = time::sleep(Duration::from_millis(10));
        let mut to = time::timeout(Duration::from_millis(30), std::future::pending::<()>());
        spawn_on(1, async move { tx.send(7).unwrap() }).unwrap();
        let mut order = Vec::new();
        loop {
            futures::select! {
                v = rx => order.push(format!("oneshot {}", v.unwrap())),
                () = sleep => order.push("sleep".to_string()),
                r = to => order.push(format!("timeout {}", r.is_err())),
                complete => break,
            }
        }
        order.sort();
        order
    });
    // Each branch ran once (select! picks among ready ones at random, so
    // only the set is fixed): a completed future was never polled again.
    assert_eq!(order, ["oneshot 7", "sleep", "timeout true"]);
}

#[test]
fn interval_is_a_stream_of_tick_times() {
    let rt = common::rt(Level::Basic, 1);
    rt.block_on(async {
        let period = Duration::from_millis(2);
        let ticks: Vec<_> = time::interval(period).take(3).collect().await;
        assert_eq!(ticks.len(), 3);
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == period), "{ticks:?}");
    });
}

#[test]
fn mpsc_receivers_are_streams() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let (tx, rx) = mpsc::channel(2);
        spawn_on(1, async move {
            for i in 0..10 {
                tx.send(i).await.unwrap();
            }
        })
        .unwrap();
        assert_eq!(rx.collect::<Vec<_>>().await, (0..10).collect::<Vec<_>>());

        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send("a").unwrap();
        assert_eq!(rx.next().await, Some("a"));
        drop(tx);
        assert_eq!(rx.next().await, None);
    });
    let rt = common::rt(Level::Enterprise, 1);
    let got = rt.block_on(async {
        spawn_local_on(0, || async {
            let (tx, rx) = mpsc::local::unbounded_channel();
            for i in 0..3 {
                tx.send(std::rc::Rc::new(i)).unwrap();
            }
            drop(tx);
            rx.map(|v| *v).collect::<Vec<_>>().await
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(got, [0, 1, 2]);
}

#[test]
fn broadcast_receiver_streams_values_lag_and_end() {
    let rt = common::rt(Level::Basic, 1);
    rt.block_on(async {
        let (tx, rx) = broadcast::channel(2);
        for i in 0..4 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let items: Vec<_> = rx.collect().await;
        assert_eq!(items, [Err(broadcast::Lagged(2)), Ok(2), Ok(3)]);
    });
}

#[test]
fn join_set_streams_results_until_empty() {
    let rt = common::rt(Level::Standard, 2);
    rt.block_on(async {
        let mut set = JoinSet::new();
        for i in 0..5u32 {
            set.spawn(async move { i * i });
        }
        let mut got: Vec<u32> = (&mut set).map(|r| r.unwrap()).collect().await;
        got.sort();
        assert_eq!(got, [0, 1, 4, 9, 16]);
        assert!(set.next().await.is_none(), "empty");
    });
}
