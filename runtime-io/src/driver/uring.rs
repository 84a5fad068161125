//! The io_uring driver.
//!
//! One ring per worker. An operation takes a slot in the driver's slot
//! table (its index is the SQE's `user_data`); the slot holds the task's
//! waker, the result once the CQE arrives, whatever memory the kernel may
//! still touch (the buffer, the socket address, iovecs), and survives the
//! future that started it: a future dropped in flight *ignores* its slot
//! (and usually submits `ASYNC_CANCEL`), and the slot frees its memory
//! only when the kernel's last CQE for it arrives. That is what keeps a
//! late kernel write out of freed or reused memory. Slots live in chunks
//! that never move, so the kernel can be pointed into them.
//!
//! The ring is shared behind a mutex so a `Send` socket can start an
//! operation from any thread; the worker that owns the ring holds the
//! lock only to push SQEs and to record completions. Its own submissions
//! are batched: they go to the kernel in the next turn (one
//! `io_uring_enter` for everything queued since); another thread's
//! submission enters the kernel at once. A blocked turn is woken through
//! an eventfd that a read on the ring keeps armed.

use crate::buf::{BufferPool, PoolBuf, POOL_BUFFERS, POOL_BUFFER_SIZE};
use crate::driver::DriverChoice;
use io_uring::types::{BufRingEntry, Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring, Probe};
use parking_lot::Mutex;
use sprint_core::driver::{Driver, Unpark, WorkerInfo};
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering::*};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

const WAKE_TAG: u64 = u64::MAX;
const IGNORE_TAG: u64 = u64::MAX - 1;
const CHUNK: usize = 64;
const SQ_ENTRIES: u32 = 1024;
/// Provided-buffer ring: buffers the kernel picks from at receive time,
/// so a waiting receive holds no memory.
const RING_BUFFERS: u16 = 256;
const RING_BUFFER_SIZE: usize = 16 * 1024;
const BGID: u16 = 0;
/// Iovecs one vectored send carries at most.
pub(crate) const MAX_IOV: usize = 16;

/// What probing io_uring found, once per process.
#[derive(Debug, Clone)]
pub(crate) struct Caps {
    pub(crate) ext_arg: bool,
    pub(crate) multishot_accept: bool,
    pub(crate) release: String,
}

/// The opcodes the driver cannot work without.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::Shutdown::CODE, "SHUTDOWN"),
    (opcode::Timeout::CODE, "TIMEOUT"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Read::CODE, "READ"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::WriteFixed::CODE, "WRITE_FIXED"),
];

fn kernel_release() -> String {
    // SAFETY: a zeroed utsname is valid; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates `release`.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse::<u32>().ok());
    match (it.next(), it.next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

fn setup_error(e: &io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_string());
    let why = match e.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no io_uring (ENOSYS)".to_string(),
        Some(libc::EPERM) => match disabled.as_deref() {
            Some("2") => "io_uring_setup was refused (EPERM): kernel.io_uring_disabled = 2".into(),
            Some("1") => "io_uring_setup was refused (EPERM): kernel.io_uring_disabled = 1 and this process is not in kernel.io_uring_group".into(),
            _ => "io_uring_setup was refused (EPERM), by a seccomp filter or a security module".into(),
        },
        Some(libc::EACCES) => "io_uring_setup was refused (EACCES) by a security module".into(),
        Some(libc::ENOMEM) => "io_uring_setup failed (ENOMEM): locked-memory limit too low for the ring".into(),
        _ => format!("io_uring_setup failed: {e}"),
    };
    why
}

/// Probes io_uring once: can a ring be set up, and does it have every
/// opcode the driver uses?
pub(crate) fn probe() -> Result<Caps, String> {
    static PROBE: OnceLock<Result<Caps, String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let ring = IoUring::new(8).map_err(|e| setup_error(&e))?;
            let mut probe = Probe::new();
            ring.submitter().register_probe(&mut probe).map_err(|e| {
                format!("io_uring cannot list its opcodes (IORING_REGISTER_PROBE): {e}")
            })?;
            let missing: Vec<&str> = REQUIRED
                .iter()
                .filter(|(code, _)| !probe.is_supported(*code))
                .map(|(_, name)| *name)
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "this kernel's io_uring lacks IORING_OP_{}",
                    missing.join(", IORING_OP_")
                ));
            }
            let release = kernel_release();
            Ok(Caps {
                ext_arg: ring.params().is_feature_ext_arg(),
                // Multishot accept came in 5.19; the opcode probe cannot
                // see flags, so go by the release.
                multishot_accept: release_at_least(&release, 5, 19),
                release,
            })
        })
        .clone()
}

