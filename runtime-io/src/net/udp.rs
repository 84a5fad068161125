//! UDP sockets.

use crate::evented::Evented;
use crate::readiness::Direction;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// A UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    io: Evented<mio::net::UdpSocket>,
}

use super::tcp::first_addr;

impl UdpSocket {
    /// Binds `addr`.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: Evented::new(mio::net::UdpSocket::bind(first_addr(addr)?)?)?,
        })
    }

    /// Sets the default peer for `send` and `recv`.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.io.get().connect(first_addr(addr)?)
    }

    /// Sends a datagram to `target`.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = first_addr(target)?;
        poll_fn(|cx| {
            self.io
                .poll_io(cx, Direction::Write, |s| s.send_to(buf, target))
        })
        .await
    }

    /// Receives a datagram and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.io.poll_io(cx, Direction::Read, |s| s.recv_from(buf))).await
    }

    /// Sends a datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_io(cx, Direction::Write, |s| s.send(buf))).await
    }

    /// Receives a datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_io(cx, Direction::Read, |s| s.recv(buf))).await
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get().local_addr()
    }
}
