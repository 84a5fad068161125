//! The io_uring driver: one ring per worker.
//!
//! The life of an operation. A socket starts it through the worker's
//! [`UringHandle`] (from any thread): it takes a slot in the op table (the
//! slot's index is the SQE's `user_data`), pushes the SQE, and polls the
//! slot for the result. The slot holds the task's waker, the result once
//! the CQE arrives, and whatever memory the kernel may still touch (the
//! buffer, the socket address, iovecs), and it survives the future that
//! started it: a future dropped in flight *ignores* its slot (and usually
//! submits `ASYNC_CANCEL`), and the slot frees its memory only when the
//! kernel's last CQE for it arrives. That is what keeps a late kernel
//! write out of freed or reused memory.
//!
//! The ring is shared behind a mutex so a `Send` socket can start an
//! operation from any thread; the worker that owns the ring holds the
//! lock only to push SQEs and to record completions. **The submission
//! queue is touched only under that lock**, and the types say so: the
//! queue is reachable only through the lock's guard ([`submit::Locked`]).
//! Every submission enters the kernel at once. Another thread's is only
//! submitted (as is every one under SQPOLL, where the kernel's polling
//! thread takes it); the owner's goes through a turn of the owner's driver
//! (`sprint_core::driver::turn_now`): submit, then record the completions
//! that are there, so an operation the kernel completes at submission (a
//! send with room in the socket's buffer, a receive with data waiting) is
//! done before the poll that started it returns, as with a send or receive
//! system call. Batching the owner's submissions into the worker's next
//! turn saved system calls but cost each operation a wait for that turn
//! and then for the task's turn in the run queue: under load, 30-100 µs
//! per send, which put the relay's median on io_uring at 1.6 times epoll's
//! (issue 15). A blocked turn is woken through an eventfd that a read on
//! the ring keeps armed.
//!
//! The parts, one file each:
//! - [`probe`](mod@probe): can io_uring run here, and with which features;
//! - [`ops`]: the op slot table (slots, their life, completion routing);
//! - [`submit`]: the submission queue and the state lock around it;
//! - [`bufring`]: the provided-buffer ring receives pick buffers from;
//! - [`handle`]: the cross-thread handle sockets use;
//! - this file: the driver a worker turns (submit, wait, reap, wake up,
//!   shut down).

mod bufring;
mod handle;
mod ops;
mod probe;
mod submit;

pub use handle::UringHandle;
pub(crate) use ops::{Keep, KernelData, Kind, OpId, MAX_IOV};
pub(crate) use probe::{probe, Caps};

use crate::buf::{BufferPool, POOL_BUFFERS, POOL_BUFFER_SIZE};
use crate::driver::DriverChoice;
use bufring::{BufRing, RING_BUFFERS, RING_BUFFER_SIZE};
use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{opcode, IoUring};
use ops::{OpTable, IGNORE_TAG, WAKE_TAG};
use sprint_core::driver::{Driver, Unpark, WorkerInfo};
use std::any::Any;
use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};
use submit::{Ring, State};

/// Submission-queue entries per ring (the completion queue has four
/// times as many).
const SQ_ENTRIES: u32 = 1024;
/// Slots made at start, so steady state does not allocate.
const INITIAL_SLOTS: usize = 256;

/// One worker's io_uring driver.
#[derive(Debug)]
pub struct UringDriver {
    handle: Arc<UringHandle>,
    waker: Arc<UringUnpark>,
    ext_arg: bool,
    wake_armed: bool,
    cqes: Vec<(u64, i32, u32)>,
    wakers: Vec<Waker>,
    describe: String,
}

#[derive(Debug)]
/// The eventfd, and the handle that keeps it open.
struct UringUnpark(RawFd, #[allow(dead_code)] Arc<UringHandle>);

impl Unpark for UringUnpark {
    fn unpark(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to the handle's eventfd,
        // which lives as long as the handle this holds.
        let r = unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EAGAIN) {
                tracing::error!(error = %e, "cannot wake an io_uring driver");
            }
        }
    }
}

