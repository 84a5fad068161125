//! The task state word: one `AtomicUsize` per task.
//!
//! ```text
//!  bit 0  RUNNING        a worker (or the blocking pool) owns the future and is polling it
//!  bit 1  COMPLETE       the future is gone; the stage holds the output (or nothing)
//!  bit 2  NOTIFIED       the task sits in exactly one run queue, inbox or blocking queue,
//!                        or (while RUNNING) must be queued again when the poll returns
//!  bit 3  CANCELLED      abort() was called; the next owner of RUNNING drops the future
//!  bit 4  JOIN_INTEREST  a JoinHandle exists; it, not the task, drops the output
//!  bit 5  JOIN_WAKER     the join-waker slot holds a waker and belongs to the task side
//!  bit 6  REMOTE_QUEUED  (pinned tasks) an inbox entry exists; it holds one reference
//!  bits 7… REFCOUNT      references: the owner list's, the JoinHandle's, each Waker's,
//!                        a pinned task's inbox entry
//! ```
//!
//! Two kinds of task use the word differently:
//! * *Stealable* tasks (`Send`, at the stealing levels) may run on any
//!   worker, so RUNNING and NOTIFIED live here and every wake and poll is a
//!   compare-and-swap.
//! * *Pinned* tasks (everything else) only ever run on their owner's
//!   thread. Their running and queued flags live in the header's `local`
//!   cell, touched by that thread alone, so a wake or a poll on the owner
//!   costs no atomic read-modify-write; RUNNING and NOTIFIED stay clear
//!   here. A wake from another thread sets REMOTE_QUEUED, takes a
//!   reference and goes through the owner's inbox; the owner turns it into
//!   a local wake and drops that reference.
//!
//! Invariants:
//! * COMPLETE is never cleared, and once set RUNNING and NOTIFIED stay clear.
//! * Only the thread that moved the word to RUNNING touches the future.
//! * A task that is not COMPLETE is in its worker's owned list, which holds
//!   one reference, so the count cannot reach zero before completion; queue
//!   entries therefore need no reference of their own (NOTIFIED marks them).
//!   The count reaching zero frees the cell.
//! * While JOIN_WAKER is set only the task side reads the slot; while it is
//!   clear only the JoinHandle writes it.
//! * The output belongs to the JoinHandle if JOIN_INTEREST was set when
//!   COMPLETE was set; otherwise the task side drops it at completion.

use std::sync::atomic::{AtomicUsize, Ordering::*};

pub(crate) const RUNNING: usize = 1 << 0;
pub(crate) const COMPLETE: usize = 1 << 1;
pub(crate) const NOTIFIED: usize = 1 << 2;
pub(crate) const CANCELLED: usize = 1 << 3;
pub(crate) const JOIN_INTEREST: usize = 1 << 4;
pub(crate) const JOIN_WAKER: usize = 1 << 5;
pub(crate) const REMOTE_QUEUED: usize = 1 << 6;
const REF_SHIFT: u32 = 7;
pub(crate) const REF_ONE: usize = 1 << REF_SHIFT;

/// A snapshot of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(pub(crate) usize);

impl Snapshot {
    pub(crate) fn has(self, bit: usize) -> bool {
        self.0 & bit != 0
    }

    pub(crate) fn refs(self) -> usize {
        self.0 >> REF_SHIFT
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.has(RUNNING))
            .field("complete", &self.has(COMPLETE))
            .field("notified", &self.has(NOTIFIED))
            .field("cancelled", &self.has(CANCELLED))
            .field("join_interest", &self.has(JOIN_INTEREST))
            .field("join_waker", &self.has(JOIN_WAKER))
            .field("refs", &self.refs())
            .finish()
    }
}

/// What a waker must do after [`State::transition_to_notified`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Notify {
    /// The task was idle: the caller queues it.
    Schedule,
    /// Already queued, running (the runner re-queues it) or complete.
    Nothing,
}

/// The outcome of [`State::transition_to_running`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Run {
    /// Poll the future.
    Poll,
    /// Drop the future: the task was aborted.
    Cancel,
    /// Someone else owns or finished the task; leave it.
    Skip,
}

/// The outcome of [`State::transition_to_idle`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Parked until a waker fires.
    Ok,
    /// Woken while running: queue it again (NOTIFIED stays set).
    Notified,
    /// Aborted while running: drop the future now.
    Cancelled,
}

#[derive(Debug)]
pub(crate) struct State(AtomicUsize);

impl State {
    /// A fresh stealable task: queued, with a JoinHandle, and two
    /// references (the owner list's and the JoinHandle's).
    pub(crate) fn new() -> State {
        State(AtomicUsize::new(NOTIFIED | JOIN_INTEREST | (2 * REF_ONE)))
    }

