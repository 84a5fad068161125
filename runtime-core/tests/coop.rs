//! The cooperative budget keeps a worker fair to its timers and tasks.

mod common;
use sprint_core::sync::mpsc;
use sprint_core::{task, time, Level};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

#[test]
fn a_hot_yield_loop_does_not_starve_a_timer_on_the_same_worker() {
    for level in [Level::Basic, Level::Enterprise] {
        let rt = common::rt(level, 1);
        let spins = rt.block_on(async {
            sprint_core::spawn_local_on(0, || async {
                let done = Rc::new(Cell::new(false));
                let d = done.clone();
                let timer = sprint_core::spawn_local(async move {
                    time::sleep(Duration::from_millis(10)).await;
                    d.set(true);
                });
                let mut spins = 0u64;
                while !done.get() {
                    task::yield_now().await;
                    spins += 1;
                }
                timer.await.unwrap();
                spins
            })
            .unwrap()
            .await
            .unwrap()
        });
        assert!(spins > 0, "{level}");
    }
}

#[test]
fn an_always_ready_receiver_yields_after_its_budget() {
    let rt = common::rt(Level::Basic, 1);
    let (seen_before_done, total) = rt.block_on(async {
        sprint_core::spawn_local_on(0, || async {
            let n = 100_000;
            let (tx, mut rx) = mpsc::local::channel(n);
            for i in 0..n {
                tx.try_send(i).unwrap();
            }
            drop(tx);
            let other_ran = Rc::new(Cell::new(None));
            let o = other_ran.clone();
            let counter = Rc::new(Cell::new(0usize));
            let c = counter.clone();
            let other = sprint_core::spawn_local(async move { o.set(Some(c.get())) });
            let mut total = 0;
            while let Some(v) = rx.recv().await {
                total += v;
                counter.set(counter.get() + 1);
            }
            other.await.unwrap();
            (other_ran.get().unwrap(), total)
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert!(
        seen_before_done < 100_000,
        "the other task ran before the receiver drained everything"
    );
    assert_eq!(total, (0..100_000).sum::<usize>());
}

#[test]
fn consume_budget_makes_a_plain_loop_yield() {
    let rt = common::rt_with(Level::Basic, |c| {
        c.workers = Some(1);
        c.coop_budget = 4;
    });
    let interleaved = rt.block_on(async {
        sprint_core::spawn_local_on(0, || async {
            let flag = Rc::new(Cell::new(false));
            let f = flag.clone();
            let other = sprint_core::spawn_local(async move { f.set(true) });
            let mut iterations = 0;
            while !flag.get() {
                task::consume_budget().await;
                iterations += 1;
            }
            other.await.unwrap();
            iterations
        })
        .unwrap()
        .await
        .unwrap()
    });
    // Four units, then a yield in which the other task runs, then one more.
    assert_eq!(interleaved, 5, "yielded once its budget of 4 was spent");
}