impl UringDriver {
    /// Builds worker `info`'s ring as its level asks: SQPOLL at Turbo on a
    /// spare CPU, registered pool buffers at Enterprise and Turbo, a
    /// provided-buffer ring and multishot accept where the kernel has
    /// them. What could not be had is said in `describe`.
    pub(crate) fn new(
        info: &WorkerInfo,
        caps: &Caps,
        choice: &DriverChoice,
    ) -> io::Result<UringDriver> {
        let cfg = &info.config;
        let mut notes: Vec<String> = Vec::new();
        let sqpoll_cpu = if cfg.uring_sqpoll {
            match info
                .spare_cpus
                .get(info.index % info.spare_cpus.len().max(1))
            {
                Some(&cpu) => Some(cpu),
                None => {
                    notes.push("SQPOLL off: no spare CPU for the kernel's polling thread (an isolated CPU no worker uses, or uring_sqpoll_cpu), submitting with io_uring_enter".into());
                    None
                }
            }
        } else {
            None
        };
        let build = |sqpoll: Option<usize>, taskrun: bool| {
            let mut b = IoUring::builder();
            b.setup_cqsize(SQ_ENTRIES * 4);
            if taskrun {
                b.setup_coop_taskrun().setup_taskrun_flag();
            }
            if let Some(cpu) = sqpoll {
                b.setup_sqpoll(50).setup_sqpoll_cpu(cpu as u32);
            }
            b.build(SQ_ENTRIES)
        };
        let mut sqpoll = sqpoll_cpu;
        let ring = match build(sqpoll, true) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => match build(sqpoll, false) {
                Ok(r) => r,
                Err(e) if sqpoll.is_some() => {
                    notes.push(format!(
                        "SQPOLL refused ({e}), submitting with io_uring_enter"
                    ));
                    sqpoll = None;
                    build(None, false)?
                }
                Err(e) => return Err(e),
            },
            Err(e) if sqpoll.is_some() => {
                notes.push(format!(
                    "SQPOLL refused ({e}), submitting with io_uring_enter"
                ));
                sqpoll = None;
                build(None, true)?
            }
            Err(e) => return Err(e),
        };
        if let Some(cpu) = sqpoll {
            notes.push(format!("SQPOLL on CPU {cpu}"));
        }
        // Blocking: io_uring completes a read on a non-blocking eventfd at
        // once with EAGAIN on some kernels instead of waiting, which would
        // spin the worker. A write of 1 never blocks in practice.
        // SAFETY: eventfd has no memory preconditions.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd this function owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(efd) };
        let (pool, from) = BufferPool::new_in(info.arena.as_ref(), POOL_BUFFERS, POOL_BUFFER_SIZE)?;
        notes.push(format!("pool from {from}"));
        let mut fixed_pool = None;
        if cfg.uring_registered_buffers {
            let iovecs = pool.iovecs();
            // SAFETY: the iovecs cover the pool's block, which outlives the
            // ring (the handle owns both; the ring drops first).
            match unsafe { ring.submitter().register_buffers(&iovecs) } {
                Ok(()) => {
                    fixed_pool = Some(pool.id());
                    notes.push(format!(
                        "registered buffers {}x{} KiB",
                        pool.capacity(),
                        pool.buffer_size() / 1024
                    ));
                }
                Err(e) => notes.push(format!("registered buffers refused ({e})")),
            }
        }
        let bufring = match BufRing::new(&ring, info.arena.as_ref()) {
            Ok(br) => {
                notes.push(format!(
                    "provided buffers {}x{} KiB",
                    RING_BUFFERS,
                    RING_BUFFER_SIZE / 1024
                ));
                Some(br)
            }
            Err(e) => {
                notes.push(format!("no provided-buffer ring ({e})"));
                None
            }
        };
        if caps.multishot_accept {
            notes.push("multishot accept".into());
        }
        notes.push(if caps.fs_ops {
            "files on the ring".into()
        } else {
            "files on the blocking pool (no OPENAT, WRITE, FSYNC or STATX, or no reads at the file position)".into()
        });
        let ring_buf_base = bufring.as_ref().map(|b| (b.base(), RING_BUFFER_SIZE));
        let handle = Arc::new(UringHandle {
            ring: Ring::new(
                ring,
                State::new(OpTable::with_capacity(INITIAL_SLOTS), bufring),
            ),
            pool,
            fixed_pool,
            ring_buf_base,
            multishot_accept: caps.multishot_accept,
            fs_ops: caps.fs_ops,
            eventfd,
            wake_buf: Box::new(UnsafeCell::new(0)),
            sqpoll: sqpoll.is_some(),
            io_latency: info.io_latency.clone(),
        });
        UringHandle::set_owner(&handle);
        let mut describe = format!("io_uring (kernel {}", caps.release);
        for n in &notes {
            describe.push_str(", ");
            describe.push_str(n);
        }
        describe.push(')');
        if let Some(r) = &choice.fallback_reason {
            describe.push_str(&format!("; {r}"));
        }
        let waker = Arc::new(UringUnpark(handle.eventfd.as_raw_fd(), handle.clone()));
        let mut d = UringDriver {
            handle,
            waker,
            ext_arg: caps.ext_arg,
            wake_armed: false,
            cqes: Vec::with_capacity(SQ_ENTRIES as usize * 4),
            wakers: Vec::with_capacity(SQ_ENTRIES as usize),
            describe,
        };
        d.arm_wake();
        Ok(d)
    }

    /// The handle sockets use.
    pub(crate) fn uring_handle(&self) -> Arc<UringHandle> {
        self.handle.clone()
    }

    fn arm_wake(&mut self) {
        let sqe = opcode::Read::new(
            Fd(self.handle.eventfd.as_raw_fd()),
            self.handle.wake_buf.get().cast(),
            8,
        )
        .build()
        .user_data(WAKE_TAG);
        let mut st = self.handle.ring.lock();
        // SAFETY: the read's buffer (`wake_buf`) and the eventfd live as
        // long as the handle, which outlives the ring's use of them (the
        // driver waits for this read's cancellation when dropped).
        match unsafe { st.push(&sqe) } {
            Ok(()) => self.wake_armed = true,
            Err(e) => {
                tracing::error!(error = %e, "io_uring: cannot arm the wake-up read; retrying next turn")
            }
        }
    }

    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let h = &self.handle;
        let (pending, taskrun) = {
            let mut st = h.ring.lock();
            (st.take_unsubmitted(), st.taskrun())
        };
        // SAFETY: only this (the owner) thread reads the completion queue.
        let ready = !unsafe { h.ring.completion() }.is_empty();
        let wait = match timeout {
            _ if ready => false,
            Some(d) if d.is_zero() => false,
            _ => true,
        };
        let r = if !wait {
            if pending || taskrun || h.sqpoll {
                h.ring.submitter().submit().map(drop)
            } else {
                Ok(())
            }
        } else {
            match timeout {
                None => h.ring.submitter().submit_and_wait(1).map(drop),
                Some(d) if self.ext_arg => {
                    let ts = Timespec::new().sec(d.as_secs()).nsec(d.subsec_nanos());
                    let args = SubmitArgs::new().timespec(&ts);
                    h.ring.submitter().submit_with_args(1, &args).map(drop)
                }
                Some(d) => {
                    let ts = Timespec::new().sec(d.as_secs()).nsec(d.subsec_nanos());
                    let sqe = opcode::Timeout::new(&ts).build().user_data(IGNORE_TAG);
                    // SAFETY: the kernel only reads the timespec, once,
                    // while submitting: in the `io_uring_enter` just below,
                    // which `ts` outlives. (Were that enter refused before
                    // submitting (EBUSY, EAGAIN), the entry would go in a later
                    // enter and the kernel would read a stale value or fail
                    // the timeout with EFAULT; it never writes through the
                    // pointer. Kernels with EXT_ARG, 5.11+, never get here.)
                    unsafe { h.ring.lock().push(&sqe) }?;
                    h.ring.submitter().submit_and_wait(1).map(drop)
                }
            }
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                    Ok(())
                }
                _ => Err(e),
            },
        }
    }

    /// Records one batch of completions and wakes their tasks; `None`
    /// when the queue was empty, else whether the wake-up read completed.
    fn reap_batch(&mut self) -> Option<bool> {
        self.cqes.clear();
        {
            // SAFETY: only this (the owner) thread reads the CQ.
            let cq = unsafe { self.handle.ring.completion() };
            self.cqes
                .extend(cq.map(|c| (c.user_data(), c.result(), c.flags())));
        }
        if self.cqes.is_empty() {
            return None;
        }
        let mut woke = false;
        let cqes = std::mem::take(&mut self.cqes);
        self.handle.complete(&cqes, &mut self.wakers, &mut woke);
        self.cqes = cqes;
        for w in self.wakers.drain(..) {
            w.wake();
        }
        Some(woke)
    }

    fn reap(&mut self) {
        while let Some(woke) = self.reap_batch() {
            if woke {
                self.wake_armed = false;
                self.arm_wake();
            }
        }
    }
}

