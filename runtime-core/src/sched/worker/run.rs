//! The worker loop.
//!
//! Each turn: take the next task (`queue.rs`) and poll it with a fresh
//! coop budget (so a task that keeps waking itself yields after
//! `coop_budget` operations); every `event_interval` polls, and whenever
//! the queues run dry, do maintenance: turn the I/O driver without
//! blocking, fire due timers, take what other threads sent through the
//! inbox; publish what the turn sent over the mesh and answer the mesh's
//! bell. With nothing found, steal if the policy allows (`steal.rs`),
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
use std::cell::Cell;
use std::sync::atomic::Ordering::*;
use std::time::Duration;

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
        crate::metrics::set_sampling(false);
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
        crate::metrics::set_sampling(false);
    }

    fn run_task(&self, task: TaskRef) {
        coop::reset(self.rt.policy.coop_budget);
        // Only this worker writes its poll count: one load, one store.
        let polls = &self.shared.counters.polls;
        let n = polls.load(Relaxed);
        if self.task_spans {
            // Built per poll, from the task's id and name (the span keeps
            // copies, not references: the task may be freed by the poll).
            let meta = &task.header().meta;
            let span = tracing::info_span!(
                "task",
                id = meta.id.as_u64(),
                name = meta.name.as_deref().unwrap_or(""),
            );
            let _entered = span.enter();
            self.poll_task(task, n);
        } else {
            self.poll_task(task, n);
        }
        polls.store(n + 1, Relaxed);
    }

    #[inline(always)]
    fn poll_task(&self, task: TaskRef, n: u64) {
        match self.clock {
            Some(clock) => self.run_task_measured(task, clock, n),
            None => harness::run(task, |_| {}),
        }
    }

    pub(super) fn shutting_down(&self) -> bool {
        self.rt.shutdown.load(Acquire)
    }

    /// Dispatches ready I/O (if `io`), fires due timers and takes the
    /// inbox. True if it found work.
    pub(super) fn maintenance(&self, io: bool) -> bool {
        // What this turn sent over the mesh goes out first.
        self.mesh.end_turn();
        if io {
            self.turn_driver(Some(Duration::ZERO));
        }
        let mut found = self.has_local_work();
        let due = self.shared.next_deadline.load(Acquire);
        if due != u64::MAX && self.shared.ns(self.rt.clock.now()) >= due {
            // SAFETY: the cell's contract (owner_cell.rs). Only this
            // function and nothing it calls borrows the timers' scratch
            // vector: a waker queues its task (other cells) or runs code
            // that cannot reach the worker loop. The vector is empty
            // between uses.
            found |= unsafe {
                self.wakers.with(|wakers| {
                    {
                        let mut q = self.shared.timers.lock();
                        let now = self.rt.clock.now();
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
        found |= self.mesh.answer(&self.shared.mesh_bell);
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

    /// Turns the driver, if any; true if it has one and it turned (false
    /// too when reached from inside the driver's own turn, which is not
    /// entered twice).
    pub(crate) fn turn_driver(&self, timeout: Option<Duration>) -> bool {
        if self.in_turn.replace(true) {
            return false;
        }
        struct Out<'a>(&'a Cell<bool>);
        impl Drop for Out<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _out = Out(&self.in_turn);
        // SAFETY: the cell's contract (owner_cell.rs). This is the owner
        // thread (the core is reached only from its worker thread), and no
        // other borrow of the driver is live: the loop borrows it only
        // here and in `park`'s and shutdown's one-line looks, never around
        // a poll, so a task's poll (which may come here through
        // `driver::turn_now`) is outside any borrow; and `in_turn` turns
        // away a call from inside `turn` itself (`turn` only wakes tasks,
        // queueing them, and drops buffers the kernel is done with; a
        // buffer's `Drop` is the one way back here).
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

/// The loop's promises, checked on a real one-worker runtime without an
/// I/O driver. Every wait is on a condition with a generous deadline that
/// only a broken loop reaches; no assertion is about speed.
#[cfg(all(test, not(loom)))]
mod tests {
    use crate::config::{IdleStrategy, RtPolicy};
    use crate::{Config, Level, Runtime};
    use std::cell::{Cell, RefCell};
    use std::future::Future;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    /// Long enough for a loaded 2-core CI machine; reached only by a bug.
    const GIVE_UP: Duration = Duration::from_secs(30);

    /// One worker that parks when idle, at `Level::Basic`.
    fn runtime(f: impl FnOnce(&mut Config)) -> Runtime {
        let mut c = Config::for_level(Level::Basic);
        c.workers = Some(1);
        c.rt_policy = RtPolicy::None;
        c.idle = IdleStrategy::Park;
        f(&mut c);
        Runtime::new(c, None).expect("the runtime starts")
    }

    /// Runs the future `make` builds as a pinned task on worker 0; its
    /// output arrives on the receiver.
    fn start_on_worker<T, F>(
        rt: &Runtime,
        make: impl FnOnce() -> F + Send + 'static,
    ) -> mpsc::Receiver<T>
    where
        T: Send + 'static,
        F: Future<Output = T> + 'static,
    {
        let (tx, rx) = mpsc::channel();
        rt.handle()
            .spawn_local_on(0, move || async move {
                let _ = tx.send(make().await);
            })
            .expect("worker 0 exists");
        rx
    }

    fn finish<T>(rx: mpsc::Receiver<T>) -> T {
        rx.recv_timeout(GIVE_UP)
            .expect("the worker finished the test's task")
    }

    fn on_worker<T, F>(rt: &Runtime, make: impl FnOnce() -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: Future<Output = T> + 'static,
    {
        finish(start_on_worker(rt, make))
    }

    /// Polls `cond` until it holds; panics naming `what` at the deadline.
    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + GIVE_UP;
        while !cond() {
            assert!(Instant::now() < deadline, "gave up waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn tasks_run_in_the_order_they_were_queued_and_a_yield_goes_to_the_back() {
        let rt = runtime(|_| {});
        let log = on_worker(&rt, || async {
            let log = Rc::new(RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let log = log.clone();
                    crate::spawn_local(async move {
                        log.borrow_mut().push((i, "first poll"));
                        crate::yield_now().await;
                        log.borrow_mut().push((i, "after yield"));
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            log.take()
        });
        let expected: Vec<_> = (0..8)
            .map(|i| (i, "first poll"))
            .chain((0..8).map(|i| (i, "after yield")))
            .collect();
        assert_eq!(log, expected);
    }

    #[test]
    fn woken_tasks_run_in_the_order_of_their_wakes() {
        let rt = runtime(|_| {});
        let log = on_worker(&rt, || async {
            let log = Rc::new(RefCell::new(Vec::new()));
            let mut senders = Vec::new();
            let mut tasks = Vec::new();
            for i in 0..4 {
                let (tx, rx) = crate::sync::oneshot::channel::<()>();
                senders.push(Some(tx));
                let log = log.clone();
                tasks.push(crate::spawn_local(async move {
                    rx.await.unwrap();
                    log.borrow_mut().push(i);
                }));
            }
            // Behind the four: they run first and wait on their channels.
            crate::yield_now().await;
            for i in [3, 1, 2, 0] {
                senders[i].take().unwrap().send(()).unwrap();
            }
            for t in tasks {
                t.await.unwrap();
            }
            log.take()
        });
        assert_eq!(log, [3, 1, 2, 0]);
    }

    #[test]
    fn a_task_spawned_by_a_task_runs_after_the_queued_ones_without_a_park() {
        let rt = runtime(|_| {});
        let (log, parks_before, parks_after) = on_worker(&rt, || async {
            let parks = || crate::Handle::current().worker_stats()[0].parks;
            let before = parks();
            let log = Rc::new(RefCell::new(Vec::new()));
            let (l1, l2) = (log.clone(), log.clone());
            let c = Rc::new(Cell::new(None));
            let c_slot = c.clone();
            let a = crate::spawn_local(async move {
                l1.borrow_mut().push("a");
                let l3 = l1.clone();
                c_slot.set(Some(crate::spawn_local(async move {
                    l3.borrow_mut().push("c, spawned by a")
                })));
            });
            let b = crate::spawn_local(async move { l2.borrow_mut().push("b") });
            a.await.unwrap();
            b.await.unwrap();
            c.take().expect("a spawned c").await.unwrap();
            let after = parks();
            (log.take(), before, after)
        });
        assert_eq!(log, ["a", "b", "c, spawned by a"]);
        assert_eq!(
            parks_after, parks_before,
            "the worker slept while it had tasks queued"
        );
    }

    #[test]
    fn the_coop_budget_makes_a_self_waking_task_yield_after_its_units() {
        for budget in [4, 7] {
            let rt = runtime(|c| c.coop_budget = budget);
            let (seen_by_other, total) = on_worker(&rt, || async {
                let count = Rc::new(Cell::new(0u32));
                let c = count.clone();
                let hog = crate::spawn_local(async move {
                    for _ in 0..100 {
                        // Always ready while the budget lasts; once it is
                        // spent, it wakes its task and returns Pending.
                        crate::coop::consume_budget().await;
                        c.set(c.get() + 1);
                    }
                });
                let c = count.clone();
                let other = crate::spawn_local(async move { c.get() });
                let seen = other.await.unwrap();
                hog.await.unwrap();
                (seen, count.get())
            });
            assert_eq!(
                seen_by_other, budget,
                "the task queued behind the hog ran after exactly one poll's budget"
            );
            assert_eq!(total, 100);
        }
    }

    #[test]
    fn an_idle_worker_parks_and_a_wake_from_another_thread_brings_it_back() {
        let rt = runtime(|_| {});
        let worker = rt.handle().shared.workers[0].clone();
        let parks_before = rt.worker_stats()[0].parks;
        let waiting = Arc::new(AtomicBool::new(false));
        let w = waiting.clone();
        let (tx, rx) = crate::sync::oneshot::channel::<u32>();
        let got = start_on_worker(&rt, move || async move {
            w.store(true, SeqCst);
            rx.await.unwrap()
        });
        // Its only task waits: the queues are empty, so the worker sleeps.
        wait_for("the worker sleeps with its task waiting", || {
            waiting.load(SeqCst) && worker.parker.is_sleeping()
        });
        assert!(rt.worker_stats()[0].parks > parks_before);
        // The wake goes through the inbox and must unpark the worker.
        tx.send(7).unwrap();
        assert_eq!(finish(got), 7);
    }

    #[test]
    fn a_parked_worker_wakes_for_its_timer() {
        let rt = runtime(|_| {});
        let before = rt.worker_stats()[0].clone();
        let slept = on_worker(&rt, || async {
            let start = Instant::now();
            crate::time::sleep(Duration::from_millis(20)).await;
            start.elapsed()
        });
        assert!(slept >= Duration::from_millis(20), "woke early: {slept:?}");
        let s = &rt.worker_stats()[0];
        assert_eq!(s.timers_fired, before.timers_fired + 1);
        assert!(
            s.parks > before.parks,
            "nothing else to run: it slept until the timer"
        );
    }

    /// A task that yields until `done` is set, counting the polls it sees
    /// after `since` became true; `None` if it gave up.
    async fn spin_until(done: impl Fn() -> bool, since: impl Fn() -> bool) -> Option<u64> {
        let give_up = Instant::now() + GIVE_UP;
        let mut after = 0;
        while !done() {
            if since() {
                after += 1;
            }
            if Instant::now() > give_up {
                return None;
            }
            crate::yield_now().await;
        }
        Some(after)
    }

    #[test]
    fn a_due_timer_fires_within_event_interval_polls_while_the_queue_never_drains() {
        let interval = 8;
        let rt = runtime(|c| c.event_interval = interval);
        let polls_after_due = on_worker(&rt, || async {
            let deadline = Instant::now() + Duration::from_millis(2);
            let done = Rc::new(Cell::new(false));
            let d = done.clone();
            let sleeper = crate::spawn_local(async move {
                crate::time::sleep_until(deadline).await;
                d.set(true);
            });
            let hot = spin_until(move || done.get(), move || Instant::now() >= deadline).await;
            sleeper.await.unwrap();
            hot
        });
        let polls = polls_after_due.expect("the timer fired while a task kept the worker busy");
        // The next maintenance turn is at most `interval` polls away; then
        // the sleeper queues behind the spinning task.
        assert!(
            polls <= u64::from(interval) + 2,
            "{polls} polls after the deadline"
        );
    }

    #[test]
    fn the_inbox_is_taken_within_event_interval_polls_while_the_queue_never_drains() {
        let interval = 8;
        let rt = runtime(|c| c.event_interval = interval);
        let started = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicBool::new(false));
        let arrived = Arc::new(AtomicU64::new(0));
        let (st, se, ar) = (started.clone(), sent.clone(), arrived.clone());
        let hot = start_on_worker(&rt, move || async move {
            st.store(true, SeqCst);
            spin_until(move || ar.load(SeqCst) != 0, move || se.load(SeqCst)).await
        });
        wait_for("the spinning task started", || started.load(SeqCst));
        let a = arrived.clone();
        rt.handle()
            .spawn_on(0, async move { a.store(1, SeqCst) })
            .unwrap();
        sent.store(true, SeqCst);
        let polls =
            finish(hot).expect("the task from another thread ran while the worker was busy");
        assert!(
            polls <= u64::from(interval) + 2,
            "{polls} polls after the task was sent"
        );
    }
}
