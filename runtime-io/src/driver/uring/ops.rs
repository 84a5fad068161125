//! The op slot table: where an operation lives between its submission and
//! the kernel's last completion for it.
//!
//! An operation takes a slot; the slot's index is the SQE's `user_data`,
//! so a CQE finds its slot directly. The slot holds the waiting tasks'
//! wakers, the result once the CQE arrives, and whatever memory the
//! kernel may still touch (the buffer, the socket address, the iovecs).
//!
//! The rule that makes this safe: **a slot outlives the future that
//! started it.** A future dropped in flight does not free its slot; it
//! marks it ignored ([`OpTable::ignore`]), and the slot is freed, with the
//! memory it keeps, only when the kernel's last CQE for it arrives. So a
//! slot index is never reused while the kernel can still complete the old
//! operation: a late CQE cannot land in a new operation's slot, and a late
//! kernel write cannot land in freed memory. That is why slots carry no
//! generation number. (Two tags are not slots: the worker's wake-up read
//! and fire-and-forget SQEs such as cancels and closes.)
//!
//! A result nobody will read is discarded with care: a connection
//! accepted or a file opened for nobody is closed, a provided buffer the kernel picked is
//! given back to the buffer ring.
//!
//! Slots live in chunks of [`CHUNK`] that never move once made (the table
//! grows by whole chunks and never shrinks), so the kernel can be pointed
//! into a slot's [`KernelData`]. The table is plain data: the driver keeps
//! it in the state behind the ring's lock.

use crate::buf::PoolBuf;
use io_uring::cqueue;
use std::any::Any;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll, Waker};

/// The `user_data` of the worker's wake-up read (not a slot).
pub(super) const WAKE_TAG: u64 = u64::MAX;
/// The `user_data` of SQEs nobody waits for: cancels, closes, timeouts.
pub(super) const IGNORE_TAG: u64 = u64::MAX - 1;
/// Slots per chunk.
pub(super) const CHUNK: usize = 64;
/// Results a multishot operation queues before it is cancelled for
/// backpressure (and restarted once they are taken).
const MULTISHOT_BACKLOG: usize = 64;
/// Iovecs one vectored send carries at most.
pub(crate) const MAX_IOV: usize = 16;

/// An operation's id in its driver: its slot's index.
pub(crate) type OpId = u32;

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
    /// An open (`sprint_io::fs`): a file opened for nobody is closed.
    Open,
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

/// Where a slot is in its life.
enum Life {
    Free,
    /// A single-shot operation in flight.
    Waiting(Waiters),
    /// Its CQE arrived; the future has not taken the result yet.
    Done(i32, u32),
    /// A multishot operation: results queue until taken.
    Multi {
        queue: VecDeque<(i32, u32)>,
        waker: Waiters,
        ended: bool,
        /// Cancelled because nobody takes the results: a multishot accept
        /// stops accepting once `MULTISHOT_BACKLOG` wait, and restarts when
        /// they are taken (backpressure, and no run on descriptors).
        capped: bool,
    },
    /// Its future went away; freed at the kernel's last CQE.
    Ignored,
}

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

/// Where provided buffers of discarded results go back to (the buffer
/// ring; a list in tests).
pub(super) trait GiveBack {
    /// Gives provided buffer `bid` back.
    fn give_back(&mut self, bid: u16);
}

/// What freeing and discarding leave to finish once the lock is released:
/// connections accepted for nobody to close, kept memory to drop.
#[derive(Default)]
pub(super) struct Leftovers {
    close: Vec<RawFd>,
    drop: Vec<Keep>,
}

impl Leftovers {
    /// Closes and drops what was left (call without the lock held).
    pub(super) fn finish(self) {
        for fd in self.close {
            // SAFETY: the kernel accepted this fd for an operation nobody
            // reads; the table handed it here and nowhere else.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        drop(self.drop);
    }
}

/// What one CQE did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Routed {
    /// The worker's wake-up read completed: re-arm it.
    WakeUp,
    /// A fire-and-forget SQE's CQE: nothing to do.
    Untracked,
    /// A single-shot operation finished; `started` is its submission time
    /// (0 if unsampled).
    Finished { started: u64 },
    /// A multishot result was queued; `cap`: the backlog is full, cancel
    /// the operation (it restarts once the results are taken).
    Queued { cap: bool },
    /// An ignored operation's result was discarded (and the slot freed if
    /// it was the last).
    Discarded,
    /// A CQE for a slot not in flight: logged and dropped.
    Stray,
}

