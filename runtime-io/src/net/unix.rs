//! Unix-domain stream sockets, with the same readiness calls and
//! borrowed halves ([`ReadHalf`], [`WriteHalf`]) as TCP's.

use super::stream::{ListenerIo, StreamIo};
use super::stream_api::{borrowed_halves, readiness_methods};
use crate::driver::{self, Current};
use futures_io::{AsyncRead, AsyncWrite};
use socket2::{Domain, SockAddr, Socket, Type};
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

fn mio_listener(fd: OwnedFd) -> mio::net::UnixListener {
    mio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(fd))
}

/// The address `query` finds on a duplicate of `fd`, as std's
/// `SocketAddr` (which, unlike socket2's, also says "unnamed": a pair's
/// ends and a client that did not bind have no path). Addresses are
/// asked for rarely; the dup keeps this free of `unsafe`.
fn unix_addr(
    fd: BorrowedFd<'_>,
    query: impl FnOnce(&std::os::unix::net::UnixStream) -> io::Result<SocketAddr>,
) -> io::Result<SocketAddr> {
    query(&std::os::unix::net::UnixStream::from(
        fd.try_clone_to_owned()?,
    ))
}

fn mio_stream(fd: OwnedFd) -> mio::net::UnixStream {
    mio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))
}

/// Accepts Unix-domain stream connections.
#[derive(Debug)]
pub struct UnixListener {
    io: ListenerIo<mio::net::UnixListener>,
}

impl UnixListener {
    /// Binds the socket file at `path` (which must not exist).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.bind(&SockAddr::unix(path)?)?;
        socket.listen(1024)?;
        Ok(UnixListener {
            io: ListenerIo::new(socket.into(), mio_listener)?,
        })
    }

    /// Wraps a bound, listening std listener.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: ListenerIo::new(listener.into(), mio_listener)?,
        })
    }

    /// Hands the listener to std, deregistered and in blocking mode (on
    /// io_uring, connections accepted ahead and not taken are closed).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        Ok(self.io.into_fd()?.into())
    }

    /// The path this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        unix_addr(self.io.fd(), |s| s.local_addr())
    }

    /// The next connection.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        let fd = self.io.accept().await?;
        Ok(UnixStream {
            io: StreamIo::new(fd, mio_stream)?,
        })
    }
}

/// A Unix-domain stream.
#[derive(Debug)]
pub struct UnixStream {
    pub(super) io: StreamIo<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket file at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
        match driver::current()? {
            #[cfg(target_os = "linux")]
            Current::Uring(_) => {
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                let s = UnixStream {
                    io: StreamIo::new(socket.into(), mio_stream)?,
                };
                if let StreamIo::Uring(u) = &s.io {
                    u.connect(&addr).await?;
                }
                Ok(s)
            }
            Current::Epoll(_) => {
                let path = addr
                    .as_pathname()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a path"))?;
                let e = crate::evented::Evented::new(mio::net::UnixStream::connect(path)?)?;
                poll_fn(|cx| e.poll_ready(cx, crate::readiness::Direction::Write)).await;
                match e.get().take_error()? {
                    Some(err) => Err(err),
                    None => Ok(UnixStream {
                        io: StreamIo::Epoll(e),
                    }),
                }
            }
        }
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((
            UnixStream {
                io: StreamIo::new(a.into(), mio_stream)?,
            },
            UnixStream {
                io: StreamIo::new(b.into(), mio_stream)?,
            },
        ))
    }

    /// Wraps a connected std stream.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: StreamIo::new(stream.into(), mio_stream)?,
        })
    }

    /// Hands the stream to std, deregistered and in blocking mode; on
    /// io_uring it fails while a send or a receive of the stream is in
    /// flight or received bytes wait unread (as `TcpStream::into_std`).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        Ok(self.io.into_fd()?.into())
    }

    /// This end's address (unnamed unless it was bound to a path).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        unix_addr(self.io.fd(), |s| s.local_addr())
    }

    /// The peer's address: the listener's path for a connected client,
    /// unnamed for an accepted stream and a pair's ends.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        unix_addr(self.io.fd(), |s| s.peer_addr())
    }

    readiness_methods!();

    /// Reads into `buf`; 0 means the peer closed its side.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_read(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.io.poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Shuts down one or both directions, after what was written.
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how).await
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.fd().as_raw_fd()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.fd().as_raw_fd()
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd()
    }
}

borrowed_halves!(UnixStream);

impl AsyncRead for UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }
}

impl AsyncWrite for UnixStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.io.poll_flush(cx))?;
        Poll::Ready(self.io.sock().shutdown(Shutdown::Write))
    }
}
