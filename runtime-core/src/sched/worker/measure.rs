//! Timing polls: the poll clock, the duration and schedule-delay
//! histograms, busy time, and the stall detector that names the task that
//! held the core.
//!
//! With metrics on, a poll costs one clock read: its start is the last
//! poll's end (`last_tick`), restarted by [`Core::resume_clock`] after time
//! not spent polling. One poll in `sample_every` is recorded; every poll is
//! checked against the stall threshold.

use super::{bump, Core};
use crate::task::harness;
use crate::task::raw::TaskRef;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

impl Core {
    /// A poll measured: one clock read at its end (its start is the last
    /// poll's end), checked against the stall threshold every time; the
    /// poll numbered `n` is timed into the duration histogram when
    /// `n & sample_mask == 0` (one in `sample_every`), and a task stamped
    /// when queued records its schedule delay. What is rare (a stamped
    /// task, a timed poll, a stall) is out of line, so the common poll
    /// pays a clock read, a compare and two stores.
    #[inline]
    pub(super) fn run_task_measured(&self, task: TaskRef, clock: crate::metrics::Ticks, n: u64) {
        let m = &*self.shared.metrics;
        let start = self.last_tick.get();
        let header = task.header();
        if header.queued_at.load(Relaxed) != 0 {
            self.record_schedule_delay(header, clock, start);
        }
        let sampled = n & self.sample_mask == 0;
        crate::metrics::set_sampling(sampled);
        m.polling_since.store(start, Relaxed);
        harness::run(task, |header| {
            let end = clock.now();
            self.last_tick.set(end);
            if sampled | (end.wrapping_sub(start) > self.stall_ticks) {
                self.poll_timed(header, clock, start, end, sampled);
            }
        });
        m.polling_since.store(0, Relaxed);
    }

    /// The task was stamped when queued: its schedule delay, up to `start`.
    #[cold]
    #[inline(never)]
    fn record_schedule_delay(
        &self,
        header: &crate::task::raw::Header,
        clock: crate::metrics::Ticks,
        start: u64,
    ) {
        let queued = header.queued_at.load(Relaxed);
        header.queued_at.store(0, Relaxed);
        self.shared
            .metrics
            .schedule_delay
            .record_single_writer(clock.nanos(queued, start));
    }

    /// A timed poll, or one past the stall threshold.
    #[inline(never)]
    fn poll_timed(
        &self,
        header: &crate::task::raw::Header,
        clock: crate::metrics::Ticks,
        start: u64,
        end: u64,
        sampled: bool,
    ) {
        let m = &*self.shared.metrics;
        let ns = clock.nanos(start, end);
        if end.wrapping_sub(start) > self.stall_ticks {
            self.stalled(header, ns);
            // A stall is always in the duration histogram, sampled or not.
            if !sampled {
                m.poll.record_single_writer(ns);
            }
        }
        if sampled {
            m.poll.record_single_writer(ns);
            // Busy time, estimated from the sampled polls.
            bump(&self.shared.counters.busy_ns, ns * m.sample_every as u64);
        }
    }

    /// Restarts the poll clock after time not spent polling (maintenance,
    /// idling).
    #[inline]
    pub(super) fn resume_clock(&self) {
        if let Some(clock) = self.clock {
            self.last_tick.set(clock.now());
        }
    }

    /// A poll ran past the stall threshold: count it and say which task.
    #[cold]
    fn stalled(&self, header: &crate::task::raw::Header, ns: u64) {
        if ns == 0 {
            // The clock went backwards (a thread moved between cores
            // whose counters differ): no stall.
            return;
        }
        let m = &self.shared.metrics;
        m.stalls.fetch_add(1, Relaxed);
        let meta = &header.meta;
        let name = meta.name.as_deref().unwrap_or("(unnamed)");
        let what = format!(
            "worker {}: task {} {:?} spawned at {} polled for {:?} (threshold {:?})",
            self.shared.index,
            meta.id,
            name,
            meta.location,
            Duration::from_nanos(ns),
            Duration::from_nanos(self.shared.stall_ns),
        );
        tracing::warn!(
            worker = self.shared.index,
            task.id = %meta.id,
            task.name = name,
            task.spawned_at = %meta.location,
            poll_us = ns / 1_000,
            threshold_us = self.shared.stall_ns / 1_000,
            "stall: a task poll ran past the threshold"
        );
        *m.last_stall.lock() = Some(what);
    }
}
