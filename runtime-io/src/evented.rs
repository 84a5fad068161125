//! A mio source registered with a driver: the glue every socket type uses.

use crate::driver::{self, EpollHandle};
use crate::driver_slot::Slot;
use crate::readiness::{Direction, ScheduledIo};
use mio::event::Source;
use std::io;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Owns a registered source; deregisters it on drop.
#[derive(Debug)]
pub(crate) struct Evented<S: Source> {
    source: Option<S>,
    handle: Arc<EpollHandle>,
    slot: Slot,
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
            let ev = ready!(self.io().poll_ready(cx, dir));
            match op(self.get()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io().clear(ev),
                r => return Poll::Ready(r),
            }
        }
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
