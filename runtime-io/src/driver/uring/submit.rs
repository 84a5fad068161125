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

#[cfg(test)]
mod tests {
    use super::super::ops::{Keep, Kind, Leftovers, Routed, IGNORE_TAG};
    use super::*;
    use io_uring::opcode;
    use io_uring::types::{Fd, SubmitArgs, Timespec};
    use std::time::{Duration, Instant};

    /// Collects `want` CQEs from `ring`, waiting up to ten seconds.
    fn reap(ring: &Ring, want: usize) -> Vec<(u64, i32, u32)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < want {
            assert!(Instant::now() < deadline, "only {got:?} of {want} CQEs");
            let ts = Timespec::new().nsec(100_000_000);
            let args = SubmitArgs::new().timespec(&ts);
            match ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(e) => panic!("io_uring_enter: {e}"),
            }
            // SAFETY: this test is the ring's only user.
            got.extend(
                unsafe { ring.completion() }.map(|c| (c.user_data(), c.result(), c.flags())),
            );
        }
        got
    }

    /// The whole path of a cancelled operation on a real ring: the slot is
    /// taken and pushed under the lock, ignored with a cancel, and freed by
    /// its last CQE, not before.
    #[test]
    fn a_cancelled_read_is_freed_by_its_last_cqe_on_a_real_ring() {
        if !crate::testing::uring() {
            return;
        }
        let ring = IoUring::new(8).expect("a ring");
        if !ring.params().is_feature_ext_arg() {
            sprint_testkit::skip("uring", "this kernel's io_uring has no EXT_ARG (5.11)");
            return;
        }
        let ring = Ring::new(ring, State::new(OpTable::with_capacity(1), None));
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let mut buf = [0u8; 8];
        let id = {
            let mut st = ring.lock();
            let (id, _) = st.ops.open(Kind::Plain, Keep::None, false, 0);
            let sqe = opcode::Read::new(Fd(fds[0]), buf.as_mut_ptr(), 8)
                .build()
                .user_data(id as u64);
            // SAFETY: `buf` and the pipe outlive the read: the test reaps
            // its CQE before either goes.
            unsafe { st.push(&sqe) }.unwrap();
            assert!(st.take_unsubmitted());
            assert!(!st.take_unsubmitted(), "taken once");
            id
        };
        ring.submitter().submit().unwrap();
        {
            let mut st = ring.lock();
            let s = &mut *st;
            let mut left = Leftovers::default();
            assert!(s
                .ops
                .ignore(id, true, Keep::None, &mut left, &mut s.bufring));
            let cancel = opcode::AsyncCancel::new(id as u64)
                .build()
                .user_data(IGNORE_TAG);
            // SAFETY: a cancel names a user_data, no memory.
            unsafe { st.push(&cancel) }.unwrap();
        }
        let cqes = reap(&ring, 2);
        let mut st = ring.lock();
        let mut routed = Vec::new();
        for &(ud, res, flags) in &cqes {
            let s = &mut *st;
            let (mut wake, mut left) = (Vec::new(), Leftovers::default());
            routed.push(
                s.ops
                    .complete(ud, res, flags, &mut wake, &mut left, &mut s.bufring),
            );
            assert!(wake.is_empty(), "nobody waits on an ignored read");
        }
        assert!(
            routed.contains(&Routed::Untracked),
            "the cancel's own CQE: {cqes:?}"
        );
        assert!(routed.contains(&Routed::Discarded), "the read's: {cqes:?}");
        let read = cqes.iter().find(|c| c.0 == id as u64).unwrap();
        assert!(matches!(-read.1, libc::ECANCELED | libc::EINTR), "{read:?}");
        assert!(st.ops.live().is_empty());
        assert!(!st.ops.awaiting_kernel());
        drop(st);
        for fd in fds {
            // SAFETY: the pipe's descriptors, owned here, closed once.
            unsafe { libc::close(fd) };
        }
    }
}
