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
    /// poll's end), checked against the stall threshold every time; one in
    /// `sample_every` polls goes into the duration histogram, and a task
    /// stamped when queued records its schedule delay.
    #[inline]
    pub(super) fn run_task_measured(&self, task: TaskRef, clock: crate::metrics::Ticks) {
        let m = &*self.shared.metrics;
        let start = self.last_tick.get();
        let header = task.header();
        let queued = header.queued_at.load(Relaxed);
        if queued != 0 {
            header.queued_at.store(0, Relaxed);
            m.schedule_delay
                .record_single_writer(clock.nanos(queued, start));
        }
        // `polls` counts every poll already: sample on it.
        // (`sample_every` is a power of two: this is a mask, no division.)
        let sampled = self.shared.counters.polls.load(Relaxed) & self.sample_mask == 0;
        m.polling_since.store(start, Relaxed);
        harness::run(task, |header| {
            let end = clock.now();
            self.last_tick.set(end);
            if end.wrapping_sub(start) > self.stall_ticks {
                self.stalled(header, clock.nanos(start, end));
            }
            if sampled {
                let ns = clock.nanos(start, end);
                m.poll.record_single_writer(ns);
                // Busy time, estimated from the sampled polls.
                bump(&self.shared.counters.busy_ns, ns * m.sample_every as u64);
            }
        });
        m.polling_since.store(0, Relaxed);
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
