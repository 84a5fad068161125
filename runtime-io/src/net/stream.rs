//! What TCP and Unix streams share: one byte stream on either driver.

#[cfg(target_os = "linux")]
use super::uring_fd::{UringAcceptor, UringFd};
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{self, Current};
use crate::evented::Evented;
use crate::readiness::Direction;
use mio::event::Source;
use socket2::SockRef;
use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::task::{Context, Poll};

/// A stream socket on the epoll or the io_uring driver.
#[derive(Debug)]
pub(crate) enum StreamIo<S: Source> {
    Epoll(Evented<S>),
    #[cfg(target_os = "linux")]
    Uring(UringFd),
}

#[cfg(target_os = "linux")]
impl AsFd for UringFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open as long as `self`.
        unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}

impl<S> StreamIo<S>
where
    S: Source + AsFd,
    for<'a> &'a S: Read + Write,
{
    /// Wraps a connected socket for this thread's driver: `mio` builds the
    /// epoll form from the fd.
    pub(crate) fn new(fd: OwnedFd, mio: impl FnOnce(OwnedFd) -> S) -> io::Result<StreamIo<S>> {
        Ok(match driver::current()? {
            Current::Epoll(_) => {
                socket2::SockRef::from(&fd).set_nonblocking(true)?;
                StreamIo::Epoll(Evented::new(mio(fd))?)
            }
            #[cfg(target_os = "linux")]
            Current::Uring(h) => StreamIo::Uring(UringFd::new(fd, h)?),
        })
    }

    pub(crate) fn sock(&self) -> SockRef<'_> {
        match self {
            StreamIo::Epoll(e) => SockRef::from(e.get()),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => SockRef::from(u),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            StreamIo::Epoll(e) => e.get().as_fd(),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.as_fd(),
        }
    }

    /// Gives the socket back, deregistered and blocking; see
    /// `uring_fd::ready` for when io_uring cannot yet.
    pub(crate) fn into_fd(self) -> io::Result<OwnedFd>
    where
        OwnedFd: From<S>,
    {
        let fd = match self {
            StreamIo::Epoll(e) => OwnedFd::from(e.into_inner()),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.into_fd().map_err(io::Error::other)?,
        };
        SockRef::from(&fd).set_nonblocking(false)?;
        Ok(fd)
    }

    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            StreamIo::Epoll(e) => e.poll_ready(cx, Direction::Read).map(Ok),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.poll_readable(cx),
        }
    }

    pub(crate) fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            StreamIo::Epoll(e) => e.poll_ready(cx, Direction::Write).map(Ok),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.poll_writable(cx),
        }
    }

    /// Reads (or with `peek`, copies without consuming) what is there
    /// now, or `WouldBlock`.
    pub(crate) fn try_read(&self, buf: &mut [u8], peek: bool) -> io::Result<usize> {
        match self {
            StreamIo::Epoll(e) => e.try_io(Direction::Read, |s| recv(s.as_fd(), buf, peek)),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.try_read(buf, peek),
        }
    }

    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StreamIo::Epoll(e) => e.try_io(Direction::Write, |s| (&*s).write(buf)),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.try_write(buf),
        }
    }

    /// Waits for bytes and copies them without consuming them.
    pub(crate) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.try_read(buf, true) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    poll_fn(|cx| self.poll_readable(cx)).await?
                }
                r => return r,
            }
        }
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            StreamIo::Epoll(e) => {
                e.poll_transfer(cx, Direction::Read, buf.len(), |s| (&*s).read(buf))
            }
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.poll_read(cx, buf),
        }
    }

    /// `poll_read` into memory that may be uninitialised (hyper's and
    /// tokio's read buffers), so nobody zero-fills it first. The first `n`
    /// bytes of `buf` are initialised when this returns `Ready(Ok(n))`; no
    /// byte of `buf` is ever de-initialised (only the kernel's receive or a
    /// copy of received bytes writes into it).
    #[cfg(any(feature = "hyper", feature = "tokio-io"))]
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let (dst, len) = (buf.as_mut_ptr().cast::<u8>(), buf.len());
        match self {
            StreamIo::Epoll(e) => e.poll_transfer(cx, Direction::Read, len, |s| {
                // SAFETY: `dst` is valid for writes of `len` bytes (a live
                // `&mut` slice), recv(2) only writes into it, and a
                // readiness driver receives synchronously, within the borrow.
                let n = unsafe { libc::recv(s.as_fd().as_raw_fd(), dst.cast(), len, 0) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => {
                // SAFETY: as above, `dst` is valid for writes of `len` bytes
                // for the call, which is all `poll_read_raw` asks (it copies
                // received bytes in, or receives into it without blocking).
                unsafe { u.poll_read_raw(cx, dst, len) }
            }
        }
    }

    /// Flushes, then shuts down the write direction (the peer reads
    /// end-of-file): the close of `AsyncWrite`-like traits.
    #[cfg(any(feature = "hyper", feature = "tokio-io"))]
    pub(crate) fn poll_shutdown_write(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_flush(cx))?;
        // Nothing is in flight now, so a direct shutdown is in order.
        Poll::Ready(self.sock().shutdown(Shutdown::Write))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            StreamIo::Epoll(e) => {
                e.poll_transfer(cx, Direction::Write, buf.len(), |s| (&*s).write(buf))
            }
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.poll_write(cx, buf),
        }
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            StreamIo::Epoll(e) => {
                let len = bufs.iter().map(|b| b.len()).sum();
                e.poll_transfer(cx, Direction::Write, len, |s| (&*s).write_vectored(bufs))
            }
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.poll_write_vectored(cx, bufs),
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            StreamIo::Epoll(_) => Poll::Ready(Ok(())),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.poll_flush(cx),
        }
    }

    pub(crate) async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            StreamIo::Epoll(e) => SockRef::from(e.get()).shutdown(how),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.shutdown(how).await,
        }
    }

    pub(crate) async fn read_owned<B: IoBufMut>(&self, mut buf: B) -> (io::Result<usize>, B) {
        match self {
            StreamIo::Epoll(e) => {
                let (ptr, total) = (buf.stable_mut_ptr(), buf.bytes_total());
                let r = poll_fn(|cx| {
                    e.poll_transfer(cx, Direction::Read, total, |s| {
                        // SAFETY: the buffer is valid for `total` bytes of
                        // writes (maybe uninitialised: recv only writes),
                        // and a readiness driver reads synchronously.
                        let n = unsafe { libc::recv(s.as_fd().as_raw_fd(), ptr.cast(), total, 0) };
                        if n < 0 {
                            Err(io::Error::last_os_error())
                        } else {
                            Ok(n as usize)
                        }
                    })
                })
                .await;
                if let Ok(n) = r {
                    // SAFETY: the read initialised `n` bytes.
                    unsafe { buf.set_init(n) };
                }
                (r, buf)
            }
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.read_owned(buf).await,
        }
    }

    pub(crate) async fn write_owned<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        match self {
            StreamIo::Epoll(_) => {
                // SAFETY: `bytes_init` bytes at `stable_ptr` are initialised.
                let src = unsafe { std::slice::from_raw_parts(buf.stable_ptr(), buf.bytes_init()) };
                let r = poll_fn(|cx| self.poll_write(cx, src)).await;
                (r, buf)
            }
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.write_owned(buf).await,
        }
    }

    pub(crate) async fn write_vectored_owned<B: IoBuf>(
        &self,
        bufs: Vec<B>,
    ) -> (io::Result<usize>, Vec<B>) {
        match self {
            StreamIo::Epoll(_) => {
                let slices: Vec<IoSlice<'_>> = bufs
                    .iter()
                    .map(|b| {
                        // SAFETY: as in `write_owned`.
                        IoSlice::new(unsafe {
                            std::slice::from_raw_parts(b.stable_ptr(), b.bytes_init())
                        })
                    })
                    .collect();
                let r = poll_fn(|cx| self.poll_write_vectored(cx, &slices)).await;
                drop(slices);
                (r, bufs)
            }
            #[cfg(target_os = "linux")]
            StreamIo::Uring(u) => u.write_vectored_owned(bufs).await,
        }
    }
}

