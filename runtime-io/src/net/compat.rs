//! The streams seen through hyper's and tokio's I/O traits, so hyper
//! servers and clients, tokio-util codecs and tokio-rustls run on Sprint's
//! sockets with no adapter type in between and no tokio runtime.
//!
//! Both traits hand a read *uninitialised* memory (hyper's
//! `ReadBufCursor`, tokio's `ReadBuf`). A plain `&mut [u8]` read would
//! have to zero-fill it first, a memset of the whole buffer on every read
//! (8 KiB or more for hyper). The impls here pass the memory on as it is:
//! the epoll driver `recv`s into it and the io_uring driver copies the
//! received bytes into it (or `recv`s into it when it waited for
//! readability), and only the bytes read are declared initialised.
//!
//! The impls live here, beside the streams, because a trait of hyper's or
//! tokio's can only be implemented for a type in the crate that defines
//! the type (or the trait); the rest of the compat layer (hyper's timer
//! and executor, graceful shutdown) is `sprint::compat`.

use super::tcp::TcpStream;
#[cfg(feature = "tokio-io")]
use super::tcp::{OwnedReadHalf, OwnedWriteHalf};
use super::unix::UnixStream;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// hyper's `Read` and `Write` (and tokio's `AsyncRead` and `AsyncWrite`)
/// for a stream whose `StreamIo` is at `$io`.
macro_rules! stream_traits {
    ($ty:ty, |$s:ident| $io:expr) => {
        #[cfg(feature = "hyper")]
        impl hyper::rt::Read for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                mut buf: hyper::rt::ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                // SAFETY: `poll_read_uninit` never de-initialises a byte
                // of the slice (it only receives or copies bytes into it),
                // which is what `as_mut` asks of its user.
                let dst = unsafe { buf.as_mut() };
                let n = ready!($io.poll_read_uninit(cx, dst))?;
                // SAFETY: the read initialised the first `n` bytes of the
                // unfilled part, which is what `advance` asks.
                unsafe { buf.advance(n) };
                Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "hyper")]
        impl hyper::rt::Write for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $s = self.get_mut();
                $io.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let $s = self.get_mut();
                $io.poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                $io.poll_flush(cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                $io.poll_shutdown_write(cx)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                tokio_read(&$io, cx, buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                let $s = self.get_mut();
                $io.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let $s = self.get_mut();
                $io.poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                $io.poll_flush(cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                let $s = self.get_mut();
                $io.poll_shutdown_write(cx)
            }
        }
    };
}

stream_traits!(TcpStream, |s| s.io);
stream_traits!(UnixStream, |s| s.io);

/// tokio's read: into the unfilled part of `buf`, uninitialised or not.
/// (The borrowed halves of `split` use it too, from `stream_api`.)
#[cfg(feature = "tokio-io")]
pub(super) fn tokio_read<S>(
    io: &super::stream::StreamIo<S>,
    cx: &mut Context<'_>,
    buf: &mut tokio::io::ReadBuf<'_>,
) -> Poll<io::Result<()>>
where
    S: mio::event::Source + std::os::fd::AsFd,
    for<'a> &'a S: std::io::Read + std::io::Write,
{
    // SAFETY: `poll_read_uninit` never de-initialises a byte of the slice
    // (it only receives or copies bytes into it), as `unfilled_mut` asks.
    let dst = unsafe { buf.unfilled_mut() };
    let n = ready!(io.poll_read_uninit(cx, dst))?;
    // SAFETY: the read initialised the first `n` bytes of the unfilled
    // part, which is what `assume_init` asks.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Poll::Ready(Ok(()))
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        tokio_read(&self.inner.io, cx, buf)
    }
}

/// Shutting it down shuts down the connection's write direction, as
/// `OwnedWriteHalf::shutdown` does.
#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncWrite for OwnedWriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner.io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.io.poll_shutdown_write(cx)
    }
}