/// Memory the kernel reads or writes for one operation.
pub(crate) struct KernelData {
    pub(crate) addr: libc::sockaddr_storage,
    pub(crate) addr_len: libc::socklen_t,
    pub(crate) iov: [libc::iovec; MAX_IOV],
    pub(crate) msg: libc::msghdr,
}

/// What an operation is, for cleaning up after a future that went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing to clean up.
    Plain,
    /// An accept: a connection accepted for nobody is closed.
    Accept,
}

/// Memory an operation owns until its last CQE.
pub(crate) enum Keep {
    None,
    Pool(PoolBuf),
    Buf(Box<dyn crate::buf::IoBuf>),
    BufMut(Box<dyn crate::buf::IoBufMut>),
    Bufs(#[allow(dead_code)] Box<dyn Any + Send>),
}

/// The tasks waiting on one operation: usually one, inline; more (tasks
/// sharing a stream) go in a vector, allocated only then. All are woken.
#[derive(Default)]
struct Waiters {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Waiters {
    fn register(&mut self, cx: &Context<'_>) {
        let w = cx.waker();
        match &self.first {
            None => self.first = Some(w.clone()),
            Some(f) if f.will_wake(w) => {}
            Some(_) => {
                if !self.more.iter().any(|m| m.will_wake(w)) {
                    self.more.push(w.clone());
                }
            }
        }
    }

    fn drain_into(&mut self, out: &mut Vec<Waker>) {
        out.extend(self.first.take());
        out.append(&mut self.more);
    }
}

enum Life {
    Free,
    Waiting(Waiters),
    Done(i32, u32),
    Multi {
        queue: VecDeque<(i32, u32)>,
        waker: Waiters,
        ended: bool,
        /// Cancelled because nobody takes the results: a multishot accept
        /// stops accepting once `MULTISHOT_BACKLOG` wait, and restarts when
        /// they are taken (backpressure, and no run on descriptors).
        capped: bool,
    },
    Ignored,
}

const MULTISHOT_BACKLOG: usize = 64;

struct Slot {
    life: Life,
    kind: Kind,
    keep: Keep,
    /// The raw clock reading at submission (0 without metrics), for the
    /// worker's I/O latency histogram.
    started: u64,
    kernel: Box<UnsafeCell<KernelData>>,
}

// SAFETY: the raw pointers in `KernelData` (iovecs, msghdr) point into
// memory the slot itself keeps (`keep`, `kernel`); they are only read by
// the kernel, never dereferenced by Rust code on another thread.
unsafe impl Send for Slot {}

/// A provided-buffer ring: `RING_BUFFERS` buffers the kernel takes from
/// and the driver gives back.
struct BufRing {
    entries: *mut BufRingEntry,
    map_len: usize,
    tail: u16,
    /// Owns the buffers' memory (read through `base`).
    _memory: BufferPool,
    base: *mut u8,
}

// SAFETY: the mapping and the buffers are owned by this value; it is only
// touched under the driver's state lock.
unsafe impl Send for BufRing {}

impl BufRing {
    fn new(ring: &IoUring, arena: Option<&Arc<sprint_alloc::Arena>>) -> io::Result<BufRing> {
        let map_len = (RING_BUFFERS as usize * std::mem::size_of::<BufRingEntry>()).max(4096);
        // SAFETY: an anonymous private mapping with no address hint.
        let entries = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if entries == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let memory = BufferPool::new_in(arena, RING_BUFFERS as usize, RING_BUFFER_SIZE);
        let memory = match memory {
            Ok((m, _)) => m,
            Err(e) => {
                // SAFETY: mapped just above with this length.
                unsafe { libc::munmap(entries, map_len) };
                return Err(e);
            }
        };
        let base = memory.iovecs()[0].iov_base.cast::<u8>();
        let mut br = BufRing {
            entries: entries.cast(),
            map_len,
            tail: 0,
            _memory: memory,
            base,
        };
        // SAFETY: the mapping is page-aligned, zeroed, large enough for
        // RING_BUFFERS entries, and lives until the ring is dropped (the
        // handle drops the ring before this).
        let r = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(br.entries as u64, RING_BUFFERS, BGID, 0)
        };
        r?;
        for bid in 0..RING_BUFFERS {
            br.push(bid);
        }
        Ok(br)
    }

