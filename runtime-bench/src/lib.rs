//! Sprint's benchmarks. The criterion micro-benchmarks (`benches/`) run the
//! same workloads, written once here, on Sprint, tokio, monoio and glommio.
//! The relay load generator and the report arrive with the relay issue.

use futures::task::AtomicWaker;
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Tasks spawned before their handles are awaited.
pub const BATCH: usize = 256;

/// Spawns `iters` empty tasks with `spawn`, in batches of [`BATCH`], and
/// awaits every handle; returns the time taken.
pub async fn spawn_join<H: Future>(iters: u64, spawn: impl Fn() -> H) -> Duration {
    let mut handles: Vec<H> = Vec::with_capacity(BATCH);
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH as u64);
        for _ in 0..n {
            handles.push(spawn());
        }
        for h in handles.drain(..) {
            h.await;
        }
        left -= n;
    }
    start.elapsed()
}

/// A one-bit signal between two tasks of one thread.
#[derive(Default, Debug)]
pub struct LocalFlag {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl LocalFlag {
    /// Sets the flag and wakes the waiter.
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow().as_ref() {
            w.wake_by_ref();
        }
    }

    /// Waits for the flag, then clears it.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                return Poll::Ready(());
            }
            let mut slot = self.waker.borrow_mut();
            match slot.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }
}

/// The same signal for runtimes whose tasks must be `Send`.
#[derive(Default, Debug)]
pub struct SendFlag {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl SendFlag {
    /// Sets the flag and wakes the waiter.
    pub fn notify(&self) {
        self.set.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Waits for the flag, then clears it.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.set.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
    }
}

/// Two tasks wake each other `iters` times (two wakes and two polls per
/// round trip); `spawn` starts a task and returns something to await.
pub async fn ping_pong_local<H, S>(iters: u64, spawn: S) -> Duration
where
    H: Future,
    S: Fn(std::pin::Pin<Box<dyn Future<Output = ()>>>) -> H,
{
    let a = Rc::new(LocalFlag::default());
    let b = Rc::new(LocalFlag::default());
    let start = Instant::now();
    let (a2, b2) = (a.clone(), b.clone());
    let pong = spawn(Box::pin(async move {
        for _ in 0..iters {
            b2.wait().await;
            a2.notify();
        }
    }));
    let ping = spawn(Box::pin(async move {
        for _ in 0..iters {
            b.notify();
            a.wait().await;
        }
    }));
    ping.await;
    pong.await;
    start.elapsed()
}

/// [`ping_pong_local`] for `Send` tasks.
pub async fn ping_pong_send<H, S>(iters: u64, spawn: S) -> Duration
where
    H: Future,
    S: Fn(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> H,
{
    let a = Arc::new(SendFlag::default());
    let b = Arc::new(SendFlag::default());
    let start = Instant::now();
    let (a2, b2) = (a.clone(), b.clone());
    let pong = spawn(Box::pin(async move {
        for _ in 0..iters {
            b2.wait().await;
            a2.notify();
        }
    }));
    let ping = spawn(Box::pin(async move {
        for _ in 0..iters {
            b.notify();
            a.wait().await;
        }
    }));
    ping.await;
    pong.await;
    start.elapsed()
}
