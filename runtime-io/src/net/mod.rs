//! Sockets over the worker's driver: TCP (and [`TcpSocket`] to set options
//! before connecting or listening), UDP, Unix-domain streams and
//! datagrams. Each hands its fd to std (`into_std`) and takes one from it
//! (`from_std`), and lends it (`AsFd`, `AsRawFd`).
//! A socket belongs to the driver of the worker that creates it (worker
//! 0's when created outside the workers, in `block_on`), io_uring or
//! epoll, behind the same API.

#[cfg(any(feature = "hyper", feature = "tokio-io"))]
mod compat;
mod stream;
mod stream_api;
pub mod tcp;
mod tcp_socket;
mod udp;
pub mod unix;
mod unix_datagram;
#[cfg(target_os = "linux")]
pub(crate) mod uring_fd;

pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use tcp_socket::TcpSocket;
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
pub use unix_datagram::UnixDatagram;