    /// A fresh pinned task, queued on its owner's thread.
    pub(crate) fn new_pinned() -> State {
        State(AtomicUsize::new(JOIN_INTEREST | (2 * REF_ONE)))
    }

    /// A fresh pinned task sent to its owner's inbox, which holds a third
    /// reference.
    pub(crate) fn new_pinned_remote() -> State {
        State(AtomicUsize::new(
            REMOTE_QUEUED | JOIN_INTEREST | (3 * REF_ONE),
        ))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    fn update<R>(&self, mut f: impl FnMut(usize) -> (Option<usize>, R)) -> (Snapshot, R) {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, out) = f(cur);
            let Some(next) = next else {
                return (Snapshot(cur), out);
            };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return (Snapshot(cur), out),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Popped from a queue: take ownership of the future.
    pub(crate) fn transition_to_running(&self) -> Run {
        self.update(|s| {
            if s & (RUNNING | COMPLETE) != 0 {
                return (None, Run::Skip);
            }
            let next = (s & !NOTIFIED) | RUNNING;
            let run = if s & CANCELLED != 0 {
                Run::Cancel
            } else {
                Run::Poll
            };
            (Some(next), run)
        })
        .1
    }

    /// The poll returned `Pending`.
    pub(crate) fn transition_to_idle(&self) -> Idle {
        self.update(|s| {
            debug_assert!(s & RUNNING != 0);
            if s & CANCELLED != 0 {
                return (None, Idle::Cancelled);
            }
            let next = s & !RUNNING;
            let out = if s & NOTIFIED != 0 {
                Idle::Notified
            } else {
                Idle::Ok
            };
            (Some(next), out)
        })
        .1
    }

    /// The future finished or was dropped: clear RUNNING and NOTIFIED, set
    /// COMPLETE. In the common case (a JoinHandle waits without a waker),
    /// the owner list's reference goes in the same operation, since the
    /// task side has nothing more to do: then the second value is true.
    /// Returns the word as it was.
    pub(crate) fn transition_to_complete(&self) -> (Snapshot, bool) {
        self.update(|s| {
            debug_assert!(s & COMPLETE == 0);
            let done = (s & !(RUNNING | NOTIFIED)) | COMPLETE;
            if s & (JOIN_INTEREST | JOIN_WAKER) == JOIN_INTEREST {
                (Some(done - REF_ONE), true)
            } else {
                (Some(done), false)
            }
        })
    }

    /// abort() of a pinned task: true if it was not complete nor already
    /// cancelled.
    pub(crate) fn set_cancelled(&self) -> bool {
        self.update(|s| {
            if s & (COMPLETE | CANCELLED) != 0 {
                (None, false)
            } else {
                (Some(s | CANCELLED), true)
            }
        })
        .1
    }

    /// A wake of a pinned task from another thread: true if the caller
    /// must put it in the owner's inbox, with the reference taken here.
    pub(crate) fn set_remote_queued(&self) -> bool {
        self.update(|s| {
            if s & (COMPLETE | REMOTE_QUEUED) != 0 {
                (None, false)
            } else {
                (Some((s | REMOTE_QUEUED) + REF_ONE), true)
            }
        })
        .1
    }

    /// The owner took a pinned task out of its inbox.
    pub(crate) fn clear_remote_queued(&self) {
        self.0.fetch_and(!REMOTE_QUEUED, AcqRel);
    }

    /// A waker fired.
    pub(crate) fn transition_to_notified(&self) -> Notify {
        self.update(|s| {
            if s & (COMPLETE | NOTIFIED) != 0 {
                (None, Notify::Nothing)
            } else if s & RUNNING != 0 {
                (Some(s | NOTIFIED), Notify::Nothing)
            } else {
                (Some(s | NOTIFIED), Notify::Schedule)
            }
        })
        .1
    }

    /// abort(): mark cancelled; queue the task if it is idle so that its
    /// owner drops the future.
    pub(crate) fn transition_to_cancelled(&self) -> Notify {
        self.update(|s| {
            if s & (COMPLETE | CANCELLED) != 0 {
                (None, Notify::Nothing)
            } else if s & (RUNNING | NOTIFIED) != 0 {
                (Some(s | CANCELLED), Notify::Nothing)
            } else {
                (Some(s | CANCELLED | NOTIFIED), Notify::Schedule)
            }
        })
        .1
    }

    /// Shutdown: take the future of a task that is not running, whatever
    /// its queue state, to drop it. True when the caller now owns it.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        self.update(|s| {
            if s & (RUNNING | COMPLETE) != 0 {
                (None, false)
            } else {
                (Some((s & !NOTIFIED) | RUNNING | CANCELLED), true)
            }
        })
        .1
    }

    /// The JoinHandle is dropped. Returns true when the output is complete
    /// and therefore the handle's to drop.
    pub(crate) fn unset_join_interest(&self) -> bool {
        self.update(|s| {
            debug_assert!(s & JOIN_INTEREST != 0);
            (Some(s & !JOIN_INTEREST), s & COMPLETE != 0)
        })
        .1
    }

    /// The JoinHandle of a complete task goes: clear JOIN_INTEREST and drop
    /// its reference in one operation. True when that was the last.
    pub(crate) fn drop_join_interest_and_ref(&self) -> bool {
        let prev = Snapshot(self.0.fetch_sub(JOIN_INTEREST + REF_ONE, AcqRel));
        debug_assert!(prev.has(JOIN_INTEREST) && prev.has(COMPLETE));
        prev.refs() == 1
    }

    /// The JoinHandle stored a waker in the slot: hand the slot to the task.
    /// Fails (returning the snapshot) when the task completed meanwhile.
    pub(crate) fn set_join_waker(&self) -> Result<(), Snapshot> {
        let (prev, ok) = self.update(|s| {
            debug_assert!(s & JOIN_WAKER == 0);
            if s & COMPLETE != 0 {
                (None, false)
            } else {
                (Some(s | JOIN_WAKER), true)
            }
        });
        if ok {
            Ok(())
        } else {
            Err(prev)
        }
    }

    /// The JoinHandle wants to replace its waker: take the slot back.
    pub(crate) fn unset_join_waker(&self) -> Result<(), Snapshot> {
        let (prev, ok) = self.update(|s| {
            debug_assert!(s & JOIN_WAKER != 0);
            if s & COMPLETE != 0 {
                (None, false)
            } else {
                (Some(s & !JOIN_WAKER), true)
            }
        });
        if ok {
            Ok(())
        } else {
            Err(prev)
        }
    }

    pub(crate) fn ref_inc(&self) {
        let prev = self.0.fetch_add(REF_ONE, Relaxed);
        if prev > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Drops `n` references; true when they were the last.
    pub(crate) fn ref_dec(&self, n: usize) -> bool {
        let prev = Snapshot(self.0.fetch_sub(n * REF_ONE, AcqRel));
        debug_assert!(prev.refs() >= n);
        prev.refs() == n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_wake_of_pinned_task_queues_once_with_a_reference() {
        let s = State::new_pinned();
        assert!(s.set_remote_queued());
        assert!(!s.set_remote_queued());
        assert_eq!(s.load().refs(), 3);
        s.clear_remote_queued();
        assert!(s.set_remote_queued());
    }

    #[test]
    fn completion_with_a_join_waker_keeps_the_list_reference() {
        let s = State::new_pinned();
        assert!(s.set_join_waker().is_ok());
        let (prev, released) = s.transition_to_complete();
        assert!(prev.has(JOIN_WAKER) && !released);
        assert_eq!(s.load().refs(), 2);
        assert!(!s.set_cancelled());
        assert!(!s.set_remote_queued());
    }

    #[test]
    fn fresh_task_is_queued_with_two_refs() {
        let s = State::new().load();
        assert!(s.has(NOTIFIED) && s.has(JOIN_INTEREST));
        assert!(!s.has(RUNNING) && !s.has(COMPLETE));
        assert_eq!(s.refs(), 2);
    }

    #[test]
    fn wake_while_running_requeues_after_poll() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), Run::Poll);
        assert_eq!(s.transition_to_notified(), Notify::Nothing);
        assert_eq!(s.transition_to_idle(), Idle::Notified);
        assert_eq!(s.transition_to_running(), Run::Poll);
        assert_eq!(s.transition_to_idle(), Idle::Ok);
        assert_eq!(s.transition_to_notified(), Notify::Schedule);
        assert_eq!(s.transition_to_notified(), Notify::Nothing);
    }

    #[test]
    fn abort_of_idle_task_schedules_its_cancellation() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), Run::Poll);
        assert_eq!(s.transition_to_idle(), Idle::Ok);
        assert_eq!(s.transition_to_cancelled(), Notify::Schedule);
        assert_eq!(s.transition_to_running(), Run::Cancel);
        let (prev, released) = s.transition_to_complete();
        assert!(prev.has(CANCELLED));
        assert!(
            released,
            "a waiting JoinHandle without waker takes the list's reference"
        );
        assert!(s.load().has(COMPLETE));
        assert_eq!(s.transition_to_notified(), Notify::Nothing);
        assert_eq!(s.transition_to_cancelled(), Notify::Nothing);
    }

    #[test]
    fn join_waker_cannot_be_set_after_completion() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), Run::Poll);
        let (_, released) = s.transition_to_complete();
        assert!(released);
        assert!(s.set_join_waker().is_err());
        assert!(s.unset_join_interest());
        assert!(s.ref_dec(1));
    }
}
