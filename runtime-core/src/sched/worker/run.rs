//! The worker loop.
//!
//! Each turn: take the next task (`queue.rs`) and poll it with a fresh
//! coop budget (so a task that keeps waking itself yields after
//! `coop_budget` operations); every `event_interval` polls, and whenever
//! the queues run dry, do maintenance: turn the I/O driver without
//! blocking, fire due timers, take what other threads sent through the
//! inbox. With nothing found, steal if the policy allows (`steal.rs`),
//! else idle by the level's strategy (`park.rs`). The loop ends when the
//! runtime shuts down (`shutdown.rs`).
//!
//! What the loop promises (the tests below pin each): tasks run in the
//! order they were queued, a wake or a spawn queueing at the back; a task
//! gets `coop_budget` units per poll; due timers fire and the inbox is
//! taken at least every `event_interval` polls, even when the queues never
//! run dry; a worker parks only with its queues empty, and a wake from
//! another thread, or its next timer, brings it back.

use super::{bump, Core};
use crate::config::IdleStrategy;
use crate::coop;
use crate::sched::Scheduling;
use crate::task::harness;
use crate::task::raw::TaskRef;
use crossbeam_deque::Worker as Deque;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

impl Core {
    /// The worker loop; returns at shutdown, after cancelling every task.
    pub(crate) fn run(&self) {
        let interval = self.rt.policy.event_interval.max(1);
        let mut tick: u32 = 0;
        if self.deque.is_some() {
            // A thread's first steal registers it with crossbeam's epoch
            // collector (one allocation). A worker busy spawning steals
            // for the first time whenever it first runs dry, which was
            // inside a no-allocation test's window: register now, with a
            // steal from a deque of nobody's.
            let _ = Deque::<TaskRef>::new_fifo().stealer().steal();
        }
        self.resume_clock();
        loop {
            if let Some(task) = self.next_task() {
                self.run_task(task);
                tick = tick.wrapping_add(1);
                if tick.is_multiple_of(interval) {
                    self.maintenance(true);
                    self.publish();
                    if self.shutting_down() {
                        break;
                    }
                    self.resume_clock();
                }
                continue;
            }
            // A worker about to park skips the non-blocking look at I/O:
            // the park waits in the driver, which finds the same events
            // (and on io_uring submits and waits in one system call).
            if self.maintenance(self.rt.policy.idle() != IdleStrategy::Park) {
                self.resume_clock();
                continue;
            }
            if self.shutting_down() {
                break;
            }
            if self.rt.policy.scheduling() == Scheduling::WorkStealing && self.steal() {
                self.resume_clock();
                continue;
            }
            self.publish();
            self.idle();
            self.resume_clock();
        }
        self.publish();
        self.shutdown();
    }

    fn run_task(&self, task: TaskRef) {
        coop::reset(self.rt.policy.coop_budget);
        match self.clock {
            Some(clock) => self.run_task_measured(task, clock),
            None => harness::run(task, |_| {}),
        }
        bump(&self.shared.counters.polls, 1);
    }

    pub(super) fn shutting_down(&self) -> bool {
        self.rt.shutdown.load(Acquire)
    }

    /// Dispatches ready I/O (if `io`), fires due timers and takes the
    /// inbox. True if it found work.
    pub(super) fn maintenance(&self, io: bool) -> bool {
        if io {
            self.turn_driver(Some(Duration::ZERO));
        }
        let mut found = self.has_local_work();
        let due = self.shared.next_deadline.load(Acquire);
        if due != u64::MAX && self.shared.ns(Instant::now()) >= due {
            // SAFETY: the cell's contract (owner_cell.rs). Only this
            // function and nothing it calls borrows the timers' scratch
            // vector: a waker queues its task (other cells) or runs code
            // that cannot reach the worker loop. The vector is empty
            // between uses.
            found |= unsafe {
                self.wakers.with(|wakers| {
                    {
                        let mut q = self.shared.timers.lock();
                        let now = Instant::now();
                        let lateness = self
                            .shared
                            .metrics_on
                            .then_some(&self.shared.metrics.timer_lateness);
                        q.expire(now, wakers, lateness);
                        self.shared.refresh_deadline(&mut q);
                    }
                    bump(&self.shared.counters.timers_fired, wakers.len() as u64);
                    let fired = !wakers.is_empty();
                    for w in wakers.drain(..) {
                        w.wake();
                    }
                    fired
                })
            };
        }
        if self.shared.inbox.is_nonempty() {
            // SAFETY: the cell's contract (owner_cell.rs). The arrivals
            // scratch vector is borrowed only here and in `steal`, both
            // called only by the loop; `arrive` queues, links and drops
            // references, and no task runs. It is empty between uses.
            let n = unsafe {
                self.arrivals.with(|arrivals| {
                    let n = self.shared.inbox.drain_into(arrivals);
                    bump(&self.shared.counters.inbox_received, n as u64);
                    for task in arrivals.drain(..) {
                        self.arrive(task);
                    }
                    n
                })
            };
            found |= n > 0;
        }
        found
    }

    /// A task came through the inbox.
    fn arrive(&self, task: TaskRef) {
        let header = task.header();
        if header.stealable {
            self.push_local(task);
            return;
        }
        self.link_arrival(task);
        header.state.clear_remote_queued();
        harness::wake_local(self, task);
        // The inbox entry's reference.
        harness::drop_reference(task);
    }

    /// Turns the driver, if any; true if it has one.
    pub(super) fn turn_driver(&self, timeout: Option<Duration>) -> bool {
        // SAFETY: the cell's contract (owner_cell.rs); `turn` only wakes
        // tasks (queueing them), it never polls one, so it cannot reach the
        // driver again.
        unsafe {
            self.driver.with(|driver| {
                let Some(driver) = driver else {
                    return false;
                };
                if let Err(e) = driver.turn(timeout) {
                    tracing::warn!(worker = self.shared.index, error = %e, "the I/O driver failed to turn");
                }
                true
            })
        }
    }

    pub(super) fn publish(&self) {
        let c = &self.shared.counters;
        // SAFETY: the cell's contract (owner_cell.rs); `len` calls no code
        // of ours.
        let queued = unsafe { self.local.with(|q| q.len()) + self.overflow.with(|q| q.len()) }
            + self.deque.as_ref().map_or(0, |d| d.len());
        c.queue_depth.store(queued as u64, Relaxed);
        // SAFETY: as above.
        c.live_local_tasks
            .store(unsafe { self.list.with(|l| l.len()) } as u64, Relaxed);
    }
}
