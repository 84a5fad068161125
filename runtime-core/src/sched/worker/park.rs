//! What an idle worker does: spin, steal, then sleep.
//!
//! The level's idle strategy decides: `park` sleeps at once,
//! `spin-then-park` spins for `idle_spin` first (checking the inbox, its
//! queues and the timers), `busy-poll` never sleeps. A sleep waits in the
//! I/O driver when there is one (so I/O wakes it), else on the park token,
//! until the next timer at the latest. The parker's prepare/check/park
//! protocol (`idle.rs`) makes sure a task queued from another thread
//! between the last look and the sleep is not missed.

use super::{bump, Core};
use crate::config::IdleStrategy;
use crate::sched::Scheduling;
use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

impl Core {
    pub(super) fn idle(&self) {
        let policy = &self.rt.policy;
        let idle = policy.idle();
        let spin = match idle {
            IdleStrategy::Park => None,
            IdleStrategy::SpinThenPark => Some(policy.idle_spin()),
            IdleStrategy::BusyPoll => Some(Duration::from_millis(1)),
        };
        if let Some(spin) = spin {
            let until = Instant::now() + spin;
            let mut i: u32 = 0;
            loop {
                std::hint::spin_loop();
                if self.shared.inbox.is_nonempty()
                    || self.shared.mesh_bell.is_rung()
                    || self.has_local_work()
                    || self.shutting_down()
                {
                    return;
                }
                i = i.wrapping_add(1);
                if i.is_multiple_of(64) {
                    if self.maintenance(true) {
                        return;
                    }
                    if Instant::now() >= until {
                        break;
                    }
                }
            }
        }
        if policy.scheduling() != Scheduling::ThreadPerCore && self.steal() {
            return;
        }
        if idle == IdleStrategy::BusyPoll {
            return;
        }
        self.park();
    }

    fn park(&self) {
        let (timeout, armed, paused_next) = {
            let mut q = self.shared.timers.lock();
            self.shared.refresh_deadline(&mut q);
            let next = q.next_deadline();
            let clock = &self.rt.clock;
            let now = clock.now();
            let timeout = match next {
                // A paused clock does not move while the worker sleeps:
                // sleep until woken (a wake, `advance`, or the last
                // `block_on` thread going idle).
                Some(d) if d > now && clock.is_paused() => None,
                _ => next.map(|d| d.saturating_duration_since(now)),
            };
            (
                timeout,
                self.shared.next_deadline.load(Acquire),
                next.filter(|_| clock.is_paused()),
            )
        };
        if timeout == Some(Duration::ZERO) {
            return;
        }
        let parker = &self.shared.parker;
        parker.prepare();
        self.rt.sleepers.fetch_add(1, SeqCst);
        // After `prepare`, whatever another thread queued or registered
        // before its `notify` is visible here (idle.rs): an inbox item, or
        // a timer earlier than the one this sleep was armed for, or the mesh
        // bell (mesh/bell.rs).
        if self.shared.inbox.is_nonempty()
            || self.shared.mesh_bell.is_rung()
            || self.shutting_down()
            || self.has_local_work()
            || self.shared.next_deadline.load(Acquire) < armed
        {
            parker.cancel();
        } else if let Some(next) = paused_next.filter(|_| self.rt.clock.busy.load(SeqCst) == 0) {
            // Nothing to do anywhere in the runtime and the clock paused:
            // jump to the next timer's deadline instead of sleeping.
            parker.cancel();
            self.rt.clock.advance_to(next);
        } else {
            bump(&self.shared.counters.parks, 1);
            // SAFETY: the cell's contract (owner_cell.rs); `is_some` calls
            // no code of ours.
            if unsafe { self.driver.with(|d| d.is_some()) } {
                parker.park_with(|| {
                    self.turn_driver(timeout);
                });
            } else {
                parker.park(timeout);
            }
        }
        self.rt.sleepers.fetch_sub(1, SeqCst);
    }
}
