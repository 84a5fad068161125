//! Unix-domain datagram sockets. On both drivers the socket is
//! non-blocking and waits for readiness (on io_uring a `POLL_ADD`), then
//! sends or receives with one system call: a datagram is never taken by
//! the kernel for a future that went away.

use crate::readiness::Direction;
use crate::ready_io::ReadyIo;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;

/// A Unix-domain datagram socket.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use sprint_io::net::UnixDatagram;
/// let (a, b) = UnixDatagram::pair()?;
/// a.send(b"ping").await?;
/// let mut buf = [0u8; 16];
/// let n = b.recv(&mut buf).await?;
/// assert_eq!(&buf[..n], b"ping");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    io: ReadyIo<mio::net::UnixDatagram>,
}

impl UnixDatagram {
    fn wrap(socket: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: ReadyIo::new(socket)?,
        })
    }

    /// Binds the socket file at `path` (which must not exist).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(mio::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address (it can send, and receive replies
    /// only once connected).
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(mio::net::UnixDatagram::unbound()?)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::wrap(a)?, UnixDatagram::wrap(b)?))
    }

    /// Wraps a std socket (blocking or not: it is made non-blocking).
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        UnixDatagram::wrap(mio::net::UnixDatagram::from_std(socket))
    }

    /// Hands the socket to std, deregistered and in blocking mode.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        let s = std::os::unix::net::UnixDatagram::from(std::os::fd::OwnedFd::from(
            self.io.into_inner(),
        ));
        s.set_nonblocking(false)?;
        Ok(s)
    }

    /// Sets the default peer for [`send`](Self::send) and
    /// [`recv`](Self::recv).
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.io.get().connect(path)
    }

    /// Sends a datagram to the socket at `path`.
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.io(Direction::Write, |s| s.send_to(buf, path)).await
    }

    /// Receives a datagram and its sender's address.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.io(Direction::Read, |s| s.recv_from(buf)).await
    }

    /// Sends a datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.io(Direction::Write, |s| s.send(buf)).await
    }

    /// Receives a datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.io(Direction::Read, |s| s.recv(buf)).await
    }

    /// Waits until a datagram can be received.
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.io.poll_ready(cx, Direction::Read)).await
    }

    /// Waits until a datagram can be sent.
    pub async fn writable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.io.poll_ready(cx, Direction::Write)).await
    }

    /// Receives a datagram now, or `WouldBlock`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.try_io(Direction::Read, |s| s.recv(buf))
    }

    /// Sends a datagram now, or `WouldBlock`.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_io(Direction::Write, |s| s.send(buf))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().peer_addr()
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get().shutdown(how)
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.io.fd().as_raw_fd()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd()
    }
}
