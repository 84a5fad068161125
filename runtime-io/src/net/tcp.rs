//! TCP: a listener (optionally one per worker with SO_REUSEPORT) and a
//! stream with futures-io's `AsyncRead`/`AsyncWrite` and the owned-buffer
//! calls io_uring wants, the readiness calls tokio users know
//! (`readable`, `try_read`, `peek`), and the stream's halves: borrowed
//! ([`ReadHalf`], [`WriteHalf`]) or owned ([`OwnedReadHalf`],
//! [`OwnedWriteHalf`]).

use super::stream::{ListenerIo, StreamIo};
use super::stream_api::{borrowed_halves, readiness_methods};
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{self, Current};
use futures_io::{AsyncRead, AsyncWrite};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Accepts TCP connections.
#[derive(Debug)]
pub struct TcpListener {
    io: ListenerIo<mio::net::TcpListener>,
}

pub(crate) fn first_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    })
}

fn mio_listener(fd: OwnedFd) -> mio::net::TcpListener {
    mio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
}

fn mio_stream(fd: OwnedFd) -> mio::net::TcpStream {
    mio::net::TcpStream::from_std(std::net::TcpStream::from(fd))
}

impl TcpListener {
    /// Binds `addr` (SO_REUSEADDR set, backlog 1024).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with(first_addr(addr)?, false)
    }

    /// Binds `addr` with SO_REUSEPORT as well, so that each worker of a
    /// thread-per-core server can own a listener on the same port and the
    /// kernel spreads connections between them.
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        TcpListener::bind_with(first_addr(addr)?, true)
    }

    fn bind_with(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        TcpListener::listen_on(socket, 1024)
    }

    /// Listens on a bound socket (see [`TcpSocket`](super::TcpSocket)).
    pub(crate) fn listen_on(socket: Socket, backlog: i32) -> io::Result<TcpListener> {
        socket.listen(backlog)?;
        Ok(TcpListener {
            io: ListenerIo::new(socket.into(), mio_listener)?,
        })
    }

    /// Wraps a bound, listening std listener (blocking or not: the driver
    /// sets the mode it needs).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: ListenerIo::new(listener.into(), mio_listener)?,
        })
    }

    /// Hands the listener to std, deregistered and in blocking mode. On
    /// io_uring, connections the kernel already accepted ahead of
    /// [`accept`](Self::accept) (a multishot accept) are closed.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        Ok(self.io.into_fd()?.into())
    }

    /// The next connection.
    ///
    /// One connection never makes `accept` fail: a connection the peer
    /// reset or aborted before it was taken (ECONNABORTED, or gone before
    /// its address could be read) and the network errors accept(2) passes
    /// on from a new connection are skipped, and `accept` waits for the
    /// next one. What comes back as an error is about the process or the
    /// listener: EMFILE or ENFILE (descriptors exhausted), ENOBUFS or
    /// ENOMEM (kernel memory). The listener stays usable after any of
    /// them, and the pending connections wait in its backlog, so an accept
    /// loop must not end on an error: it backs off (a few milliseconds,
    /// growing to a second, as hyper and tokio's servers do) and calls
    /// `accept` again.
    ///
    /// ```no_run
    /// # async fn serve(listener: sprint_io::net::TcpListener) {
    /// use std::time::Duration;
    /// let mut backoff = Duration::from_millis(5);
    /// loop {
    ///     match listener.accept().await {
    ///         Ok((stream, _peer)) => {
    ///             backoff = Duration::from_millis(5);
    ///             drop(stream); // spawn a task to serve it
    ///         }
    ///         Err(e) => {
    ///             eprintln!("accept: {e}; retrying in {backoff:?}");
    ///             sprint_core::time::sleep(backoff).await;
    ///             backoff = (backoff * 2).min(Duration::from_secs(1));
    ///         }
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let fd = self.io.accept().await?;
            // The address is read now: a peer that reset the connection
            // while it waited in the backlog has none (ENOTCONN), and such
            // a connection has nothing left to serve.
            let addr = match socket2::SockRef::from(&fd).peer_addr() {
                Ok(a) => sock_addr(a)?,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                Err(e) if super::stream::connection_error(&e) => continue,
                Err(e) => return Err(e),
            };
            return Ok((TcpStream::from_fd(fd)?, addr));
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.io.sock().local_addr()?)
    }
}

fn sock_addr(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}

/// A TCP connection.
#[derive(Debug)]
pub struct TcpStream {
    pub(super) io: StreamIo<mio::net::TcpStream>,
}

