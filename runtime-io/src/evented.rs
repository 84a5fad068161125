//! A mio source registered with a driver: the glue every socket type uses.

use crate::driver::{self, EpollHandle};
use crate::driver_slot::Slot;
use crate::readiness::{Direction, ScheduledIo};
use mio::event::Source;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Owns a registered source; deregisters it on drop.
#[derive(Debug)]
pub(crate) struct Evented<S: Source> {
    source: Option<S>,
    handle: Arc<EpollHandle>,
    slot: Slot,
    /// Per direction, the raw clock reading when an operation first had to
    /// wait (0: none waiting): readiness I/O's "submission".
    waiting_since: [AtomicU64; 2],
}

impl<S: Source> Evented<S> {
    /// Registers `source` with this thread's driver.
    pub(crate) fn new(mut source: S) -> io::Result<Evented<S>> {
        let handle = match driver::current()? {
            driver::Current::Epoll(h) => h,
            #[cfg(target_os = "linux")]
            driver::Current::Uring(_) => {
                return Err(io::Error::other(
                    "a readiness source on an io_uring worker (this is a bug in sprint-io)",
                ))
            }
        };
        let slot = handle.register(&mut source)?;
        Ok(Evented {
            source: Some(source),
            handle,
            slot,
            waiting_since: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    pub(crate) fn get(&self) -> &S {
        self.source
            .as_ref()
            .unwrap_or_else(|| unreachable!("the source lives until drop"))
    }

    fn io(&self) -> &ScheduledIo {
        &self.slot.io
    }

    /// Runs `op` when the source is ready for `dir`, until it does not
    /// answer `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_op(cx, dir, op, |_| false)
    }

    /// [`poll_io`](Self::poll_io) for a read or write of `len` bytes at
    /// most on a stream or pipe. One that moved fewer bytes than asked
    /// (but some) found the socket's receive buffer drained, or its send
    /// buffer full, so the readiness it used is cleared then and there: the
    /// next call waits for the driver's next edge instead of making a
    /// system call that would only answer `WouldBlock` (a request-response
    /// connection reads each request whole, then waits). An edge that came
    /// in since the readiness was read is kept (the tick in the word).
    pub(crate) fn poll_transfer(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        len: usize,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, dir, op, |&n| n > 0 && n < len)
    }

    /// `poll_io`, clearing the readiness used when `op`'s answer says the
    /// source has nothing more for `dir` (`spent`).
    #[inline(always)]
    fn poll_op<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
        spent: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        loop {
            let ev = match self.io().poll_ready(cx, dir) {
                Poll::Ready(ev) => ev,
                Poll::Pending => {
                    self.waits(dir);
                    return Poll::Pending;
                }
            };
            match op(self.get()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.waits(dir);
                    self.io().clear(ev)
                }
                r => {
                    if matches!(&r, Ok(v) if spent(v)) {
                        self.io().clear(ev);
                    }
                    self.done(dir);
                    return Poll::Ready(r);
                }
            }
        }
    }

    /// An operation in `dir` has to wait: the latency clock starts (once).
    #[inline]
    fn waits(&self, dir: Direction) {
        // The waits a timed poll starts are timed: one in `sample_every`
        // (`sampling` is false with metrics off and off a worker).
        if sprint_core::metrics::sampling() {
            let w = &self.waiting_since[dir as usize];
            if w.load(Relaxed) == 0 {
                w.store(sprint_core::metrics::now_raw(), Relaxed);
            }
        }
    }

    /// An operation in `dir` finished: record how long it waited, if it
    /// did (one that never waited is not an I/O wait).
    #[inline(always)]
    fn done(&self, dir: Direction) {
        let w = &self.waiting_since[dir as usize];
        let since = w.load(Relaxed);
        if since != 0 {
            w.store(0, Relaxed);
            if let Some(m) = &self.handle.io_latency {
                m.record_io(sprint_core::metrics::nanos_between(
                    since,
                    sprint_core::metrics::now_raw(),
                ));
            }
        }
    }

    /// Runs `op` once, now, whatever the readiness says (a readiness word
    /// may lag the socket); if it would block, the readiness it saw is
    /// cleared so the next wait for `dir` really waits.
    pub(crate) fn try_io<R>(
        &self,
        dir: Direction,
        op: impl FnOnce(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let seen = self.io().snapshot(dir);
        let r = op(self.get());
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.io().clear(seen);
        }
        r
    }

    /// Deregisters the source and gives it back (for `into_std`).
    pub(crate) fn into_inner(mut self) -> S {
        let mut s = self
            .source
            .take()
            .unwrap_or_else(|| unreachable!("the source lives until drop"));
        self.handle.deregister(&mut s, &self.slot);
        s
    }

    /// Waits until the source is ready for `dir`.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<()> {
        self.io().poll_ready(cx, dir).map(|_| ())
    }
}

