//! A paused clock for tests: `#[sprint::test(start_paused = true)]`,
//! `time::pause`, `advance`, and the auto-advance when the runtime has
//! nothing to do, so an hour of timers passes at once and exactly.

use sprint::time::{self, ClockError, Instant};
use sprint::{Builder, Level};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

#[sprint::test(start_paused = true)]
async fn an_hour_of_timers_passes_at_once_and_exactly() {
    let wall = std::time::Instant::now();
    let start = Instant::now();
    time::sleep(HOUR).await;
    assert_eq!(
        Instant::now() - start,
        HOUR,
        "the clock moved to the deadline, no further"
    );
    // A timer on the worker, and a timeout that expires.
    let on_worker = sprint::spawn(async {
        let t = Instant::now();
        time::sleep(HOUR).await;
        Instant::now() - t
    });
    assert_eq!(on_worker.await.unwrap(), HOUR);
    let r = time::timeout(HOUR, std::future::pending::<()>()).await;
    assert!(r.is_err());
    assert_eq!(Instant::now() - start, 3 * HOUR);
    // Three hours of timers, and far less than one of them in real time.
    assert!(
        wall.elapsed() < Duration::from_secs(600),
        "{:?}",
        wall.elapsed()
    );
}

#[sprint::test(start_paused = true)]
async fn intervals_tick_on_the_paused_clock() {
    let start = Instant::now();
    let mut every = time::interval(Duration::from_secs(60));
    let mut ticks = Vec::new();
    for _ in 0..4 {
        ticks.push(Instant::from_std(every.tick().await) - start);
    }
    let want: Vec<Duration> = (0..4).map(|m| Duration::from_secs(60 * m)).collect();
    assert_eq!(ticks, want);
}

#[sprint::test(start_paused = true)]
async fn advance_moves_the_clock_by_hand_and_fires_what_is_due() {
    let start = Instant::now();
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    // The deadline is fixed here (start + 10 s), not when the task first
    // runs.
    let ten = time::sleep(Duration::from_secs(10));
    let sleeper = sprint::spawn(async move {
        ten.await;
        f.store(true, SeqCst);
    });
    time::advance(Duration::from_secs(4)).await.unwrap();
    assert_eq!(Instant::now() - start, Duration::from_secs(4));
    assert!(!fired.load(SeqCst), "not due yet");
    time::advance(Duration::from_secs(6)).await.unwrap();
    sleeper.await.unwrap();
    assert!(fired.load(SeqCst));
    assert_eq!(Instant::now() - start, Duration::from_secs(10));
    // Running again, from where it stood.
    time::resume().unwrap();
    assert!(Instant::now() - start >= Duration::from_secs(10));
    assert_eq!(time::resume(), Err(ClockError::NotPaused));
    assert_eq!(
        time::advance(Duration::from_secs(1)).await,
        Err(ClockError::NotPaused)
    );
}

#[test]
fn pausing_is_refused_with_the_reason() {
    assert_eq!(time::pause(), Err(ClockError::NoRuntime));
    let two = Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(2)
        .build()
        .unwrap();
    assert_eq!(
        two.block_on(async { time::pause() }),
        Err(ClockError::Workers { workers: 2 })
    );
    let one = Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(1)
        .build()
        .unwrap();
    one.block_on(async {
        time::pause().unwrap();
        assert_eq!(time::pause(), Err(ClockError::AlreadyPaused));
    });
    // Another runtime's clock is untouched, and so is the system's.
    let t = std::time::Instant::now();
    two.block_on(async { time::sleep(Duration::from_millis(5)).await });
    assert!(t.elapsed() >= Duration::from_millis(5));
}

#[test]
fn a_waker_kept_past_its_block_on_does_not_stop_the_clock() {
    let rt = Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(1)
        .build()
        .unwrap();
    // The first block_on's waker, woken after it returned.
    let stale = rt.block_on(std::future::poll_fn(|cx| {
        std::task::Poll::Ready(cx.waker().clone())
    }));
    stale.wake_by_ref();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let slept = rt.block_on(async {
            time::pause().unwrap();
            let start = Instant::now();
            time::sleep(HOUR).await;
            Instant::now() - start
        });
        let _ = tx.send(slept);
    });
    let slept = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the paused clock moved on by itself");
    assert_eq!(slept, HOUR);
    drop(stale);
}
