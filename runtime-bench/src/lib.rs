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

/// Tasks outstanding at once in the deep workload ([`spawn_join_deep`]).
pub const DEPTH: usize = 1 << 20;

/// What one deep round cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deep {
    /// Wall time of the spawns and the joins.
    pub elapsed: Duration,
    /// Minor page faults the thread took meanwhile (`None` off Linux).
    pub minor_faults: Option<u64>,
}

/// Minor page faults of the calling thread so far (getrusage
/// RUSAGE_THREAD); `None` off Linux.
pub fn thread_minor_faults() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero rusage is a valid value to be overwritten.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage fills the struct it is given.
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } == 0 {
            return Some(u.ru_minflt as u64);
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Spawns `depth` empty tasks with `spawn`, holding every handle, then
/// awaits them all in spawn order: the run queue and the task memory hold
/// `depth` tasks at once. The handles' vector is allocated and touched
/// before the clock starts, so the faults counted are the runtime's.
pub async fn spawn_join_deep<H: Future>(depth: usize, spawn: impl Fn() -> H) -> Deep {
    let mut handles: Vec<H> = Vec::with_capacity(depth);
    // SAFETY: zeroing the vector's own spare capacity (`depth` elements,
    // allocated above); its length stays 0, so nothing reads the bytes as
    // handles.
    unsafe { std::ptr::write_bytes(handles.as_mut_ptr(), 0, depth) };
    let faults = thread_minor_faults();
    let start = Instant::now();
    for _ in 0..depth {
        handles.push(spawn());
    }
    for h in handles.drain(..) {
        h.await;
    }
    let elapsed = start.elapsed();
    let minor_faults = thread_minor_faults()
        .zip(faults)
        .map(|(after, before)| after - before);
    Deep {
        elapsed,
        minor_faults,
    }
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
