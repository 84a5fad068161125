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
        mut op: impl FnMut(&S) -> io::Result<R>,
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