impl Driver for UringDriver {
    fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if !self.wake_armed {
            self.arm_wake();
        }
        self.enter(timeout)?;
        self.reap();
        Ok(())
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.waker.clone()
    }

    fn handle(&self) -> Arc<dyn Any + Send + Sync> {
        self.handle.clone()
    }

    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

impl Drop for UringDriver {
    /// The worker is going away: no new operations; cancel the ones in
    /// flight and wait (bounded) for the kernel to finish with their
    /// memory, so nothing is freed under a late write.
    fn drop(&mut self) {
        let ids = {
            let mut st = self.handle.ring.lock();
            st.closed = true;
            st.ops.live()
        };
        {
            let mut st = self.handle.ring.lock();
            for id in ids {
                UringHandle::fire_locked(&mut st, opcode::AsyncCancel::new(id as u64).build());
            }
            if self.wake_armed {
                UringHandle::fire_locked(&mut st, opcode::AsyncCancel::new(WAKE_TAG).build());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut wake_done = !self.wake_armed;
        loop {
            let waiting = self.handle.ring.lock().ops.awaiting_kernel();
            if !waiting && wake_done {
                break;
            }
            if Instant::now() >= deadline {
                tracing::error!("io_uring operations still in flight at shutdown: their memory is leaked rather than freed under the kernel");
                std::mem::forget(self.handle.clone());
                break;
            }
            let _ = self.enter(Some(Duration::from_millis(10)));
            while let Some(woke) = self.reap_batch() {
                wake_done |= woke;
            }
        }
        UringHandle::clear_owner(&self.handle);
    }
}
