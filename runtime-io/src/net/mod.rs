//! Sockets over the worker's driver: TCP, UDP and Unix-domain streams.
//! A socket belongs to the driver of the worker that creates it (worker
//! 0's when created outside the workers, in `block_on`), io_uring or
//! epoll, behind the same API.

#[cfg(any(feature = "hyper", feature = "tokio-io"))]
mod compat;
mod stream;
mod tcp;
mod udp;
mod unix;
#[cfg(target_os = "linux")]
pub(crate) mod uring_fd;

pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
