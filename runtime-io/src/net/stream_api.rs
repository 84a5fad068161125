//! What TCP and Unix streams show alike, written once as macros over a
//! stream's `io: StreamIo<_>` field: the readiness calls tokio users know
//! (`readable`, `writable`, `try_read`, `try_write`, `peek`), the borrowed
//! `split`, and the two halves it makes. A macro rather than a generic
//! type, so each stream's halves are plain named types
//! (`net::tcp::ReadHalf`, `net::unix::ReadHalf`) with their own docs.

/// The readiness calls and the borrowed `split` a stream type (with an
/// `io: StreamIo<_>` field) shares, as tokio's streams have them; invoked
/// inside the type's `impl` block, beside [`borrowed_halves`].
macro_rules! readiness_methods {
    () => {
        /// Waits until a read can make progress: bytes are there, or the
        /// peer closed or failed the connection. Then
        /// [`try_read`](Self::try_read) reads them; it may still answer
        /// `WouldBlock` (the readiness was stale), and the loop waits
        /// again. On io_uring the wait is a `POLL_ADD` the stream owns.
        pub async fn readable(&self) -> std::io::Result<()> {
            std::future::poll_fn(|cx| self.io.poll_readable(cx)).await
        }

        /// Waits until a write can make progress (on io_uring: no send in
        /// flight and the socket polled writable).
        pub async fn writable(&self) -> std::io::Result<()> {
            std::future::poll_fn(|cx| self.io.poll_writable(cx)).await
        }

        /// Reads what is there now without waiting: `WouldBlock` if
        /// nothing is; 0 at the end of the stream. Never overtakes bytes
        /// an earlier read of this stream already asked the kernel for.
        pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.io.try_read(buf, false)
        }

        /// Writes what the socket takes now without waiting, or
        /// `WouldBlock`; never overtakes a write still in flight.
        pub fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
            self.io.try_write(buf)
        }

        /// Waits for bytes and copies them into `buf` without consuming
        /// them: the next read returns them again.
        pub async fn peek(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.io.peek(buf).await
        }

        /// Splits into a read half and a write half that borrow the
        /// stream (no `Arc`, no allocation): both can be used at once in
        /// one task, e.g. in `futures::join!`. For halves that move to
        /// other tasks, `TcpStream::into_split`.
        ///
        /// With `futures::AsyncReadExt` in scope, `stream.split()` finds
        /// that trait's `split` first (it takes the stream by value);
        /// write `TcpStream::split(&mut stream)` then.
        pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
            (ReadHalf { stream: self }, WriteHalf { stream: self })
        }
    };
}
pub(crate) use readiness_methods;

/// The borrowed halves of a stream type (`ReadHalf<'a>`, `WriteHalf<'a>`)
/// made by its `split`, in the module that invokes this.
macro_rules! borrowed_halves {
    ($stream:ident) => {
        /// The reading half of a borrowed `split`.
        #[derive(Debug)]
        pub struct ReadHalf<'a> {
            stream: &'a $stream,
        }

        /// The writing half of a borrowed `split`; dropping it does not
        /// close the connection (call `shutdown`).
        #[derive(Debug)]
        pub struct WriteHalf<'a> {
            stream: &'a $stream,
        }

        impl ReadHalf<'_> {
            /// Reads into `buf`; 0 means the peer closed its side.
            pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::future::poll_fn(|cx| self.stream.io.poll_read(cx, buf)).await
            }

            /// Reads into `buf`'s whole capacity (see the stream's
            /// `read_owned`).
            pub async fn read_owned<B: $crate::buf::IoBufMut>(
                &self,
                buf: B,
            ) -> (std::io::Result<usize>, B) {
                self.stream.io.read_owned(buf).await
            }

            /// Waits for bytes without consuming them.
            pub async fn peek(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.stream.io.peek(buf).await
            }

            /// Waits until a read can make progress.
            pub async fn readable(&self) -> std::io::Result<()> {
                std::future::poll_fn(|cx| self.stream.io.poll_readable(cx)).await
            }

            /// Reads what is there now, or `WouldBlock`.
            pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.stream.io.try_read(buf, false)
            }
        }

        impl WriteHalf<'_> {
            /// Writes some of `buf`.
            pub async fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
                std::future::poll_fn(|cx| self.stream.io.poll_write(cx, buf)).await
            }

            /// Writes all of `buf`.
            pub async fn write_all(&self, mut buf: &[u8]) -> std::io::Result<()> {
                while !buf.is_empty() {
                    let n = self.write(buf).await?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::WriteZero.into());
                    }
                    buf = &buf[n..];
                }
                Ok(())
            }

            /// Sends from `buf`'s own memory and gives it back.
            pub async fn write_owned<B: $crate::buf::IoBuf>(
                &self,
                buf: B,
            ) -> (std::io::Result<usize>, B) {
                self.stream.io.write_owned(buf).await
            }

            /// Waits until every byte written has been handed to the kernel.
            pub async fn flush(&self) -> std::io::Result<()> {
                std::future::poll_fn(|cx| self.stream.io.poll_flush(cx)).await
            }

            /// Shuts down the write direction, after what was written.
            pub async fn shutdown(&self) -> std::io::Result<()> {
                self.stream.io.shutdown(std::net::Shutdown::Write).await
            }

            /// Waits until a write can make progress.
            pub async fn writable(&self) -> std::io::Result<()> {
                std::future::poll_fn(|cx| self.stream.io.poll_writable(cx)).await
            }

            /// Writes what the socket takes now, or `WouldBlock`.
            pub fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
                self.stream.io.try_write(buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for ReadHalf<'_> {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                super::compat::tokio_read(&self.stream.io, cx, buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for WriteHalf<'_> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.stream.io.poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.stream.io.poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.stream.io.poll_shutdown_write(cx)
            }
        }

        impl futures_io::AsyncRead for ReadHalf<'_> {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.stream.io.poll_read(cx, buf)
            }
        }

        impl futures_io::AsyncWrite for WriteHalf<'_> {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.stream.io.poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.stream.io.poll_flush(cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::ready!(self.stream.io.poll_flush(cx))?;
                std::task::Poll::Ready(self.stream.io.sock().shutdown(std::net::Shutdown::Write))
            }
        }
    };
}
pub(crate) use borrowed_halves;
