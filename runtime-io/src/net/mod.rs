//! Sockets over the worker's driver: TCP, UDP and Unix-domain streams.
//! A socket registers with the driver of the worker that creates it (worker
//! 0's when created outside the workers, in `block_on`).

mod tcp;
mod udp;
mod unix;

pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
