//! The submission queue, reachable only under the state lock.
//!
//! Any thread may start an operation on a worker's ring (sockets are
//! `Send`), so pushes to the submission queue (SQ) must be serialised.
//! The rule is: **the SQ is touched only while the state lock is held**,
//! even to read its flags. The io-uring crate's SQ view caches the tail
//! and stores it back when dropped, so a view made outside the lock once
//! rolled the tail back under another thread's push: the kernel consumed
//! stale entries again (a send submitted twice, its second result read by
//! the next operation in its slot).
//!
//! The types make that rule hold, not comments at the call sites:
//! [`Ring`] owns the `IoUring` in a private field and offers no SQ view;
//! the only way to the SQ is [`Locked`] (`push`, `taskrun`), and a
//! `Locked` is made only by [`Ring::lock`], holding the guard of the
//! state mutex. Code that pushes without the lock does not compile.
//!
//! What needs no lock: handing the queue to the kernel
//! (`io_uring_enter`, through [`Ring::submitter`]) reads the SQ's head and
//! tail atomically and writes neither; reading the completion queue is
//! the owning worker's alone ([`Ring::completion`]).

use super::bufring::BufRing;
use super::ops::OpTable;
use io_uring::{cqueue, squeue, CompletionQueue, IoUring, Submitter};
use parking_lot::{Mutex, MutexGuard};
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, RawFd};

/// What the state lock guards: the op table, the provided-buffer ring,
/// and (through [`Locked`]) the submission queue.
pub(super) struct State {
    pub(super) ops: OpTable,
    pub(super) bufring: Option<BufRing>,
    /// The driver has shut down: no new operations.
    pub(super) closed: bool,
    /// SQEs pushed since the kernel last took the queue.
    unsubmitted: u32,
}

impl State {
    pub(super) fn new(ops: OpTable, bufring: Option<BufRing>) -> State {
        State {
            ops,
            bufring,
            closed: false,
            unsubmitted: 0,
        }
    }
}

/// A ring and the state locked with its submission queue.
pub(super) struct Ring {
    // Field order is drop order: the ring goes first, so the kernel is
    // done with the buffer ring in the state before it is unmapped.
    ring: IoUring,
    state: Mutex<State>,
}

impl Ring {
    pub(super) fn new(ring: IoUring, state: State) -> Ring {
        Ring {
            ring,
            state: Mutex::new(state),
        }
    }

    /// Takes the state lock: the way to the submission queue.
    pub(super) fn lock(&self) -> Locked<'_> {
        Locked {
            ring: &self.ring,
            state: self.state.lock(),
        }
    }

    /// `io_uring_enter` and registration: hands the queued SQEs to the
    /// kernel and waits for completions. Needs no lock (see the module
    /// notes).
    pub(super) fn submitter(&self) -> Submitter<'_> {
        self.ring.submitter()
    }

    /// The completion queue.
    ///
    /// # Safety
    /// Only the thread that owns the ring (its worker) reads completions,
    /// and one view at a time.
    pub(super) unsafe fn completion(&self) -> CompletionQueue<'_, cqueue::Entry> {
        // SAFETY: the caller is the only reader of the completion queue.
        unsafe { self.ring.completion_shared() }
    }
}

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}

/// The state lock, held: the state, and the submission queue.
pub(super) struct Locked<'a> {
    ring: &'a IoUring,
    state: MutexGuard<'a, State>,
}

impl Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Locked<'_> {
    /// Queues `sqe`. A full queue is handed to the kernel and the push
    /// retried a bounded number of times (the kernel can refuse with EBUSY
    /// while completions overflow, and this thread may be the one that
    /// must reap them), then it is an error.
    ///
    /// # Safety
    /// Every pointer in `sqe` stays valid, and the memory it names is not
    /// otherwise used, until the kernel's last CQE for it (or, for an
    /// operation the kernel reads only while submitting, until the next
    /// `io_uring_enter` returns).
    pub(super) unsafe fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        for attempt in 0..64 {
            // SAFETY: `self` holds the state lock, so this is the only
            // submission-queue view; the entry's memory is the caller's
            // promise.
            let pushed = unsafe { self.ring.submission_shared().push(sqe) };
            if pushed.is_ok() {
                self.state.unsubmitted += 1;
                return Ok(());
            }
            // The queue is full: hand it to the kernel and retry.
            match self.ring.submitter().submit() {
                Ok(_) => self.state.unsubmitted = 0,
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

    /// Whether the kernel has deferred work for this ring that only an
    /// `io_uring_enter` runs (`IORING_SQ_TASKRUN`).
    pub(super) fn taskrun(&self) -> bool {
        // SAFETY: `self` holds the state lock, so this is the only
        // submission-queue view (dropping it stores back the tail it read,
        // which no other thread can have moved meanwhile).
        unsafe { self.ring.submission_shared() }.taskrun()
    }

    /// Whether SQEs were queued since the last call (and forgets them:
    /// the caller is about to enter the kernel).
    pub(super) fn take_unsubmitted(&mut self) -> bool {
        std::mem::take(&mut self.state.unsubmitted) > 0
    }
}
