//! The cross-thread handle: what sockets use to run operations on a
//! worker's ring, from any thread.
//!
//! A socket holds an `Arc<UringHandle>` of the worker that made it. To
//! start an operation it takes the state lock, opens a slot in the op
//! table, pushes the SQE and lets go; to learn the result it polls the
//! slot; if its future goes away it hands the slot back to the table
//! ([`UringHandle::ignore`]), asking the kernel to cancel where that is
//! wanted. The cancel is queued before the lock goes: once the lock is
//! released the slot may complete, be freed and be reused, and a later
//! cancel would hit the new operation.
//!
//! Submissions from the owning worker are batched: they reach the kernel
//! in the worker's next turn (one `io_uring_enter` for everything queued
//! since). A submission from another thread, or on an SQPOLL ring, is
//! handed to the kernel at once, since the worker may be blocked in a
//! wait that would not see it.

use super::bufring::BGID;
use super::ops::{GiveBack, Keep, KernelData, Kind, Leftovers, OpId, Routed, IGNORE_TAG};
use super::submit::{Locked, Ring};
use crate::buf::{BufferPool, PoolBuf};
use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use std::cell::{Cell, UnsafeCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

thread_local! {
    /// The handle whose ring this thread owns (its worker's), as an address.
    static OWNER_OF: Cell<usize> = const { Cell::new(0) };
}

/// What sockets need from a worker's io_uring driver, from any thread.
pub struct UringHandle {
    // Field order is drop order: the ring goes first, so the kernel is done
    // with every buffer below before it is freed.
    pub(super) ring: Ring,
    pub(super) pool: BufferPool,
    /// The pool's id if its buffers are registered with this ring.
    pub(super) fixed_pool: Option<u64>,
    /// The provided-buffer ring's memory and buffer size, if there is one.
    pub(super) ring_buf_base: Option<(*const u8, usize)>,
    pub(super) multishot_accept: bool,
    /// Whether files (`sprint_io::fs`) run on this ring (see `Caps`).
    pub(super) fs_ops: bool,
    /// The eventfd a blocked turn is woken through.
    pub(super) eventfd: OwnedFd,
    /// Where the wake-up read puts the eventfd's count.
    pub(super) wake_buf: Box<UnsafeCell<u64>>,
    pub(super) sqpoll: bool,
    /// Where completions record their latency (`None`: metrics off).
    pub(super) io_latency: Option<Arc<sprint_core::metrics::WorkerMetrics>>,
}

// SAFETY: the ring is Send + Sync; mutable state is behind the mutex;
// `wake_buf` is written only by the kernel; `ring_buf_base` is an address
// of memory the state owns, read-only after start.
unsafe impl Send for UringHandle {}
// SAFETY: as above.
unsafe impl Sync for UringHandle {}

impl std::fmt::Debug for UringHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringHandle")
            .field("fd", &self.ring.as_raw_fd())
            .field("sqpoll", &self.sqpoll)
            .finish()
    }
}

impl UringHandle {
    /// Marks this thread as the owner of `handle`'s ring.
    pub(super) fn set_owner(handle: &Arc<UringHandle>) {
        OWNER_OF.with(|o| o.set(Arc::as_ptr(handle) as usize));
    }

    /// Forgets this thread's ownership of `handle`'s ring, if it has it.
    pub(super) fn clear_owner(handle: &Arc<UringHandle>) {
        OWNER_OF.with(|o| {
            if o.get() == Arc::as_ptr(handle) as usize {
                o.set(0)
            }
        });
    }

    fn is_owner(&self) -> bool {
        OWNER_OF.with(|o| o.get() == self as *const _ as usize)
    }

    /// This driver's buffer pool.
    /// Whether the kernel's polling thread takes this ring's submissions
    /// (no `io_uring_enter` to submit).
    pub(crate) fn sqpoll(&self) -> bool {
        self.sqpoll
    }

    pub(crate) fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Whether the provided-buffer ring is there for receives.
    pub(crate) fn has_bufring(&self) -> bool {
        self.ring_buf_base.is_some()
    }

    /// The size of one provided buffer (0 without the ring).
    pub(crate) fn ring_buffer_len(&self) -> usize {
        self.ring_buf_base.map_or(0, |(_, len)| len)
    }

    /// The buffer group a `BUFFER_SELECT` receive names.
    pub(crate) fn bufring_group(&self) -> u16 {
        BGID
    }

