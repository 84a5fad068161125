//! The blocking pool: threads for work that would stall a worker.
//!
//! `max_threads` counts the workers plus these threads, and the pool always
//! has at least one, started with the runtime (and waiting for work before
//! the build returns), so `spawn_blocking` never fails for want of a pool.
//! More threads start on demand up to the bound and leave after
//! `keep_alive` idle. A job is a task whose future runs the
//! closure in its first poll, so its JoinHandle, panics and aborts behave as
//! for any task. At shutdown queued jobs are cancelled and running ones are
//! waited for, up to the shutdown deadline.

use crate::task::raw::{self, TaskRef};
use crate::task::{harness, JoinHandle, TaskId, TaskMeta};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State {
    queue: VecDeque<TaskRef>,
    threads: usize,
    idle: usize,
    shutdown: bool,
    spawned_total: usize,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    work: Condvar,
    /// A thread became idle (the pool's first one, awaited at start).
    idle: Condvar,
    exited: Condvar,
    max: usize,
    keep_alive: Duration,
    stack_size: usize,
    /// Where its threads run; `None`: wherever the process may.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    cpus: Option<Vec<usize>>,
}

/// The pool. Cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

struct BlockingTask<F>(Option<F>);

impl<F> Unpin for BlockingTask<F> {}

impl<F: FnOnce() -> R, R> Future for BlockingTask<F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<R> {
        let f = self.0.take().expect("a blocking task runs once");
        Poll::Ready(f())
    }
}

impl BlockingPool {
    /// Starts the pool with its first thread.
    /// `cpus`: where its threads run (off the pinned workers' CPUs);
    /// `None`: wherever the process may.
    pub(crate) fn new(
        max: usize,
        keep_alive: Duration,
        stack_size: usize,
        cpus: Option<Vec<usize>>,
    ) -> std::io::Result<BlockingPool> {
        let pool = BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    shutdown: false,
                    spawned_total: 0,
                }),
                work: Condvar::new(),
                idle: Condvar::new(),
                exited: Condvar::new(),
                max: max.max(1),
                keep_alive,
                stack_size,
                cpus,
            }),
        };
        let mut st = pool.inner.state.lock();
        pool.start_thread(&mut st, true)?;
        // Returns once the thread waits for work, so that its one-time
        // allocations (the thread's own start, and parking_lot's table of
        // parked threads, created or grown by a thread's first wait) are
        // made during the build, not later inside a task's hot path: the
        // no-allocation tests saw them there. The thread's wait releases
        // this lock only after its parking data exists.
        while st.idle == 0 {
            pool.inner.idle.wait(&mut st);
        }
        drop(st);
        Ok(pool)
    }

    fn start_thread(&self, st: &mut State, first: bool) -> std::io::Result<()> {
        let inner = self.inner.clone();
        let n = st.spawned_total;
        std::thread::Builder::new()
            .name(format!("sprint-blocking-{n}"))
            .stack_size(self.inner.stack_size)
            .spawn(move || {
                // Off the pinned workers' CPUs: a blocking job must not
                // take a worker's core. (Affinity masks are Linux's.)
                #[cfg(target_os = "linux")]
                if let Some(cpus) = &inner.cpus {
                    if let Err(e) = sprint_os::thread::set_affinity(0, cpus) {
                        tracing::warn!(error = %e, ?cpus, "a blocking thread stays where it started");
                    }
                }
                run(inner, first)
            })?;
        st.threads += 1;
        st.spawned_total += 1;
        Ok(())
    }

    #[track_caller]
    pub(crate) fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let meta = TaskMeta {
            id: TaskId(crate::sched::NEXT_ID.fetch_add(1, Relaxed)),
            name: Some("spawn_blocking".into()),
            location: Location::caller(),
        };
        let task = raw::allocate(
            BlockingTask(Some(f)),
            raw::Home::Blocking,
            false,
            false,
            meta,
        );
        let handle = JoinHandle::new(task);
        let mut st = self.inner.state.lock();
        if st.shutdown {
            drop(st);
            harness::shutdown(task);
            return handle;
        }
        st.queue.push_back(task);
        if st.idle > 0 {
            self.inner.work.notify_one();
        } else if st.threads < self.inner.max {
            if let Err(e) = self.start_thread(&mut st, false) {
                // The threads already running will take the job.
                tracing::warn!(error = %e, "could not start another blocking thread");
            }
        }
        handle
    }

    /// Threads alive now.
    pub(crate) fn threads(&self) -> usize {
        self.inner.state.lock().threads
    }

    /// Cancels queued jobs and waits, until `deadline`, for running ones.
    /// True if every thread left in time.
    pub(crate) fn shutdown(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.inner.state.lock();
        st.shutdown = true;
        let queued: Vec<_> = st.queue.drain(..).collect();
        self.inner.work.notify_all();
        drop(st);
        for task in queued {
            harness::shutdown(task);
        }
        let mut st = self.inner.state.lock();
        while st.threads > 0 {
            match deadline {
                Some(d) => {
                    if self.inner.exited.wait_until(&mut st, d).timed_out() {
                        return st.threads == 0;
                    }
                }
                None => self.inner.exited.wait(&mut st),
            }
        }
        true
    }
}

fn run(inner: Arc<Inner>, first: bool) {
    let mut st = inner.state.lock();
    loop {
        if let Some(task) = st.queue.pop_front() {
            drop(st);
            harness::run(task, |_| {});
            st = inner.state.lock();
            continue;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        inner.idle.notify_all();
        let timed_out = if first {
            // The first thread stays for the runtime's life.
            inner.work.wait(&mut st);
            false
        } else {
            inner.work.wait_for(&mut st, inner.keep_alive).timed_out()
        };
        st.idle -= 1;
        if timed_out && st.queue.is_empty() && !st.shutdown {
            break;
        }
    }
    st.threads -= 1;
    inner.exited.notify_all();
}
