//! The cooperative budget.
//!
//! Before each poll the worker gives the task a budget of `coop_budget`
//! units (a level setting). Sprint's own resources (JoinHandle, channels,
//! timers, and `consume_budget`) spend one unit whenever they are ready;
//! once the budget is spent they answer `Pending` and wake the task at
//! once, so that a task whose resources are always ready still returns to
//! its worker, which then runs timers, the inbox and the other tasks.
//! Threads that are not workers have no budget.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

const UNLIMITED: u32 = u32::MAX;

thread_local! {
    static BUDGET: Cell<u32> = const { Cell::new(UNLIMITED) };
}

/// Gives the task about to be polled a fresh budget.
pub(crate) fn reset(units: u32) {
    BUDGET.with(|b| b.set(units));
}

/// Restores the unit taken by `poll_proceed` unless the operation made
/// progress.
#[must_use]
pub(crate) struct Coop {
    restore: bool,
}

impl Coop {
    pub(crate) fn made_progress(mut self) {
        self.restore = false;
    }
}

impl Drop for Coop {
    fn drop(&mut self) {
        if self.restore {
            BUDGET.with(|b| {
                let v = b.get();
                if v != UNLIMITED {
                    b.set(v + 1);
                }
            });
        }
    }
}

/// Takes one unit, or returns `Pending` (having woken the task) when the
/// budget is spent.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Coop> {
    BUDGET.with(|b| {
        let v = b.get();
        if v == 0 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            if v != UNLIMITED {
                b.set(v - 1);
            }
            Poll::Ready(Coop {
                restore: v != UNLIMITED,
            })
        }
    })
}

/// True while the current task may keep going without yielding.
pub fn has_budget_remaining() -> bool {
    BUDGET.with(|b| b.get() != 0)
}

/// Spends one unit of the task's budget, yielding if it is spent. Put it in
/// a loop that never awaits anything of Sprint's to keep that loop fair.
pub async fn consume_budget() {
    std::future::poll_fn(|cx| poll_proceed(cx).map(Coop::made_progress)).await
}

/// Yields once: the task goes to the back of its worker's run queue.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
