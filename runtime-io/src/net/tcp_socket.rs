//! `TcpSocket`: a TCP socket not yet connected or listening, so options
//! that must be set before (`SO_REUSEADDR`, `SO_REUSEPORT`, buffer sizes,
//! `TCP_NODELAY`, a local address to bind) can be. It becomes a
//! [`TcpStream`] by [`connect`](TcpSocket::connect) or a [`TcpListener`]
//! by [`listen`](TcpSocket::listen), on the driver of the worker that
//! does that.

use super::tcp::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// A TCP socket to configure before it connects or listens.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use sprint_io::net::TcpSocket;
/// let socket = TcpSocket::new_v4()?;
/// socket.set_reuseaddr(true)?;
/// socket.set_recv_buffer_size(1 << 20)?;
/// socket.bind("127.0.0.1:0".parse().unwrap())?;
/// let listener = socket.listen(1024)?;
/// # drop(listener);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    inner: Socket,
}

fn sock_addr(a: socket2::SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}

impl TcpSocket {
    fn new(domain: Domain) -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            inner: Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?,
        })
    }

    /// A new IPv4 TCP socket.
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV4)
    }

    /// A new IPv6 TCP socket.
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV6)
    }

    /// Sets `SO_REUSEADDR`: bind a port still in TIME_WAIT.
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_address(on)
    }

    /// Whether `SO_REUSEADDR` is set.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.inner.reuse_address()
    }

    /// Sets `SO_REUSEPORT`: several sockets (one per worker) bind the same
    /// port and the kernel spreads connections between them.
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_port(on)
    }

    /// Whether `SO_REUSEPORT` is set.
    pub fn reuseport(&self) -> io::Result<bool> {
        self.inner.reuse_port()
    }

    /// Sets `TCP_NODELAY` (no Nagle delay), inherited by the stream.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_tcp_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.tcp_nodelay()
    }

    /// Asks for a send buffer of `bytes` (`SO_SNDBUF`; Linux doubles it
    /// and caps it at `net.core.wmem_max`).
    pub fn set_send_buffer_size(&self, bytes: u32) -> io::Result<()> {
        self.inner.set_send_buffer_size(bytes as usize)
    }

    /// The send buffer's size as the kernel set it.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.inner
            .send_buffer_size()
            .map(|n| n.min(u32::MAX as usize) as u32)
    }

    /// Asks for a receive buffer of `bytes` (`SO_RCVBUF`; Linux doubles it
    /// and caps it at `net.core.rmem_max`).
    pub fn set_recv_buffer_size(&self, bytes: u32) -> io::Result<()> {
        self.inner.set_recv_buffer_size(bytes as usize)
    }

    /// The receive buffer's size as the kernel set it.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.inner
            .recv_buffer_size()
            .map(|n| n.min(u32::MAX as usize) as u32)
    }

    /// Sets `SO_KEEPALIVE`.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.inner.set_keepalive(on)
    }

    /// Binds the local address (port 0: the kernel picks one).
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.bind(&addr.into())
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(self.inner.local_addr()?)
    }

    /// Connects to `addr`, giving the stream; a refused or unreachable
    /// peer is the OS error.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect_socket(self.inner, addr).await
    }

    /// Listens with room for `backlog` pending connections.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        TcpListener::listen_on(self.inner, backlog.min(i32::MAX as u32) as i32)
    }

    /// Wraps a std stream's socket that has not connected (rarely useful)
    /// or any TCP socket made elsewhere.
    pub fn from_std_stream(stream: std::net::TcpStream) -> TcpSocket {
        TcpSocket {
            inner: Socket::from(stream),
        }
    }
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}
