//! UDP sockets. On io_uring a datagram socket waits for readiness on the
//! ring (`POLL_ADD`) and then sends or receives without blocking, so a
//! dropped future never leaves the kernel a buffer to write into and no
//! datagram is taken for nobody.

#[cfg(target_os = "linux")]
use super::uring_fd::UringFd;
use crate::driver::{self, Current};
use crate::evented::Evented;
use crate::readiness::Direction;
use socket2::{SockAddr, SockRef};
use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::tcp::first_addr;

#[derive(Debug)]
enum UdpIo {
    Epoll(Evented<mio::net::UdpSocket>),
    #[cfg(target_os = "linux")]
    Uring(UringFd),
}

/// A UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    io: UdpIo,
}

fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: u8 and MaybeUninit<u8> share a layout, and the callee only
    // writes initialised bytes.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

impl UdpSocket {
    /// Binds `addr`.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        UdpSocket::from_std(std::net::UdpSocket::bind(first_addr(addr)?)?)
    }

    /// Wraps a bound std socket (blocking or not: the driver sets the
    /// mode it needs).
    pub fn from_std(std: std::net::UdpSocket) -> io::Result<UdpSocket> {
        let io = match driver::current()? {
            Current::Epoll(_) => {
                std.set_nonblocking(true)?;
                UdpIo::Epoll(Evented::new(mio::net::UdpSocket::from_std(std))?)
            }
            #[cfg(target_os = "linux")]
            Current::Uring(h) => UdpIo::Uring(UringFd::new(std.into(), h)?),
        };
        Ok(UdpSocket { io })
    }

    /// Hands the socket to std, deregistered and in blocking mode.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let fd = match self.io {
            UdpIo::Epoll(e) => OwnedFd::from(e.into_inner()),
            #[cfg(target_os = "linux")]
            UdpIo::Uring(u) => u.into_fd().map_err(io::Error::other)?,
        };
        let std = std::net::UdpSocket::from(fd);
        std.set_nonblocking(false)?;
        Ok(std)
    }

    fn sock(&self) -> SockRef<'_> {
        match &self.io {
            UdpIo::Epoll(e) => SockRef::from(e.get()),
            #[cfg(target_os = "linux")]
            UdpIo::Uring(u) => SockRef::from(u),
        }
    }

    async fn op<R>(
        &self,
        dir: Direction,
        mut f: impl FnMut(SockRef<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        match &self.io {
            UdpIo::Epoll(e) => poll_fn(|cx| e.poll_io(cx, dir, |s| f(SockRef::from(s)))).await,
            #[cfg(target_os = "linux")]
            UdpIo::Uring(u) => loop {
                match f(SockRef::from(u)) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let ev = match dir {
                            Direction::Read => libc::POLLIN,
                            Direction::Write => libc::POLLOUT,
                        };
                        u.ready(ev).await?;
                    }
                    r => return r,
                }
            },
        }
    }

    /// Sets the default peer for `send` and `recv`.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.sock().connect(&first_addr(addr)?.into())
    }

    /// Sends a datagram to `target`.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target: SockAddr = first_addr(target)?.into();
        self.op(Direction::Write, |s| {
            s.send_to_with_flags(buf, &target, libc::MSG_DONTWAIT)
        })
        .await
    }

    /// Receives a datagram and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, addr) = self
            .op(Direction::Read, |s| {
                s.recv_from_with_flags(as_uninit(buf), libc::MSG_DONTWAIT)
            })
            .await?;
        let addr = addr
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP sender"))?;
        Ok((n, addr))
    }

    /// Sends a datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.op(Direction::Write, |s| {
            s.send_with_flags(buf, libc::MSG_DONTWAIT)
        })
        .await
    }

    /// Receives a datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.op(Direction::Read, |s| {
            s.recv_with_flags(as_uninit(buf), libc::MSG_DONTWAIT)
        })
        .await
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock()
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP address"))
    }

    /// The peer set by [`connect`](UdpSocket::connect); `NotConnected`
    /// before.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock()
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP address"))
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.io {
            UdpIo::Epoll(e) => e.get().as_fd(),
            #[cfg(target_os = "linux")]
            UdpIo::Uring(u) => u.as_fd(),
        }
    }
}
