//! The seam on monoio, with its legacy (epoll) driver: the runtime the
//! issue's table calls "monoio (epoll)", beside tokio, glommio and Sprint
//! in the relay benchmark.
//!
//! monoio's own stream API is completion-shaped: `read(buf)` takes an
//! owned buffer and gives it back. The relay reads into borrowed slices
//! (its publisher buffer, a one-byte probe), so that API would cost a
//! copy from an owned buffer into the slice on every read, a copy tokio
//! and glommio do not pay. Instead the stream is turned into monoio's
//! poll-io form (`TcpStream::try_into_poll_io`, the `poll-io` feature):
//! on the legacy driver its `poll_read` and `poll_write` wait on the same
//! readiness and make the same `recv`/`send` call as monoio's owned-buffer
//! operations do, but into and from the caller's slice. Each call builds
//! its operation afresh and keeps nothing across polls, so dropping a
//! read loses nothing.
//!
//! The relay reads and writes through `&self`, and a subscriber's read
//! (the hang-up watch) is pending while its writes go on. The stream sits
//! in a `RefCell` borrowed only inside one `poll_read` or `poll_write`
//! call, never across an await: the two never overlap on this thread, so
//! the borrow cannot fail. No split (and no lock) is needed.
//!
//! The io_uring driver is not offered: through poll-io it would wait on
//! epoll readiness inside the ring, not do io_uring I/O; through the
//! owned-buffer API a read dropped while in flight (the relay drops a
//! publisher's read when a deadline timer fires) would lose what it read,
//! unless the stream kept the operation and its buffer across reads.

use super::{Listener, Stream};
use monoio::io::poll_io::{AsyncRead, AsyncWrite, ReadBuf};
use monoio::net::tcp::stream_poll::TcpStreamPoll;
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::time::Duration;

/// A monoio TCP stream in poll-io form, read and written through `&self`.
#[derive(Debug)]
pub struct MonoioStream {
    io: RefCell<TcpStreamPoll>,
    fd: RawFd,
}

impl MonoioStream {
    /// Takes a connected stream (Nagle off) into poll-io form.
    pub fn new(s: monoio::net::TcpStream) -> io::Result<MonoioStream> {
        let _ = s.set_nodelay(true);
        let fd = s.as_raw_fd();
        let io = s.try_into_poll_io().map_err(|(e, _)| e)?;
        Ok(MonoioStream {
            io: RefCell::new(io),
            fd,
        })
    }
}

impl AsRawFd for MonoioStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl Stream for MonoioStream {
    async fn connect(addr: std::net::SocketAddr) -> io::Result<Self> {
        MonoioStream::new(monoio::net::TcpStream::connect(addr).await?)
    }
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut *buf);
            // Borrowed for this call only (see the module's note).
            let r = Pin::new(&mut *self.io.borrow_mut()).poll_read(cx, &mut rb);
            r.map_ok(|()| rb.filled().len())
        })
        .await
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
        monoio::time::sleep(d)
    }
    fn spawn(f: impl Future<Output = ()> + 'static) {
        // Dropping monoio's handle detaches the task.
        drop(monoio::spawn(f));
    }
}

/// A monoio listener whose streams are [`MonoioStream`]s.
#[derive(Debug)]
pub struct MonoioListener(pub monoio::net::TcpListener);

impl Listener for MonoioListener {
    type Stream = MonoioStream;
    async fn accept(&self) -> io::Result<MonoioStream> {
        let (s, _) = self.0.accept().await?;
        MonoioStream::new(s)
    }
}
