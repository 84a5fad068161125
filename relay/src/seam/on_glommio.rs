//! The seam on glommio: its `LocalExecutor` on one CPU
//! (`Placement::Fixed`), beside tokio, monoio and Sprint in the relay
//! benchmark.
//!
//! glommio's stream is `futures::io::AsyncRead` and `AsyncWrite` through
//! `&mut self`; it keeps the state of a pending read or write (its
//! io_uring poll for readiness) in the stream itself, so dropping a read
//! loses nothing, and it reads straight into the caller's slice (no
//! buffer of its own: the stream is not `buffered()`). The relay reads
//! and writes through `&self`, and a subscriber's read (the hang-up
//! watch) is pending while its writes go on: the stream sits in a
//! `RefCell` borrowed only inside one `poll_read` or `poll_write` call,
//! never across an await, so the two never overlap on this thread and
//! the borrow cannot fail. No split (and no lock) is needed: glommio
//! keeps the read side's and the write side's pending state apart.
//!
//! glommio registers its I/O memory with io_uring: it needs
//! RLIMIT_MEMLOCK of at least 512 KiB, or CAP_IPC_LOCK (root).

use super::{Listener, Stream};
use futures_io::{AsyncRead, AsyncWrite};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::time::Duration;

/// A glommio TCP stream, read and written through `&self`.
#[derive(Debug)]
pub struct GlommioStream {
    io: RefCell<glommio::net::TcpStream>,
    fd: RawFd,
}

impl GlommioStream {
    /// Takes a connected stream (Nagle off).
    pub fn new(s: glommio::net::TcpStream) -> GlommioStream {
        let _ = s.set_nodelay(true);
        let fd = s.as_raw_fd();
        GlommioStream {
            io: RefCell::new(s),
            fd,
        }
    }
}

impl AsRawFd for GlommioStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl Stream for GlommioStream {
    async fn connect(addr: std::net::SocketAddr) -> io::Result<Self> {
        let s = glommio::net::TcpStream::connect(addr)
            .await
            .map_err(io::Error::from)?;
        Ok(GlommioStream::new(s))
    }
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // Borrowed for this call only (see the module's note).
        poll_fn(|cx| Pin::new(&mut *self.io.borrow_mut()).poll_read(cx, buf)).await
    }
    async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| Pin::new(&mut *self.io.borrow_mut()).poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }
    fn sleep(d: Duration) -> impl Future<Output = ()> {
        glommio::timer::sleep(d)
    }
    fn spawn(f: impl Future<Output = ()> + 'static) {
        glommio::spawn_local(f).detach();
    }
}

/// A glommio listener whose streams are [`GlommioStream`]s.
#[derive(Debug)]
pub struct GlommioListener(pub glommio::net::TcpListener);

impl Listener for GlommioListener {
    type Stream = GlommioStream;
    async fn accept(&self) -> io::Result<GlommioStream> {
        let s = self.0.accept().await.map_err(io::Error::from)?;
        Ok(GlommioStream::new(s))
    }
}
