//! `health()`: the problems a runtime can see in itself.

use crate::Observed;
use serde::Serialize;

/// One problem `health()` found.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A pinned worker's CPU affinity was changed from outside.
    #[error("worker {worker} was pinned to CPU {cpu} but its affinity is now {now:?} (changed from outside)")]
    AffinityDrift {
        /// The worker.
        worker: usize,
        /// Its CPU.
        cpu: usize,
        /// The affinity the kernel reports now.
        now: Vec<usize>,
    },
    /// A worker's scheduling class or priority was changed from outside.
    #[error("worker {worker} runs with scheduling policy {now_policy} priority {now_priority}, not {policy} priority {priority} as tuned (changed from outside)")]
    SchedulingDrift {
        /// The worker.
        worker: usize,
        /// The policy it was tuned to.
        policy: i32,
        /// The priority it was tuned to.
        priority: i32,
        /// The policy now.
        now_policy: i32,
        /// The priority now.
        now_priority: i32,
    },
    /// More live tasks than `health_max_tasks`: a leak, or a backlog.
    #[error("{alive} live tasks, above the threshold of {threshold} (a leak?)")]
    TooManyTasks {
        /// Live tasks.
        alive: u64,
        /// `health_max_tasks`.
        threshold: u64,
    },
    /// The workers' arenas together above 90 % of their capacity (the
    /// budget's share): task and buffer allocations start to fall back to
    /// the global allocator.
    #[error("arena memory at {percent:.1} % of the budget ({used} of {capacity} bytes)")]
    MemoryHigh {
        /// Bytes used.
        used: u64,
        /// The budget's bytes.
        capacity: u64,
        /// `used` over `capacity`, in percent.
        percent: f64,
    },
    /// The process's resident memory above 90 % of its memory limit (the
    /// cgroup's, else RAM): near the point where the kernel kills it.
    #[error("resident memory at {percent:.1} % of {limit} ({rss} of {limit_bytes} bytes): the kernel kills the process at the limit")]
    ResidentHigh {
        /// Resident bytes (/proc/self/statm).
        rss: u64,
        /// The limit's bytes.
        limit_bytes: u64,
        /// The limit and where it was read.
        limit: String,
        /// `rss` over `limit_bytes`, in percent.
        percent: f64,
    },
    /// Polls ran past the stall threshold.
    #[error("{count} task poll(s) ran past the stall threshold; the last: {last}")]
    Stalls {
        /// How many so far.
        count: u64,
        /// The last one, in words.
        last: String,
    },
    /// A worker is inside one poll for longer than the stall threshold now.
    #[error("worker {worker} has been inside one task poll for {millis} ms (stall threshold {threshold_us} µs)")]
    StuckPoll {
        /// The worker.
        worker: usize,
        /// For how long.
        millis: u64,
        /// The threshold.
        threshold_us: u64,
    },
    /// Real-time workers run with kernel RT throttling off: a busy-polling
    /// one can starve the machine.
    #[error("{workers} worker(s) run real-time while kernel RT throttling is off (kernel.sched_rt_runtime_us = -1): a busy-polling one can starve the machine")]
    RtThrottlingOff {
        /// Real-time workers.
        workers: usize,
    },
    /// A real-time worker busy-polls: RT throttling takes its CPU away
    /// for part of every period.
    #[error("worker {worker} busy-polls at a real-time priority: kernel RT throttling takes its CPU for {throttled_us} µs of every {period_us} µs")]
    RtThrottled {
        /// The worker.
        worker: usize,
        /// µs per period the kernel keeps from real-time tasks.
        throttled_us: i64,
        /// The period, µs.
        period_us: i64,
    },
}

impl Observed {
    /// The problems this runtime sees now (empty when healthy): settings
    /// changed from outside (affinity, scheduling class), live tasks above
    /// `health_max_tasks`, arena memory above 90 % of the budget, resident
    /// memory above 90 % of the memory limit (cgroup or RAM), stalls
    /// (past or in progress), and real-time workers facing RT throttling.
    pub fn health(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let config = self.handle.config();
        #[cfg(target_os = "linux")]
        let idle = self.handle.idle().0;
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut rt_workers = 0;
        for w in self.handle.worker_stats() {
            // Affinity and scheduling classes are read per thread on Linux.
            #[cfg(target_os = "linux")]
            let tid = w.tid;
            #[cfg(target_os = "linux")]
            if tid > 0 {
                if let Some(cpu) = w.cpu {
                    if let Ok(now) = sprint_os::thread::affinity(tid) {
                        if now != [cpu] {
                            out.push(Problem::AffinityDrift {
                                worker: w.index,
                                cpu,
                                now,
                            });
                        }
                    }
                }
                let expected = self.expected_sched(w.index);
                let now = sprint_os::thread::sched(tid)
                    .ok()
                    .map(|(p, q)| (p & !libc::SCHED_RESET_ON_FORK, q));
                if let (Some((policy, priority)), Some((np, nq))) = (expected, now) {
                    let policy = policy & !libc::SCHED_RESET_ON_FORK;
                    if (policy, priority) != (np, nq) {
                        out.push(Problem::SchedulingDrift {
                            worker: w.index,
                            policy,
                            priority,
                            now_policy: np,
                            now_priority: nq,
                        });
                    }
                    if policy == libc::SCHED_FIFO || policy == libc::SCHED_RR {
                        rt_workers += 1;
                        if let Some((r, p)) = sprint_os::thread::rt_throttling() {
                            if r >= 0 && r < p && idle != sprint_core::config::IdleStrategy::Park {
                                out.push(Problem::RtThrottled {
                                    worker: w.index,
                                    throttled_us: p - r,
                                    period_us: p,
                                });
                            }
                        }
                    }
                }
            }
            if let Some(ns) = w.polling_for_ns {
                if ns > config.stall_threshold_us.saturating_mul(1_000) {
                    out.push(Problem::StuckPoll {
                        worker: w.index,
                        millis: ns / 1_000_000,
                        threshold_us: config.stall_threshold_us,
                    });
                }
            }
        }
        #[cfg(target_os = "linux")]
        let throttling_off = sprint_os::thread::rt_throttling().is_some_and(|(r, _)| r == -1);
        #[cfg(not(target_os = "linux"))]
        let throttling_off = false;
        if rt_workers > 0 && throttling_off {
            out.push(Problem::RtThrottlingOff {
                workers: rt_workers,
            });
        }
        let stats = self.stats();
        if stats.tasks.alive > config.health_max_tasks {
            out.push(Problem::TooManyTasks {
                alive: stats.tasks.alive,
                threshold: config.health_max_tasks,
            });
        }
        let m = stats.memory;
        if m.arena_capacity > 0 && m.arena_used * 10 > m.arena_capacity * 9 {
            out.push(Problem::MemoryHigh {
                used: m.arena_used,
                capacity: m.arena_capacity,
                percent: m.arena_used as f64 * 100.0 / m.arena_capacity as f64,
            });
        }
        if let (Some(limit), Some(rss)) =
            (&self.report.memory_limit, sprint_os::fit::resident_bytes())
        {
            if limit.bytes > 0 && rss * 10 > limit.bytes * 9 {
                out.push(Problem::ResidentHigh {
                    rss,
                    limit_bytes: limit.bytes,
                    limit: limit.to_string(),
                    percent: rss as f64 * 100.0 / limit.bytes as f64,
                });
            }
        }
        if stats.stalls > 0 {
            out.push(Problem::Stalls {
                count: stats.stalls,
                last: stats.last_stall.unwrap_or_default(),
            });
        }
        out
    }
}
