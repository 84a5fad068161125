//! A non-blocking fd served by readiness on either driver: try the system
//! call, and on `WouldBlock` wait until the fd is ready, then try again.
//!
//! What it serves: fds whose operations io_uring has no completion form
//! for that fits, or where a completion form would take data for a future
//! that may go away: Unix datagram sockets (a datagram received for a
//! dropped future would be lost), pipes to a child process, a pidfd (it
//! only ever becomes readable). On epoll the fd is registered with the
//! worker's poller (`Evented`). On io_uring a wait is a `POLL_ADD` per
//! direction that this fd owns: a wait dropped in flight leaves it for the
//! next one, and dropping the fd cancels it. A `POLL_ADD` carries no
//! memory, so nothing the kernel writes can outlive what it points at.

#[cfg(target_os = "linux")]
use crate::driver::uring::{Keep, Kind, OpId};
#[cfg(target_os = "linux")]
use crate::driver::UringHandle;
use crate::driver::{self, Current};
use crate::evented::Evented;
use crate::readiness::Direction;
use mio::event::Source;
#[cfg(target_os = "linux")]
use parking_lot::Mutex;
use std::future::poll_fn;
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::OwnedFd;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
#[cfg(target_os = "linux")]
use std::sync::Arc;
use std::task::{Context, Poll};

/// A non-blocking fd on the epoll or the io_uring driver.
#[derive(Debug)]
pub(crate) enum ReadyIo<S: Source> {
    Epoll(Evented<S>),
    #[cfg(target_os = "linux")]
    Uring(UringReady<S>),
}

/// The io_uring form: the fd, and the poll in flight per direction.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct UringReady<S> {
    source: Option<S>,
    handle: Arc<UringHandle>,
    polls: Mutex<[Option<OpId>; 2]>,
}

#[cfg(target_os = "linux")]
impl<S: AsRawFd> UringReady<S> {
    fn get(&self) -> &S {
        self.source
            .as_ref()
            .unwrap_or_else(|| unreachable!("the source lives until drop"))
    }

    fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<()>> {
        let mut polls = self.polls.lock();
        let slot = &mut polls[dir as usize];
        let id = match *slot {
            Some(id) => id,
            None => {
                let fd = io_uring::types::Fd(self.get().as_raw_fd());
                let events = match dir {
                    Direction::Read => libc::POLLIN,
                    Direction::Write => libc::POLLOUT,
                };
                let id = self.handle.start(Kind::Plain, Keep::None, false, |_| {
                    io_uring::opcode::PollAdd::new(fd, events as u32).build()
                })?;
                *slot = Some(id);
                id
            }
        };
        let (res, _, _) = std::task::ready!(self.handle.poll_op(id, cx));
        *slot = None;
        Poll::Ready(if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(())
        })
    }

    /// Cancels the polls in flight and gives the source back.
    fn take(&mut self) -> Option<S> {
        for id in self.polls.get_mut().iter_mut().filter_map(Option::take) {
            self.handle.ignore(id, true, Keep::None);
        }
        self.source.take()
    }
}

#[cfg(target_os = "linux")]
impl<S> Drop for UringReady<S> {
    fn drop(&mut self) {
        for id in self.polls.get_mut().iter_mut().filter_map(Option::take) {
            self.handle.ignore(id, true, Keep::None);
        }
    }
}

impl<S: Source + AsRawFd + AsFd> ReadyIo<S> {
    /// Serves `source`, which must be non-blocking, on this thread's driver.
    pub(crate) fn new(source: S) -> io::Result<ReadyIo<S>> {
        Ok(match driver::current()? {
            Current::Epoll(_) => ReadyIo::Epoll(Evented::new(source)?),
            #[cfg(target_os = "linux")]
            Current::Uring(handle) => ReadyIo::Uring(UringReady {
                source: Some(source),
                handle,
                polls: Mutex::new([None, None]),
            }),
        })
    }

    pub(crate) fn get(&self) -> &S {
        match self {
            ReadyIo::Epoll(e) => e.get(),
            #[cfg(target_os = "linux")]
            ReadyIo::Uring(u) => u.get(),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.get().as_fd()
    }

    /// Waits until the fd is ready for `dir` (or hung up, or failed).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<()>> {
        match self {
            ReadyIo::Epoll(e) => e.poll_ready(cx, dir).map(Ok),
            #[cfg(target_os = "linux")]
            ReadyIo::Uring(u) => u.poll_ready(cx, dir),
        }
    }

    /// Runs `op` until it does not answer `WouldBlock`, waiting for `dir`
    /// between tries.
    #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        match self {
            ReadyIo::Epoll(e) => e.poll_io(cx, dir, op),
            #[cfg(target_os = "linux")]
            ReadyIo::Uring(u) => loop {
                match op(u.get()) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::task::ready!(u.poll_ready(cx, dir))?
                    }
                    r => return Poll::Ready(r),
                }
            },
        }
    }

    /// [`poll_io`](Self::poll_io) as a future.
    pub(crate) async fn io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        poll_fn(|cx| self.poll_io(cx, dir, &mut op)).await
    }

    /// Runs `op` once, now; `WouldBlock` if it would wait.
    pub(crate) fn try_io<R>(
        &self,
        dir: Direction,
        op: impl FnOnce(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        match self {
            ReadyIo::Epoll(e) => e.try_io(dir, op),
            #[cfg(target_os = "linux")]
            ReadyIo::Uring(u) => op(u.get()),
        }
    }

    /// Deregisters (or cancels the polls of) the fd and gives it back,
    /// still non-blocking.
    pub(crate) fn into_inner(self) -> S {
        match self {
            ReadyIo::Epoll(e) => e.into_inner(),
            #[cfg(target_os = "linux")]
            ReadyIo::Uring(mut u) => u
                .take()
                .unwrap_or_else(|| unreachable!("the source lives until taken")),
        }
    }
}
/// An owned fd as a mio source (pipes, pidfds: `process`, Linux only).
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub(crate) struct FdSource(pub(crate) OwnedFd);

#[cfg(target_os = "linux")]
impl AsRawFd for FdSource {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(target_os = "linux")]
impl AsFd for FdSource {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(target_os = "linux")]
impl Source for FdSource {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        mio::unix::SourceFd(&self.0.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        mio::unix::SourceFd(&self.0.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        mio::unix::SourceFd(&self.0.as_raw_fd()).deregister(registry)
    }
}