    /// Whether accepts may be multishot.
    pub(crate) fn multishot_accept(&self) -> bool {
        self.multishot_accept
    }

    /// Whether file operations run on this ring (else the blocking pool).
    pub(crate) fn fs_ops(&self) -> bool {
        self.fs_ops
    }

    /// The registered-buffer index of `buf` in this ring, if it has one.
    pub(crate) fn fixed_index(&self, buf: &PoolBuf) -> Option<u16> {
        buf.fixed_index(self.fixed_pool?)
    }

    /// The bytes of provided buffer `bid`.
    ///
    /// # Safety
    /// The caller holds `bid` (its CQE named it and it was not given back)
    /// and `len` is at most what the CQE said was received.
    pub(crate) unsafe fn ring_bytes(&self, bid: u16, len: usize) -> &[u8] {
        let (base, size) = self
            .ring_buf_base
            .unwrap_or_else(|| unreachable!("a CQE named a provided buffer, so the ring exists"));
        // SAFETY: `bid < RING_BUFFERS`, the caller owns the buffer, and the
        // kernel wrote `len <= size` bytes into it.
        unsafe { std::slice::from_raw_parts(base.add(bid as usize * size), len.min(size)) }
    }

    /// Gives provided buffer `bid` back to the kernel.
    pub(crate) fn recycle(&self, bid: u16) {
        self.ring.lock().bufring.give_back(bid);
    }

    /// Starts an operation: `build` gets the slot's kernel memory and
    /// returns the SQE (its user_data is set here). Every pointer the SQE
    /// carries must stay valid until its CQE: into the slot's kernel
    /// memory, into `keep`, or into memory the caller attaches or holds
    /// until then. Fails once the driver has shut down.
    pub(crate) fn start(
        &self,
        kind: Kind,
        keep: Keep,
        multishot: bool,
        build: impl FnOnce(&mut KernelData) -> squeue::Entry,
    ) -> io::Result<OpId> {
        self.start_op(kind, keep, multishot, build, true)
    }

    /// [`start`](Self::start) for an operation that is known to wait (a
    /// receive on a socket a direct `recv` just found empty, a send to one
    /// with no room): the owner leaves it to the next turn, which submits
    /// every such operation in one `io_uring_enter`, instead of entering
    /// the kernel now for an operation that cannot complete at submission.
    pub(crate) fn start_waiting(
        &self,
        kind: Kind,
        keep: Keep,
        multishot: bool,
        build: impl FnOnce(&mut KernelData) -> squeue::Entry,
    ) -> io::Result<OpId> {
        self.start_op(kind, keep, multishot, build, false)
    }

    fn start_op(
        &self,
        kind: Kind,
        keep: Keep,
        multishot: bool,
        build: impl FnOnce(&mut KernelData) -> squeue::Entry,
        turn_now: bool,
    ) -> io::Result<OpId> {
        let foreign = !self.is_owner();
        let id = {
            let mut st = self.ring.lock();
            if st.closed {
                return Err(io::Error::other(
                    "the worker that owns this socket's io_uring has shut down",
                ));
            }
            // Multishot operations complete many times: no one latency.
            let started = match &self.io_latency {
                Some(m) if !multishot && sprint_core::metrics::sample_io(m.sample_every()) => {
                    sprint_core::metrics::now_raw()
                }
                _ => 0,
            };
            let (id, kernel) = st.ops.open(kind, keep, multishot, started);
            let sqe = build(kernel).user_data(id as u64);
            // SAFETY: the entry's pointers are valid until its CQE: they
            // point into the slot (which lives until its last CQE) or into
            // memory the slot keeps or the caller holds (`start`'s rule).
            if let Err(e) = unsafe { st.push(&sqe) } {
                let keep = st.ops.abandon(id);
                drop(st);
                drop(keep);
                return Err(e);
            }
            id
        };
        if foreign || self.sqpoll {
            self.flush();
        } else if turn_now {
            // The owner: submit now and record what the kernel completed
            // at submission, so that the caller's next look at `id` finds
            // it done (see `sprint_core::driver::turn_now`).
            sprint_core::driver::turn_now();
        }
        Ok(id)
    }