impl TcpStream {
    fn from_fd(fd: OwnedFd) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: StreamIo::new(fd, mio_stream)?,
        })
    }

    /// Connects to `addr`. A refused or unreachable peer is the OS error.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addr = first_addr(addr)?;
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        TcpStream::connect_socket(socket, addr).await
    }

    /// Connects `socket` (options set, maybe bound) to `addr`.
    pub(crate) async fn connect_socket(socket: Socket, addr: SocketAddr) -> io::Result<TcpStream> {
        match driver::current()? {
            #[cfg(target_os = "linux")]
            Current::Uring(_) => {
                let stream = TcpStream::from_fd(socket.into())?;
                match &stream.io {
                    #[cfg(target_os = "linux")]
                    StreamIo::Uring(u) => u.connect(&addr.into()).await?,
                    StreamIo::Epoll(_) => unreachable!("made on the io_uring driver"),
                }
                Ok(stream)
            }
            Current::Epoll(_) => {
                socket.set_nonblocking(true)?;
                match socket.connect(&addr.into()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e),
                }
                let e = crate::evented::Evented::new(mio_stream(socket.into()))?;
                poll_fn(|cx| e.poll_ready(cx, crate::readiness::Direction::Write)).await;
                if let Some(err) = e.get().take_error()? {
                    return Err(err);
                }
                match e.get().peer_addr() {
                    Ok(_) => Ok(TcpStream {
                        io: StreamIo::Epoll(e),
                    }),
                    Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                        Err(e.get().take_error()?.unwrap_or(err))
                    }
                    Err(err) => Err(err),
                }
            }
        }
    }

    /// Wraps a connected std stream (blocking or not: the driver sets the
    /// mode it needs).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_fd(stream.into())
    }

    /// Hands the connection to std, deregistered and in blocking mode.
    ///
    /// On io_uring the stream may own work the kernel is doing for it
    /// (a send behind a `write`, a receive a dropped read left running) or
    /// bytes received ahead: then this fails, naming which, and the
    /// stream is closed. Call [`flush`](Self::flush) and read what was
    /// asked for first.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        Ok(self.io.into_fd()?.into())
    }

    readiness_methods!();

    /// Reads into `buf`; 0 means the peer closed its side. Dropping the
    /// future loses nothing: on io_uring a receive in flight belongs to
    /// the stream and the next read returns its data.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_read(cx, buf)).await
    }

    /// Reads into `buf`'s whole capacity; its length becomes the bytes
    /// read. On io_uring the kernel writes straight into it; if the future
    /// is dropped the driver keeps the buffer until the kernel is done.
    pub async fn read_owned<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.io.read_owned(buf).await
    }

    /// Writes some of `buf`. On io_uring the bytes are copied to a pool
    /// buffer and sent behind; [`flush`](Self::flush) waits for the send.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_write(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Writes several buffers in one operation, as far as they go.
    pub async fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_write_vectored(cx, bufs)).await
    }

    /// Sends from `buf`'s own memory (a registered pool buffer is sent by
    /// its index); gives it back with the count.
    pub async fn write_owned<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.io.write_owned(buf).await
    }

    /// Sends up to 16 buffers in one vectored send from their own memory.
    pub async fn write_vectored_owned<B: IoBuf>(
        &self,
        bufs: Vec<B>,
    ) -> (io::Result<usize>, Vec<B>) {
        self.io.write_vectored_owned(bufs).await
    }

    /// Waits until every byte written has been handed to the kernel.
    pub async fn flush(&self) -> io::Result<()> {
        poll_fn(|cx| self.io.poll_flush(cx)).await
    }

    /// Shuts down one or both directions, after the bytes already written.
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how).await
    }

    /// Sets TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.sock().set_tcp_nodelay(on)
    }

    /// Whether TCP_NODELAY is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.sock().tcp_nodelay()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.io.sock().peer_addr()?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.io.sock().local_addr()?)
    }

    /// Splits into a read half and a write half that can move to different
    /// tasks.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let inner = Arc::new(self);
        (
            OwnedReadHalf {
                inner: inner.clone(),
            },
            OwnedWriteHalf { inner },
        )
    }

    fn poll_close_priv(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.io.poll_flush(cx))?;
        // Nothing is in flight now, so a direct shutdown is in order.
        Poll::Ready(self.io.sock().shutdown(Shutdown::Write))
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.sock().as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.fd().as_raw_fd()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd()
    }
}

borrowed_halves!(TcpStream);

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_close_priv(cx)
    }
}

/// The reading half of [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    pub(super) inner: Arc<TcpStream>,
}

/// The writing half of [`TcpStream::into_split`]; dropping it does not
/// close the connection (call `shutdown`).
#[derive(Debug)]
pub struct OwnedWriteHalf {
    pub(super) inner: Arc<TcpStream>,
}

impl OwnedReadHalf {
    /// See [`TcpStream::read`].
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).await
    }

    /// See [`TcpStream::read_owned`].
    pub async fn read_owned<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.inner.read_owned(buf).await
    }
}

impl OwnedWriteHalf {
    /// See [`TcpStream::write_all`].
    pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf).await
    }

    /// See [`TcpStream::write_owned`].
    pub async fn write_owned<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.inner.write_owned(buf).await
    }

    /// Shuts down the write direction, after what was written: the peer
    /// reads end-of-file.
    pub async fn shutdown(&self) -> io::Result<()> {
        self.inner.shutdown(Shutdown::Write).await
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.io.poll_read(cx, buf)
    }
}

impl AsyncWrite for OwnedWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.io.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_close_priv(cx)
    }
}