/// The slot table.
pub(super) struct OpTable {
    chunks: Vec<Box<[Slot]>>,
    free: Vec<OpId>,
    in_flight: usize,
}

impl OpTable {
    /// A table with room for at least `slots` operations before it grows.
    pub(super) fn with_capacity(slots: usize) -> OpTable {
        let mut t = OpTable {
            chunks: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
        };
        while t.capacity() < slots {
            t.grow();
        }
        t
    }

    /// Slots made so far (in flight or free).
    pub(super) fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    fn slot(&mut self, id: OpId) -> &mut Slot {
        &mut self.chunks[id as usize / CHUNK][id as usize % CHUNK]
    }

    /// Adds a chunk of free slots (chunks never move once made).
    fn grow(&mut self) {
        let first = self.capacity() as u32;
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

    /// Takes a slot for a new operation (growing the table if every slot
    /// is taken) and returns its id with its kernel memory, for the SQE.
    /// `started` is the submission time for the latency histogram (0: not
    /// sampled).
    pub(super) fn open(
        &mut self,
        kind: Kind,
        keep: Keep,
        multishot: bool,
        started: u64,
    ) -> (OpId, &mut KernelData) {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.grow();
                self.free
                    .pop()
                    .unwrap_or_else(|| unreachable!("a chunk was just added"))
            }
        };
        self.in_flight += 1;
        let slot = self.slot(id);
        slot.kind = kind;
        slot.keep = keep;
        slot.started = started;
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
        // SAFETY: the slot was free until now, so the kernel knows nothing
        // of it, and `&mut self` makes this the only reference.
        let kernel = unsafe { &mut *slot.kernel.get() };
        (id, kernel)
    }

    /// Frees `id`, handing its memory to `out` to drop outside the lock.
    fn release(&mut self, id: OpId, out: &mut Leftovers) {
        let slot = self.slot(id);
        slot.life = Life::Free;
        slot.kind = Kind::Plain;
        let keep = std::mem::replace(&mut slot.keep, Keep::None);
        if !matches!(keep, Keep::None) {
            out.drop.push(keep);
        }
        self.free.push(id);
        self.in_flight -= 1;
    }

    /// Frees `id`, whose SQE never reached the queue; returns the memory
    /// it kept (to drop outside the lock).
    pub(super) fn abandon(&mut self, id: OpId) -> Keep {
        let keep = std::mem::replace(&mut self.slot(id).keep, Keep::None);
        self.release(id, &mut Leftovers::default());
        keep
    }

    /// A result nobody will read: close what it opened, give back the
    /// provided buffer it took.
    fn discard(kind: Kind, res: i32, flags: u32, out: &mut Leftovers, bufs: &mut impl GiveBack) {
        if matches!(kind, Kind::Accept | Kind::Open) && res >= 0 {
            out.close.push(res);
        }
        if let Some(bid) = cqueue::buffer_select(flags) {
            bufs.give_back(bid);
        }
    }

    /// The result of single-shot `id` (and the memory it kept), freeing
    /// the slot; or `Pending` with `cx`'s waker registered.
    pub(super) fn poll_op(&mut self, id: OpId, cx: &Context<'_>) -> Poll<(i32, u32, Keep)> {
        let slot = self.slot(id);
        match &mut slot.life {
            Life::Done(res, flags) => {
                let (res, flags) = (*res, *flags);
                let keep = std::mem::replace(&mut slot.keep, Keep::None);
                self.release(id, &mut Leftovers::default());
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
    pub(super) fn poll_multi(&mut self, id: OpId, cx: &Context<'_>) -> Poll<Option<(i32, u32)>> {
        let slot = self.slot(id);
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
                    self.release(id, &mut Leftovers::default());
                    return Poll::Ready(None);
                }
                waker.register(cx);
                Poll::Pending
            }
            _ => unreachable!("poll_multi on a slot that is not multishot"),
        }
    }

    /// Gives slot `id` memory to keep until the kernel is done.
    pub(super) fn attach(&mut self, id: OpId, keep: Keep) {
        self.slot(id).keep = keep;
    }

    /// Nobody will read `id`'s result: the slot keeps `keep` (if any)
    /// until the kernel's last CQE, then frees it. Returns whether the
    /// kernel should be asked to cancel the operation: a running multishot
    /// always is (it would never end), a single-shot one if `cancel`.
    pub(super) fn ignore(
        &mut self,
        id: OpId,
        cancel: bool,
        keep: Keep,
        out: &mut Leftovers,
        bufs: &mut impl GiveBack,
    ) -> bool {
        let slot = self.slot(id);
        if !matches!(keep, Keep::None) {
            slot.keep = keep;
        }
        let kind = slot.kind;
        match std::mem::replace(&mut slot.life, Life::Ignored) {
            Life::Done(res, flags) => {
                Self::discard(kind, res, flags, out, bufs);
                self.release(id, out);
                false
            }
            Life::Multi { queue, ended, .. } => {
                for (res, flags) in queue {
                    Self::discard(kind, res, flags, out, bufs);
                }
                if ended {
                    self.release(id, out);
                }
                !ended
            }
            Life::Waiting(_) => cancel,
            Life::Ignored | Life::Free => {
                unreachable!("an operation ignored twice")
            }
        }
    }

    /// Routes one CQE (`user_data`, result, flags) to its slot; the tasks
    /// to wake go to `wake`.
    pub(super) fn complete(
        &mut self,
        user_data: u64,
        res: i32,
        flags: u32,
        wake: &mut Vec<Waker>,
        out: &mut Leftovers,
        bufs: &mut impl GiveBack,
    ) -> Routed {
        if user_data == WAKE_TAG {
            return Routed::WakeUp;
        }
        if user_data == IGNORE_TAG {
            return Routed::Untracked;
        }
        let id = user_data as OpId;
        let more = cqueue::more(flags);
        let slot = self.slot(id);
        let kind = slot.kind;
        match &mut slot.life {
            Life::Waiting(w) => {
                w.drain_into(wake);
                slot.life = Life::Done(res, flags);
                Routed::Finished {
                    started: slot.started,
                }
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
                let cap = more && !*capped && queue.len() >= MULTISHOT_BACKLOG;
                *capped |= cap;
                Routed::Queued { cap }
            }
            Life::Ignored => {
                Self::discard(kind, res, flags, out, bufs);
                if !more {
                    self.release(id, out);
                }
                Routed::Discarded
            }
            Life::Done(..) | Life::Free => {
                tracing::error!(id, res, "a CQE for an operation that is not in flight");
                Routed::Stray
            }
        }
    }

    /// Operations the kernel may still complete and nobody has read:
    /// every slot but the free and the finished ones.
    pub(super) fn live(&self) -> Vec<OpId> {
        let mut ids = Vec::new();
        for (c, chunk) in self.chunks.iter().enumerate() {
            for (i, s) in chunk.iter().enumerate() {
                if !matches!(s.life, Life::Free | Life::Done(..)) {
                    ids.push((c * CHUNK + i) as OpId);
                }
            }
        }
        ids
    }

    /// Whether any operation still waits for a CQE from the kernel.
    pub(super) fn awaiting_kernel(&self) -> bool {
        self.chunks.iter().flat_map(|c| c.iter()).any(|s| {
            matches!(
                s.life,
                Life::Waiting(_) | Life::Multi { ended: false, .. } | Life::Ignored
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// A waker that counts its wakes.
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn counting() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// `IORING_CQE_F_MORE`: more CQEs follow for this operation.
    const MORE: u32 = 1 << 1;
    /// `IORING_CQE_F_BUFFER` with buffer id `bid`.
    fn picked(bid: u16) -> u32 {
        1 | (bid as u32) << 16
    }

    fn open(t: &mut OpTable, kind: Kind, keep: Keep, multishot: bool) -> OpId {
        t.open(kind, keep, multishot, 0).0
    }

    fn complete(
        t: &mut OpTable,
        id: OpId,
        res: i32,
        flags: u32,
    ) -> (Routed, Vec<Waker>, Leftovers, Vec<u16>) {
        let (mut wake, mut left, mut given) = (Vec::new(), Leftovers::default(), Vec::new());
        let r = t.complete(id as u64, res, flags, &mut wake, &mut left, &mut given);
        (r, wake, left, given)
    }

    impl GiveBack for Vec<u16> {
        fn give_back(&mut self, bid: u16) {
            self.push(bid);
        }
    }

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn a_completed_operation_is_read_once_and_its_slot_reused() {
        let mut t = OpTable::with_capacity(1);
        assert_eq!(t.capacity(), CHUNK);
        let a = open(&mut t, Kind::Plain, Keep::None, false);
        let b = open(&mut t, Kind::Plain, Keep::None, false);
        assert_ne!(a, b);
        assert_eq!(t.in_flight, 2);
        assert!(t.poll_op(a, &cx()).is_pending());
        assert_eq!(complete(&mut t, a, 7, 0).0, Routed::Finished { started: 0 });
        match t.poll_op(a, &cx()) {
            Poll::Ready((7, 0, Keep::None)) => {}
            _ => panic!("the result and flags of the CQE"),
        }
        assert_eq!(t.in_flight, 1);
        // The freed slot is the next one taken.
        assert_eq!(open(&mut t, Kind::Plain, Keep::None, false), a);
    }

    #[test]
    fn the_submission_time_comes_back_with_the_completion() {
        let mut t = OpTable::with_capacity(1);
        let (id, _) = t.open(Kind::Plain, Keep::None, false, 12345);
        assert_eq!(
            complete(&mut t, id, 0, 0).0,
            Routed::Finished { started: 12345 }
        );
    }

    #[test]
    fn a_completion_wakes_every_task_waiting_on_the_operation_once() {
        let mut t = OpTable::with_capacity(1);
        let id = open(&mut t, Kind::Plain, Keep::None, false);
        let (c1, w1) = counting();
        let (c2, w2) = counting();
        for w in [&w1, &w2, &w1] {
            assert!(t.poll_op(id, &Context::from_waker(w)).is_pending());
        }
        let (_, wake, _, _) = complete(&mut t, id, 0, 0);
        assert_eq!(wake.len(), 2, "each task once");
        wake.into_iter().for_each(Waker::wake);
        assert_eq!(c1.0.load(Ordering::SeqCst), 1);
        assert_eq!(c2.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_ignored_operation_keeps_its_slot_and_memory_until_its_cqe() {
        let mut t = OpTable::with_capacity(1);
        let memory = Arc::new(());
        let id = open(
            &mut t,
            Kind::Plain,
            Keep::Bufs(Box::new(memory.clone())),
            false,
        );
        let mut left = Leftovers::default();
        let cancel = t.ignore(id, true, Keep::None, &mut left, &mut Vec::new());
        assert!(cancel, "a single-shot operation is cancelled when asked");
        assert!(left.drop.is_empty() && left.close.is_empty());
        // Not reused while the kernel may still complete it.
        assert_eq!(t.in_flight, 1);
        assert_eq!(t.live(), vec![id]);
        assert!(t.awaiting_kernel());
        let other = open(&mut t, Kind::Plain, Keep::None, false);
        assert_ne!(other, id);
        assert_eq!(
            Arc::strong_count(&memory),
            2,
            "the kernel may still write it"
        );
        // The cancel's result frees the slot and hands back its memory.
        let (r, wake, left, _) = complete(&mut t, id, -libc::ECANCELED, 0);
        assert_eq!(r, Routed::Discarded);
        assert!(wake.is_empty());
        assert_eq!(t.in_flight, 1);
        assert_eq!(Arc::strong_count(&memory), 2, "dropped outside the lock");
        left.finish();
        assert_eq!(Arc::strong_count(&memory), 1);
        assert_eq!(open(&mut t, Kind::Plain, Keep::None, false), id);
    }

    #[test]
    fn ignoring_without_cancel_asks_for_no_cancel() {
        let mut t = OpTable::with_capacity(1);
        let id = open(&mut t, Kind::Plain, Keep::None, false);
        let mut left = Leftovers::default();
        assert!(!t.ignore(id, false, Keep::None, &mut left, &mut Vec::new()));
        assert_eq!(complete(&mut t, id, 3, 0).0, Routed::Discarded);
        assert_eq!(t.in_flight, 0);
    }

    #[test]
    fn ignoring_a_finished_operation_frees_it_at_once() {
        let mut t = OpTable::with_capacity(1);
        let memory = Arc::new(());
        let id = open(
            &mut t,
            Kind::Plain,
            Keep::Bufs(Box::new(memory.clone())),
            false,
        );
        complete(&mut t, id, 5, 0);
        let mut left = Leftovers::default();
        assert!(!t.ignore(id, true, Keep::None, &mut left, &mut Vec::new()));
        assert_eq!(t.in_flight, 0);
        assert!(t.live().is_empty());
        left.finish();
        assert_eq!(Arc::strong_count(&memory), 1);
    }

    #[test]
    fn a_stray_cqe_changes_nothing() {
        let mut t = OpTable::with_capacity(1);
        let id = open(&mut t, Kind::Plain, Keep::None, false);
        complete(&mut t, id, 1, 0);
        // A second CQE for a single-shot operation already done: dropped,
        // the first result stays.
        let (r, wake, _, _) = complete(&mut t, id, 99, 0);
        assert_eq!(r, Routed::Stray);
        assert!(wake.is_empty());
        assert!(matches!(t.poll_op(id, &cx()), Poll::Ready((1, 0, _))));
        // A CQE for a free slot: dropped; the slot stays free and whole.
        assert_eq!(complete(&mut t, id, 2, 0).0, Routed::Stray);
        assert_eq!(t.in_flight, 0);
        assert_eq!(open(&mut t, Kind::Plain, Keep::None, false), id);
        assert!(
            t.poll_op(id, &cx()).is_pending(),
            "the new operation has no result yet"
        );
    }

    #[test]
    fn the_wake_up_read_and_untracked_sqes_are_not_slots() {
        let mut t = OpTable::with_capacity(1);
        let (mut wake, mut left) = (Vec::new(), Leftovers::default());
        let mut given = Vec::new();
        assert_eq!(
            t.complete(WAKE_TAG, 8, 0, &mut wake, &mut left, &mut given),
            Routed::WakeUp
        );
        assert_eq!(
            t.complete(
                IGNORE_TAG,
                -libc::ENOENT,
                0,
                &mut wake,
                &mut left,
                &mut given
            ),
            Routed::Untracked
        );
        assert_eq!(t.in_flight, 0);
    }

    #[test]
    fn multishot_results_queue_in_order_and_the_slot_frees_after_the_last() {
        let mut t = OpTable::with_capacity(1);
        let id = open(&mut t, Kind::Accept, Keep::None, true);
        assert!(t.poll_multi(id, &cx()).is_pending());
        assert_eq!(
            complete(&mut t, id, 10, MORE).0,
            Routed::Queued { cap: false }
        );
        assert_eq!(
            complete(&mut t, id, 11, MORE).0,
            Routed::Queued { cap: false }
        );
        assert_eq!(t.poll_multi(id, &cx()), Poll::Ready(Some((10, MORE))));
        assert_eq!(t.poll_multi(id, &cx()), Poll::Ready(Some((11, MORE))));
        assert!(t.poll_multi(id, &cx()).is_pending());
        complete(&mut t, id, -libc::ECANCELED, 0);
        assert_eq!(
            t.poll_multi(id, &cx()),
            Poll::Ready(Some((-libc::ECANCELED, 0)))
        );
        assert_eq!(t.in_flight, 1, "freed when the end is seen");
        assert_eq!(t.poll_multi(id, &cx()), Poll::Ready(None));
        assert_eq!(t.in_flight, 0);
    }

    #[test]
    fn a_multishot_backlog_is_capped_once() {
        let mut t = OpTable::with_capacity(1);
        let id = open(&mut t, Kind::Plain, Keep::None, true);
        let caps: Vec<bool> = (0..MULTISHOT_BACKLOG + 3)
            .map(|i| match complete(&mut t, id, i as i32, MORE).0 {
                Routed::Queued { cap } => cap,
                r => panic!("{r:?}"),
            })
            .collect();
        let at: Vec<usize> = caps
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            at,
            vec![MULTISHOT_BACKLOG - 1],
            "one cancel, when the backlog fills"
        );
    }

    #[test]
    fn an_ignored_multishot_is_cancelled_and_its_unread_results_discarded() {
        let mut t = OpTable::with_capacity(1);
        let id = open(&mut t, Kind::Accept, Keep::None, true);
        complete(&mut t, id, 40, MORE);
        complete(&mut t, id, -libc::EMFILE, MORE);
        let (mut left, mut given) = (Leftovers::default(), Vec::new());
        assert!(
            t.ignore(id, false, Keep::None, &mut left, &mut given),
            "a running multishot is always cancelled"
        );
        // Connections accepted for nobody are closed; errors are not fds.
        // (Taken out before `left` drops: fd 40 is not really ours.)
        assert_eq!(std::mem::take(&mut left.close), vec![40]);
        // Later results are discarded too; the last frees the slot.
        let (r, _, mut left, _) = complete(&mut t, id, 41, MORE);
        assert_eq!(r, Routed::Discarded);
        assert_eq!(std::mem::take(&mut left.close), vec![41]);
        assert_eq!(t.in_flight, 1);
        complete(&mut t, id, -libc::ECANCELED, 0);
        assert_eq!(t.in_flight, 0);
    }

    #[test]
    fn a_file_opened_for_nobody_is_closed() {
        let mut t = OpTable::with_capacity(1);
        let id = open(&mut t, Kind::Open, Keep::None, false);
        let mut left = Leftovers::default();
        assert!(t.ignore(id, true, Keep::None, &mut left, &mut Vec::new()));
        let (r, _, mut left, _) = complete(&mut t, id, 42, 0);
        assert_eq!(r, Routed::Discarded);
        // (Taken out before `left` drops: fd 42 is not really ours.)
        assert_eq!(std::mem::take(&mut left.close), vec![42]);
        // A failed open has nothing to close.
        let id = open(&mut t, Kind::Open, Keep::None, false);
        t.ignore(
            id,
            true,
            Keep::None,
            &mut Leftovers::default(),
            &mut Vec::new(),
        );
        let (_, _, left, _) = complete(&mut t, id, -libc::ENOENT, 0);
        assert!(left.close.is_empty());
    }

    #[test]
    fn a_discarded_receive_gives_its_provided_buffer_back() {
        let mut t = OpTable::with_capacity(1);
        let id = open(&mut t, Kind::Plain, Keep::None, false);
        let (mut left, mut given) = (Leftovers::default(), Vec::new());
        t.ignore(id, true, Keep::None, &mut left, &mut given);
        let (_, _, _, given) = complete(&mut t, id, 100, picked(17));
        assert_eq!(given, vec![17]);
        // A finished receive ignored before it was read: the same.
        let id = open(&mut t, Kind::Plain, Keep::None, false);
        complete(&mut t, id, 100, picked(18));
        let mut given = Vec::new();
        t.ignore(id, true, Keep::None, &mut Leftovers::default(), &mut given);
        assert_eq!(given, vec![18]);
    }

    #[test]
    fn the_table_grows_by_chunks_that_never_move() {
        let mut t = OpTable::with_capacity(0);
        assert_eq!(t.capacity(), 0);
        let first = open(&mut t, Kind::Plain, Keep::None, false);
        let kernel = t.chunks[0][first as usize].kernel.get() as usize;
        let ids: Vec<OpId> = (0..CHUNK * 2)
            .map(|_| open(&mut t, Kind::Plain, Keep::None, false))
            .collect();
        assert_eq!(t.capacity(), CHUNK * 3);
        let mut all = ids.clone();
        all.push(first);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), CHUNK * 2 + 1, "every id distinct");
        assert_eq!(
            t.chunks[0][first as usize].kernel.get() as usize,
            kernel,
            "the kernel's pointers into a slot stay valid as the table grows"
        );
        assert_eq!(t.live().len(), CHUNK * 2 + 1);
    }

    #[test]
    fn an_abandoned_start_frees_its_slot_and_returns_its_memory() {
        let mut t = OpTable::with_capacity(1);
        let memory = Arc::new(());
        let id = open(
            &mut t,
            Kind::Plain,
            Keep::Bufs(Box::new(memory.clone())),
            false,
        );
        let keep = t.abandon(id);
        assert_eq!(t.in_flight, 0);
        drop(keep);
        assert_eq!(Arc::strong_count(&memory), 1);
    }
}