    /// Pushes an SQE nobody waits for (cancel, close).
    fn fire(&self, sqe: squeue::Entry) {
        {
            let mut st = self.ring.lock();
            Self::fire_locked(&mut st, sqe);
        }
        if !self.is_owner() || self.sqpoll {
            self.flush();
        }
    }

    /// Pushes a cancel or a close (SQEs that carry no pointers) under the
    /// lock already held.
    pub(super) fn fire_locked(st: &mut Locked<'_>, sqe: squeue::Entry) {
        let opcode = sqe.get_opcode();
        // SAFETY: cancels and closes name a user_data or an fd, no memory.
        if let Err(e) = unsafe { st.push(&sqe.user_data(IGNORE_TAG)) } {
            tracing::error!(error = %e, opcode, "io_uring: a cancel or close could not be queued");
        }
    }

    /// Hands queued SQEs to the kernel now.
    fn flush(&self) {
        if let Err(e) = self.ring.submitter().submit() {
            if e.raw_os_error() != Some(libc::EBUSY) && e.kind() != io::ErrorKind::Interrupted {
                tracing::error!(error = %e, "io_uring submit failed");
            }
        }
    }

    /// The result of `id` (and the memory it kept), freeing the slot; or
    /// `Pending` with `cx`'s waker registered.
    pub(crate) fn poll_op(&self, id: OpId, cx: &mut Context<'_>) -> Poll<(i32, u32, Keep)> {
        self.ring.lock().ops.poll_op(id, cx)
    }

    /// The next result of multishot `id`, `None` once it ended (the slot
    /// is then free), or `Pending`.
    pub(crate) fn poll_multi(&self, id: OpId, cx: &mut Context<'_>) -> Poll<Option<(i32, u32)>> {
        self.ring.lock().ops.poll_multi(id, cx)
    }

    /// Gives the slot memory to keep until the kernel is done (the future
    /// that owned it is going away, but the result will still be read).
    pub(crate) fn attach(&self, id: OpId, keep: Keep) {
        self.ring.lock().ops.attach(id, keep);
    }

    /// Nobody will read `id`'s result: the slot keeps `keep` until the
    /// kernel's last CQE, then frees it; `cancel` asks the kernel to end
    /// the operation early.
    pub(crate) fn ignore(&self, id: OpId, cancel: bool, keep: Keep) {
        let mut left = Leftovers::default();
        let cancel_now = {
            let mut st = self.ring.lock();
            let s = &mut *st;
            let cancel_now = s.ops.ignore(id, cancel, keep, &mut left, &mut s.bufring) && !s.closed;
            if cancel_now {
                Self::fire_locked(&mut st, opcode::AsyncCancel::new(id as u64).build());
            }
            cancel_now
        };
        left.finish();
        if cancel_now && (!self.is_owner() || self.sqpoll) {
            self.flush();
        }
    }

    /// Closes `fd` through the ring, after every SQE already queued for it.
    pub(crate) fn close(&self, fd: RawFd) {
        if self.ring.lock().closed {
            // SAFETY: the caller owned `fd` and gives it up here.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            return;
        }
        self.fire(opcode::Close::new(Fd(fd)).build());
    }

    /// Records a batch of completions; the tasks to wake go to `wake` (woken
    /// by the caller outside the lock); `rearm` is set if the wake-up read
    /// completed.
    pub(super) fn complete(
        &self,
        cqes: &[(u64, i32, u32)],
        wake: &mut Vec<Waker>,
        rearm: &mut bool,
    ) {
        let mut left = Leftovers::default();
        let now = match &self.io_latency {
            Some(_) => sprint_core::metrics::now_raw(),
            None => 0,
        };
        {
            let mut st = self.ring.lock();
            for &(ud, res, flags) in cqes {
                let s = &mut *st;
                match s
                    .ops
                    .complete(ud, res, flags, wake, &mut left, &mut s.bufring)
                {
                    Routed::WakeUp => *rearm = true,
                    Routed::Finished { started } => {
                        if let (Some(m), true) = (&self.io_latency, started != 0) {
                            m.record_io(sprint_core::metrics::nanos_between(started, now));
                        }
                    }
                    Routed::Queued { cap: true } => {
                        Self::fire_locked(&mut st, opcode::AsyncCancel::new(ud).build());
                    }
                    Routed::Queued { cap: false }
                    | Routed::Untracked
                    | Routed::Discarded
                    | Routed::Stray => {}
                }
            }
        }
        left.finish();
    }
}