impl<S: Source> Drop for Evented<S> {
    fn drop(&mut self) {
        if let Some(mut s) = self.source.take() {
            self.handle.deregister(&mut s, &self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::EpollDriver;
    use crate::readiness::Direction::Read;
    use sprint_core::driver::Driver;
    use std::io::{Read as _, Write as _};
    use std::task::Waker;
    use std::time::Duration;

    /// One end of a Unix socket pair registered with a fresh epoll driver,
    /// and the other end to write into it.
    fn pair() -> (
        EpollDriver,
        Evented<mio::net::UnixStream>,
        mio::net::UnixStream,
    ) {
        let driver = EpollDriver::new(16, None, None, None).expect("epoll driver");
        let handle = driver.epoll_handle();
        let (mut ours, theirs) = mio::net::UnixStream::pair().expect("socket pair");
        let slot = handle.register(&mut ours).expect("register");
        let ev = Evented {
            source: Some(ours),
            handle,
            slot,
            waiting_since: [AtomicU64::new(0), AtomicU64::new(0)],
        };
        (driver, ev, theirs)
    }

    /// Writes `bytes` into the pair and turns the driver until it has
    /// reported them (readiness is edge-triggered: one turn, bounded).
    fn send(driver: &mut EpollDriver, to: &mut mio::net::UnixStream, bytes: &[u8]) {
        to.write_all(bytes).expect("write");
        driver
            .turn(Some(Duration::from_secs(10)))
            .expect("driver turn");
    }

    /// Reads into `len` bytes; `Some(n)` if ready, and how many times the
    /// read itself ran (0: the readiness word alone answered `Pending`).
    fn read(ev: &Evented<mio::net::UnixStream>, len: usize) -> (Option<usize>, usize) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = vec![0u8; len];
        let mut calls = 0;
        let r = ev.poll_transfer(&mut cx, Read, len, |s| {
            calls += 1;
            (&*s).read(&mut buf)
        });
        match r {
            Poll::Ready(r) => (Some(r.expect("read")), calls),
            Poll::Pending => (None, calls),
        }
    }

    #[test]
    fn a_short_read_waits_for_the_next_edge_without_reading_again() {
        let (mut driver, ev, mut peer) = pair();
        send(&mut driver, &mut peer, b"hello");
        assert_eq!(read(&ev, 64), (Some(5), 1), "the bytes there, in one read");
        // Fewer bytes than asked: the socket is drained, and the next read
        // waits for the driver without a system call that finds nothing.
        assert_eq!(read(&ev, 64), (None, 0), "waits, having read nothing");
        // The next edge brings the next bytes.
        send(&mut driver, &mut peer, b"world!");
        assert_eq!(read(&ev, 64), (Some(6), 1), "the next bytes");
    }

    #[test]
    fn a_full_read_keeps_readiness_so_the_rest_is_read_at_once() {
        let (mut driver, ev, mut peer) = pair();
        send(&mut driver, &mut peer, b"12345678");
        assert_eq!(read(&ev, 4), (Some(4), 1), "as many as asked");
        // The buffer filled: more may be there, and is.
        assert_eq!(read(&ev, 4), (Some(4), 1), "the rest, without a wait");
        // Now the socket is empty: the read that finds nothing clears
        // readiness, and the task waits.
        assert_eq!(read(&ev, 4), (None, 1), "one read finds nothing");
        assert_eq!(read(&ev, 4), (None, 0), "then the word answers");
    }
}
