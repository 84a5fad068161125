//! Sockets: TCP now; UDP and Unix-domain sockets next, behind the same
//! driver seam.

mod tcp;

pub use tcp::{OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
