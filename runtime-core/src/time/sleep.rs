use super::now;
use super::queue::TimerKey;
use crate::context;
use crate::coop;
use crate::sched::worker::WorkerShared;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Waits until `duration` has passed.
///
/// ```
/// # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
/// rt.block_on(async {
///     let start = std::time::Instant::now();
///     sprint_core::time::sleep(std::time::Duration::from_millis(5)).await;
///     assert!(start.elapsed() >= std::time::Duration::from_millis(5));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(now() + duration)
}

/// Waits until `deadline` (a `std::time::Instant` or a
/// [`sprint::time::Instant`](super::Instant)).
pub fn sleep_until(deadline: impl Into<Instant>) -> Sleep {
    Sleep {
        deadline: deadline.into(),
        registration: None,
        fired: false,
    }
}

/// The future of [`sleep`] and [`sleep_until`]. Fused: once it has
/// completed, `futures::select!` skips it (until `reset` moves it).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    registration: Option<(Arc<WorkerShared>, TimerKey)>,
    /// Completed as a future (for `FusedFuture`); `reset` clears it.
    fired: bool,
}

impl Sleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// True once the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        now() >= self.deadline
    }

    /// Moves the deadline.
    pub fn reset(&mut self, deadline: impl Into<Instant>) {
        self.unregister();
        self.deadline = deadline.into();
        self.fired = false;
    }

    fn unregister(&mut self) {
        if let Some((worker, key)) = self.registration.take() {
            worker.timers.lock().remove(key);
        }
    }

    pub(crate) fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let coop = std::task::ready!(coop::poll_proceed(cx));
        if now() >= self.deadline {
            self.unregister();
            coop.made_progress();
            return Poll::Ready(());
        }
        match &self.registration {
            Some((worker, key)) => worker.timers.lock().update(*key, cx.waker()),
            None => {
                let (worker, own) = context::timer_worker();
                let mut q = worker.timers.lock();
                let Some(key) = q.insert(self.deadline, cx.waker().clone()) else {
                    drop(q);
                    panic!("a Sprint timer was polled after its runtime shut down");
                };
                let earlier = worker.timer_registered(self.deadline);
                drop(q);
                if earlier && !own {
                    worker.parker.notify();
                }
                self.registration = Some((worker, key));
            }
        }
        Poll::Pending
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let r = this.poll_elapsed(cx);
        this.fired |= r.is_ready();
        r
    }
}

impl futures_core::future::FusedFuture for Sleep {
    fn is_terminated(&self) -> bool {
        self.fired
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}