/// One non-blocking `recv` (with `MSG_PEEK` if `peek`).
fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], peek: bool) -> io::Result<usize> {
    let flags = libc::MSG_DONTWAIT | if peek { libc::MSG_PEEK } else { 0 };
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// A listening socket on either driver.
#[derive(Debug)]
pub(crate) enum ListenerIo<L: Source> {
    Epoll(Evented<L>),
    #[cfg(target_os = "linux")]
    Uring(UringAcceptor),
}

impl<L: Source + AsFd> ListenerIo<L> {
    pub(crate) fn new(fd: OwnedFd, mio: impl FnOnce(OwnedFd) -> L) -> io::Result<ListenerIo<L>> {
        Ok(match driver::current()? {
            Current::Epoll(_) => {
                socket2::SockRef::from(&fd).set_nonblocking(true)?;
                ListenerIo::Epoll(Evented::new(mio(fd))?)
            }
            #[cfg(target_os = "linux")]
            Current::Uring(h) => ListenerIo::Uring(UringAcceptor::new(UringFd::new(fd, h)?)),
        })
    }

    pub(crate) fn sock(&self) -> SockRef<'_> {
        match self {
            ListenerIo::Epoll(e) => SockRef::from(e.get()),
            #[cfg(target_os = "linux")]
            ListenerIo::Uring(u) => SockRef::from(u.fd()),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            ListenerIo::Epoll(e) => e.get().as_fd(),
            #[cfg(target_os = "linux")]
            ListenerIo::Uring(u) => u.fd().as_fd(),
        }
    }

    /// Gives the listening socket back, deregistered and blocking.
    pub(crate) fn into_fd(self) -> io::Result<OwnedFd>
    where
        OwnedFd: From<L>,
    {
        let fd = match self {
            ListenerIo::Epoll(e) => OwnedFd::from(e.into_inner()),
            #[cfg(target_os = "linux")]
            ListenerIo::Uring(u) => u.into_fd().map_err(io::Error::other)?,
        };
        SockRef::from(&fd).set_nonblocking(false)?;
        Ok(fd)
    }

    /// The next accepted connection's fd. An error that belongs to one
    /// connection (see [`connection_error`]) is skipped, so what comes back
    /// is about the process or the listener (EMFILE, ENFILE, ENOBUFS,
    /// ENOMEM): a server backs off and calls again.
    pub(crate) async fn accept(&self) -> io::Result<OwnedFd> {
        loop {
            match self.accept_one().await {
                Err(e) if connection_error(&e) => continue,
                r => return r,
            }
        }
    }

    async fn accept_one(&self) -> io::Result<OwnedFd> {
        match self {
            ListenerIo::Epoll(e) => {
                poll_fn(|cx| {
                    e.poll_io(cx, Direction::Read, |l| {
                        let (s, _) = SockRef::from(l).accept()?;
                        Ok(OwnedFd::from(s))
                    })
                })
                .await
            }
            #[cfg(target_os = "linux")]
            ListenerIo::Uring(u) => poll_fn(|cx| u.poll_accept(cx)).await,
        }
    }
}

/// Whether an `accept` error belongs to the one connection being accepted
/// (the peer reset or aborted it before it was taken, or a network error
/// was pending on it) rather than to the process or the listener. accept(2)
/// passes a new connection's pending network errors on as its own, and
/// asks the caller to treat those like EAGAIN.
pub(crate) fn connection_error(e: &io::Error) -> bool {
    let Some(code) = e.raw_os_error() else {
        return false;
    };
    #[cfg(target_os = "linux")]
    if code == libc::ENONET {
        return true;
    }
    matches!(
        code,
        libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
    )
}