    fn push(&mut self, bid: u16) {
        let mask = RING_BUFFERS - 1;
        // SAFETY: the index is masked into the mapping; the entry is only
        // written here, under the state lock, and the kernel reads it only
        // after the tail store below publishes it.
        unsafe {
            let e = &mut *self.entries.add((self.tail & mask) as usize);
            e.set_addr(self.base.add(bid as usize * RING_BUFFER_SIZE) as u64);
            e.set_len(RING_BUFFER_SIZE as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field of the first entry, as the kernel's ABI
        // lays it out; an aligned u16 the kernel reads atomically.
        let tail = unsafe { &*BufRingEntry::tail(self.entries).cast::<AtomicU16>() };
        tail.store(self.tail, Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length; the ring that used it
        // is gone (see `UringHandle`'s field order).
        unsafe { libc::munmap(self.entries.cast(), self.map_len) };
    }
}

struct State {
    chunks: Vec<Box<[Slot]>>,
    free: Vec<u32>,
    in_flight: usize,
    unsubmitted: u32,
    closed: bool,
    bufring: Option<BufRing>,
}

impl State {
    fn slot(&mut self, id: u32) -> &mut Slot {
        &mut self.chunks[id as usize / CHUNK][id as usize % CHUNK]
    }

    fn alloc(&mut self) -> u32 {
        if let Some(id) = self.free.pop() {
            return id;
        }
        self.grow();
        self.free
            .pop()
            .unwrap_or_else(|| unreachable!("a chunk was just added"))
    }

    /// Adds a chunk of free slots (chunks never move once made).
    fn grow(&mut self) {
        let first = (self.chunks.len() * CHUNK) as u32;
        let chunk: Vec<Slot> = (0..CHUNK)
            .map(|_| Slot {
                life: Life::Free,
                kind: Kind::Plain,
                keep: Keep::None,
                started: 0,
                // SAFETY: all-zero bytes are a valid KernelData (integers,
                // null pointers, zeroed C structs).
                kernel: Box::new(UnsafeCell::new(unsafe { std::mem::zeroed() })),
            })
            .collect();
        self.chunks.push(chunk.into_boxed_slice());
        self.free.extend((first..first + CHUNK as u32).rev());
    }

    /// Frees `id`, handing its memory to `out` to drop outside the lock.
    fn release(&mut self, id: u32, out: &mut Vec<Keep>) {
        let slot = self.slot(id);
        slot.life = Life::Free;
        slot.kind = Kind::Plain;
        let keep = std::mem::replace(&mut slot.keep, Keep::None);
        if !matches!(keep, Keep::None) {
            out.push(keep);
        }
        self.free.push(id);
        self.in_flight -= 1;
    }

    /// A result nobody will read: close what it opened, give back the
    /// provided buffer it took.
    fn discard(&mut self, kind: Kind, res: i32, flags: u32, close: &mut Vec<RawFd>) {
        if kind == Kind::Accept && res >= 0 {
            close.push(res);
        }
        if let Some(bid) = cqueue::buffer_select(flags) {
            if let Some(br) = self.bufring.as_mut() {
                br.push(bid);
            }
        }
    }
}

thread_local! {
    /// The handle whose ring this thread owns (its worker's), as an address.
    static OWNER_OF: Cell<usize> = const { Cell::new(0) };
}

/// What sockets need from a worker's io_uring driver, from any thread.
pub struct UringHandle {
    // Field order is drop order: the ring goes first, so the kernel is done
    // with every buffer below before it is freed.
    ring: IoUring,
    state: Mutex<State>,
    pool: BufferPool,
    /// The pool's id if its buffers are registered with this ring.
    fixed_pool: Option<u64>,
    ring_buf_base: Option<(*const u8, usize)>,
    multishot_accept: bool,
    eventfd: OwnedFd,
    wake_buf: Box<UnsafeCell<u64>>,
    sqpoll: bool,
    /// Where completions record their latency (`None`: metrics off).
    io_latency: Option<Arc<sprint_core::metrics::WorkerMetrics>>,
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

/// An operation's id in its driver.
pub(crate) type OpId = u32;

impl UringHandle {
    fn is_owner(&self) -> bool {
        OWNER_OF.with(|o| o.get() == self as *const _ as usize)
    }

    /// This driver's buffer pool.
    pub(crate) fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Whether the provided-buffer ring is there for receives.
    pub(crate) fn has_bufring(&self) -> bool {
        self.ring_buf_base.is_some()
    }

    pub(crate) fn bufring_group(&self) -> u16 {
        BGID
    }

    pub(crate) fn multishot_accept(&self) -> bool {
        self.multishot_accept
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
        if let Some(br) = self.state.lock().bufring.as_mut() {
            br.push(bid);
        }
    }

    /// Queues `sqe`. A full queue is handed to the kernel and the push
    /// retried a bounded number of times (the kernel can refuse with EBUSY
    /// while completions overflow, and this thread may be the one that
    /// must reap them), then it is an error.
    fn push_locked(&self, st: &mut State, sqe: &squeue::Entry) -> io::Result<()> {
        for attempt in 0..64 {
            // SAFETY: the state lock is held, so this is the only
            // submission-queue view; the entry's pointers are valid until
            // its CQE (they point into the slot or memory the slot keeps).
            let pushed = unsafe { self.ring.submission_shared().push(sqe) };
            if pushed.is_ok() {
                st.unsubmitted += 1;
                return Ok(());
            }
            // The queue is full: hand it to the kernel and retry.
            match self.ring.submitter().submit() {
                Ok(_) => st.unsubmitted = 0,
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        || e.kind() == io::ErrorKind::Interrupted =>
                {
                    if attempt > 8 {
                        std::thread::yield_now();
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the io_uring submission queue stays full (the kernel refuses more work until completions are reaped)",
        ))
    }

    /// Starts an operation: `build` gets the slot's kernel memory and
    /// returns the SQE (its user_data is set here). Fails once the driver
    /// has shut down.
    pub(crate) fn start(
        &self,
        kind: Kind,
        keep: Keep,
        multishot: bool,
        build: impl FnOnce(&mut KernelData) -> squeue::Entry,
    ) -> io::Result<OpId> {
        let foreign = !self.is_owner();
        let id = {
            let mut st = self.state.lock();
            if st.closed {
                return Err(io::Error::other(
                    "the worker that owns this socket's io_uring has shut down",
                ));
            }
            let id = st.alloc();
            st.in_flight += 1;
            let slot = st.slot(id);
            slot.kind = kind;
            slot.keep = keep;
            // Multishot operations complete many times: no one latency.
            slot.started = match &self.io_latency {
                Some(m) if !multishot && sprint_core::metrics::sample_io(m.sample_every) => {
                    sprint_core::metrics::now_raw()
                }
                _ => 0,
            };
            slot.life = if multishot {
                Life::Multi {
                    queue: VecDeque::new(),
                    waker: Waiters::default(),
                    ended: false,
                    capped: false,
                }
            } else {
                Life::Waiting(Waiters::default())
            };
            // SAFETY: the slot is ours (just allocated) and not yet known
            // to the kernel.
            let sqe = build(unsafe { &mut *slot.kernel.get() }).user_data(id as u64);
            if let Err(e) = self.push_locked(&mut st, &sqe) {
                let mut none = Vec::new();
                let keep = std::mem::replace(&mut st.slot(id).keep, Keep::None);
                st.release(id, &mut none);
                drop(st);
                drop(keep);
                return Err(e);
            }
            id
        };
        if foreign || self.sqpoll {
            self.flush();
        }
        Ok(id)
    }

    /// Pushes an SQE nobody waits for (cancel, close).
    fn fire(&self, sqe: squeue::Entry) {
        {
            let mut st = self.state.lock();
            self.fire_locked(&mut st, sqe);
        }
        if !self.is_owner() || self.sqpoll {
            self.flush();
        }
    }

    fn fire_locked(&self, st: &mut State, sqe: squeue::Entry) {
        let opcode = sqe.get_opcode();
        if let Err(e) = self.push_locked(st, &sqe.user_data(IGNORE_TAG)) {
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
        let mut st = self.state.lock();
        let slot = st.slot(id);
        match &mut slot.life {
            Life::Done(res, flags) => {
                let (res, flags) = (*res, *flags);
                let keep = std::mem::replace(&mut slot.keep, Keep::None);
                let mut none = Vec::new();
                st.release(id, &mut none);
                Poll::Ready((res, flags, keep))
            }
            Life::Waiting(w) => {
                w.register(cx);
                Poll::Pending
            }
            _ => unreachable!("poll_op on a slot that is not a single-shot operation"),
        }
    }

    /// The next result of multishot `id`, `None` once it ended (the slot
    /// is then free), or `Pending`.
    pub(crate) fn poll_multi(&self, id: OpId, cx: &mut Context<'_>) -> Poll<Option<(i32, u32)>> {
        let mut st = self.state.lock();
        let slot = st.slot(id);
        match &mut slot.life {
            Life::Multi {
                queue,
                waker,
                ended,
                ..
            } => {
                if let Some(r) = queue.pop_front() {
                    return Poll::Ready(Some(r));
                }
                if *ended {
                    let mut none = Vec::new();
                    st.release(id, &mut none);
                    return Poll::Ready(None);
                }
                waker.register(cx);
                Poll::Pending
            }
            _ => unreachable!("poll_multi on a slot that is not multishot"),
        }
    }

    /// Gives the slot memory to keep until the kernel is done (the future
    /// that owned it is going away, but the result will still be read).
    pub(crate) fn attach(&self, id: OpId, keep: Keep) {
        let mut st = self.state.lock();
        st.slot(id).keep = keep;
    }

    /// Nobody will read `id`'s result: the slot keeps `keep` until the
    /// kernel's last CQE, then frees it; `cancel` asks the kernel to end
    /// the operation early.
    pub(crate) fn ignore(&self, id: OpId, cancel: bool, keep: Keep) {
        let mut drop_later = Vec::new();
        let mut close = Vec::new();
        let mut cancel_now = false;
        {
            let mut st = self.state.lock();
            let closed = st.closed;
            let slot = st.slot(id);
            if !matches!(keep, Keep::None) {
                slot.keep = keep;
            }
            let kind = slot.kind;
            match std::mem::replace(&mut slot.life, Life::Ignored) {
                Life::Done(res, flags) => {
                    st.discard(kind, res, flags, &mut close);
                    st.release(id, &mut drop_later);
                }
                Life::Multi { queue, ended, .. } => {
                    for (res, flags) in queue {
                        st.discard(kind, res, flags, &mut close);
                    }
                    if ended {
                        st.release(id, &mut drop_later);
                    } else {
                        cancel_now = true;
                    }
                }
                Life::Waiting(_) => cancel_now = cancel,
                Life::Ignored | Life::Free => {
                    unreachable!("an operation ignored twice")
                }
            }
            // The cancel is queued before the lock goes: once it is
            // released, the slot may complete, be freed and be reused, and
            // a later cancel would hit the new operation.
            cancel_now &= !closed;
            if cancel_now {
                self.fire_locked(&mut st, opcode::AsyncCancel::new(id as u64).build());
            }
        }
        for fd in close {
            // SAFETY: the fd was accepted for this slot and never handed out.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        drop(drop_later);
        if cancel_now && (!self.is_owner() || self.sqpoll) {
            self.flush();
        }
    }

    /// Closes `fd` through the ring, after every SQE already queued for it.
    pub(crate) fn close(&self, fd: RawFd) {
        if self.state.lock().closed {
            // SAFETY: the caller owned `fd` and gives it up here.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            return;
        }
        self.fire(opcode::Close::new(Fd(fd)).build());
    }

    /// Records a batch of completions; returns wakers to wake and memory to
    /// free, outside the lock.
    fn complete(&self, cqes: &[(u64, i32, u32)], wake: &mut Vec<Waker>, rearm: &mut bool) {
        let mut drop_later = Vec::new();
        let mut close = Vec::new();
        let now = match &self.io_latency {
            Some(_) => sprint_core::metrics::now_raw(),
            None => 0,
        };
        {
            let mut st = self.state.lock();
            for &(ud, res, flags) in cqes {
                if ud == WAKE_TAG {
                    *rearm = true;
                    continue;
                }
                if ud == IGNORE_TAG {
                    continue;
                }
                let id = ud as u32;
                let more = cqueue::more(flags);
                let slot = st.slot(id);
                let kind = slot.kind;
                let mut cap = false;
                let ignored = match &mut slot.life {
                    Life::Waiting(w) => {
                        w.drain_into(wake);
                        slot.life = Life::Done(res, flags);
                        if let (Some(m), true) = (&self.io_latency, slot.started != 0) {
                            m.io.record(sprint_core::metrics::nanos_between(slot.started, now));
                        }
                        false
                    }
                    Life::Multi {
                        queue,
                        waker,
                        ended,
                        capped,
                    } => {
                        queue.push_back((res, flags));
                        *ended = !more;
                        waker.drain_into(wake);
                        if more && !*capped && queue.len() >= MULTISHOT_BACKLOG {
                            *capped = true;
                            cap = true;
                        }
                        false
                    }
                    Life::Ignored => true,
                    Life::Done(..) | Life::Free => {
                        tracing::error!(id, res, "a CQE for an operation that is not in flight");
                        false
                    }
                };
                if ignored {
                    st.discard(kind, res, flags, &mut close);
                    if !more {
                        st.release(id, &mut drop_later);
                    }
                }
                if cap {
                    self.fire_locked(&mut st, opcode::AsyncCancel::new(id as u64).build());
                }
            }
        }
        for fd in close {
            // SAFETY: accepted for nobody; this is its only owner.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        drop(drop_later);
    }
}

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
        let ring_buf_base = bufring
            .as_ref()
            .map(|b| (b.base as *const u8, RING_BUFFER_SIZE));
        let handle = Arc::new(UringHandle {
            ring,
            state: Mutex::new(State {
                chunks: Vec::new(),
                free: Vec::new(),
                in_flight: 0,
                unsubmitted: 0,
                closed: false,
                bufring,
            }),
            pool,
            fixed_pool,
            ring_buf_base,
            multishot_accept: caps.multishot_accept,
            eventfd,
            wake_buf: Box::new(UnsafeCell::new(0)),
            sqpoll: sqpoll.is_some(),
            io_latency: info.io_latency.clone(),
        });
        // Pre-size the slot table so steady state does not allocate.
        {
            let mut st = handle.state.lock();
            while st.chunks.len() * CHUNK < 256 {
                st.grow();
            }
        }
        OWNER_OF.with(|o| o.set(Arc::as_ptr(&handle) as usize));
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
        let mut st = self.handle.state.lock();
        match self.handle.push_locked(&mut st, &sqe) {
            Ok(()) => self.wake_armed = true,
            Err(e) => {
                tracing::error!(error = %e, "io_uring: cannot arm the wake-up read; retrying next turn")
            }
        }
    }

    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let h = &self.handle;
        let (pending, taskrun) = {
            let mut st = h.state.lock();
            // SAFETY: the state lock is held, so no other thread pushes
            // while this view exists. The lock is needed even to read the
            // flags: a submission-queue view stores the tail it loaded
            // back when dropped, and a view made outside the lock once
            // rolled the tail back under another thread's push, so the
            // kernel consumed stale entries again (a send submitted twice,
            // its second result read by the next operation in its slot).
            let taskrun = unsafe { h.ring.submission_shared() }.taskrun();
            (std::mem::take(&mut st.unsubmitted) > 0, taskrun)
        };
        // SAFETY: only this (the owner) thread reads the completion queue.
        let ready = !unsafe { h.ring.completion_shared() }.is_empty();
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
                    {
                        let mut st = h.state.lock();
                        h.push_locked(&mut st, &sqe)?;
                    }
                    // The kernel copies the timespec while submitting.
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
            let cq = unsafe { self.handle.ring.completion_shared() };
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
        let ids: Vec<u32> = {
            let mut st = self.handle.state.lock();
            st.closed = true;
            let mut ids = Vec::new();
            for (c, chunk) in st.chunks.iter().enumerate() {
                for (i, s) in chunk.iter().enumerate() {
                    if !matches!(s.life, Life::Free | Life::Done(..)) {
                        ids.push((c * CHUNK + i) as u32);
                    }
                }
            }
            ids
        };
        {
            let mut st = self.handle.state.lock();
            for id in ids {
                self.handle
                    .fire_locked(&mut st, opcode::AsyncCancel::new(id as u64).build());
            }
            if self.wake_armed {
                self.handle
                    .fire_locked(&mut st, opcode::AsyncCancel::new(WAKE_TAG).build());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut wake_done = !self.wake_armed;
        loop {
            let waiting = self
                .handle
                .state
                .lock()
                .chunks
                .iter()
                .flat_map(|c| c.iter())
                .any(|s| {
                    matches!(
                        s.life,
                        Life::Waiting(_) | Life::Multi { ended: false, .. } | Life::Ignored
                    )
                });
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
        OWNER_OF.with(|o| {
            if o.get() == Arc::as_ptr(&self.handle) as usize {
                o.set(0)
            }
        });
    }
}
