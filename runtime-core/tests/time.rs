//! Timers: sleep, sleep_until, timeout, interval. Never early.

mod common;
use sprint_core::time::{self, MissedTickBehavior};
use sprint_core::{spawn, Level};
use std::time::{Duration, Instant};

#[test]
fn no_timer_fires_before_its_deadline() {
    for level in [Level::Basic, Level::Aggressive, Level::Enterprise] {
        let rt = common::rt(level, 2);
        rt.block_on(async {
            let mut hs = Vec::new();
            for i in 0..200u64 {
                hs.push(spawn(async move {
                    let d = Duration::from_micros((i * 7919) % 5000);
                    let start = Instant::now();
                    time::sleep(d).await;
                    start.elapsed() >= d
                }));
            }
            for h in hs {
                assert!(h.await.unwrap(), "{level}: a sleep ended early");
            }
        });
    }
}

#[test]
fn sleep_until_and_sleeps_awaited_in_block_on() {
    let rt = common::rt(Level::Standard, 1);
    let deadline = Instant::now() + Duration::from_millis(15);
    rt.block_on(time::sleep_until(deadline));
    assert!(Instant::now() >= deadline);
    let start = Instant::now();
    rt.block_on(time::sleep(Duration::from_millis(5)));
    assert!(start.elapsed() >= Duration::from_millis(5));
}

#[test]
fn timeout_elapses_or_returns_the_output() {
    let rt = common::rt(Level::Basic, 1);
    rt.block_on(async {
        let start = Instant::now();
        let r = time::timeout(Duration::from_millis(10), std::future::pending::<()>()).await;
        assert!(r.is_err(), "the pending future timed out");
        assert!(start.elapsed() >= Duration::from_millis(10));
        assert_eq!(r.unwrap_err().to_string(), "deadline has elapsed");
        let ok = time::timeout(Duration::from_secs(5), async { 8 }).await;
        assert_eq!(ok, Ok(8));
    });
}

#[test]
fn interval_ticks_every_period() {
    let rt = common::rt(Level::Aggressive, 1);
    rt.block_on(async {
        spawn(async {
            let start = Instant::now();
            let mut iv = time::interval(Duration::from_millis(5));
            iv.set_missed_tick_behavior(MissedTickBehavior::Burst);
            let first = iv.tick().await;
            assert!(first <= Instant::now());
            for k in 1..=4u32 {
                let t = iv.tick().await;
                assert_eq!(t, first + Duration::from_millis(5) * k);
                assert!(Instant::now() >= t, "tick {k} early");
            }
            assert!(start.elapsed() >= Duration::from_millis(20));
        })
        .await
        .unwrap()
    });
}

#[test]
fn dropped_sleeps_are_unregistered() {
    let rt = common::rt(Level::Basic, 1);
    rt.block_on(async {
        spawn(async {
            for _ in 0..10_000 {
                let r = time::timeout(Duration::from_secs(3600), async {}).await;
                assert!(r.is_ok());
            }
            // A short timer still fires promptly after many cancelled long ones.
            let start = Instant::now();
            time::sleep(Duration::from_millis(2)).await;
            assert!(start.elapsed() < Duration::from_secs(5));
        })
        .await
        .unwrap()
    });
}

#[test]
#[should_panic(expected = "outside a Sprint runtime")]
fn a_timer_polled_outside_a_runtime_panics_clearly() {
    // An hour: a sleep already due when first polled completes without
    // registering, and a loaded machine can take a millisecond before it.
    futures::executor::block_on(time::sleep(Duration::from_secs(3600)));
}
