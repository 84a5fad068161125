//! A child's stdin, stdout and stderr as Sprint streams: the parent's end
//! of each pipe, made non-blocking and served by readiness on the
//! worker's driver (`ReadyIo`: epoll registration, or an io_uring
//! `POLL_ADD`), with futures-io's `AsyncRead`/`AsyncWrite`.

use crate::readiness::Direction;
use crate::ready_io::{FdSource, ReadyIo};
use futures_io::{AsyncRead, AsyncWrite};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

/// One end of a pipe on the driver.
#[derive(Debug)]
struct Pipe {
    io: ReadyIo<FdSource>,
}

impl Pipe {
    fn new(fd: OwnedFd) -> io::Result<Pipe> {
        // Only this end's file description changes; the child's end stays
        // blocking, as programs expect.
        socket2::SockRef::from(&fd).set_nonblocking(true)?;
        Ok(Pipe {
            io: ReadyIo::new(FdSource(fd))?,
        })
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Read, |s| {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::read(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        })
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |s| {
            // SAFETY: `buf` is valid for reads of its length.
            let n = unsafe { libc::write(s.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        })
    }

    async fn read_to_end(&self, out: &mut Vec<u8>) -> io::Result<usize> {
        let start = out.len();
        let mut chunk = [0u8; 16 << 10];
        loop {
            match poll_fn(|cx| self.poll_read(cx, &mut chunk)).await? {
                0 => return Ok(out.len() - start),
                n => out.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// The child's standard input: write to it; drop it (or `close` it) to
/// give the child end-of-file.
#[derive(Debug)]
pub struct ChildStdin {
    pipe: Pipe,
}

/// The child's standard output.
#[derive(Debug)]
pub struct ChildStdout {
    pipe: Pipe,
}

/// The child's standard error.
#[derive(Debug)]
pub struct ChildStderr {
    pipe: Pipe,
}

impl ChildStdin {
    pub(crate) fn new(s: std::process::ChildStdin) -> io::Result<ChildStdin> {
        Ok(ChildStdin {
            pipe: Pipe::new(s.into())?,
        })
    }

    /// Writes some of `buf`, waiting while the pipe is full.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.pipe.poll_write(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

macro_rules! reader {
    ($t:ident, $from:ty) => {
        impl $t {
            pub(crate) fn new(s: $from) -> io::Result<$t> {
                Ok($t {
                    pipe: Pipe::new(s.into())?,
                })
            }

            /// Reads into `buf`; 0 once the child closed its end.
            pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
                poll_fn(|cx| self.pipe.poll_read(cx, buf)).await
            }

            /// Reads until the child closes its end, onto the end of `out`.
            pub async fn read_to_end(&self, out: &mut Vec<u8>) -> io::Result<usize> {
                self.pipe.read_to_end(out).await
            }
        }

        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.pipe.poll_read(cx, buf)
            }
        }

        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe.io.fd()
            }
        }

        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.io.fd().as_raw_fd()
            }
        }
    };
}

reader!(ChildStdout, std::process::ChildStdout);
reader!(ChildStderr, std::process::ChildStderr);

impl AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pipe.poll_write(cx, buf)
    }

    /// Nothing is buffered: a write is in the pipe when it returns.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Nothing to do before the drop that closes the pipe.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsFd for ChildStdin {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pipe.io.fd()
    }
}

impl AsRawFd for ChildStdin {
    fn as_raw_fd(&self) -> RawFd {
        self.pipe.io.fd().as_raw_fd()
    }
}
