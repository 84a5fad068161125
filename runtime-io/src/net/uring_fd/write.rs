//! The write side of an io_uring socket.
//!
//! A borrowed write with nothing in flight is sent at once with a
//! non-blocking `send` or `sendmsg` (not under SQPOLL); what the socket
//! has no room for is copied into a pool buffer, its send started, and
//! the write returns at once (write-behind): one send per stream is in flight, the
//! next write or `flush` waits for it and reports its error, and a short
//! send is finished before anything else is sent. Sends carry
//! `MSG_WAITALL` (the kernel completes stream sends whole) and
//! `MSG_NOSIGNAL`. An owned write (`write_owned`) sends from the caller's
//! buffer, from its registered index when it is a registered pool buffer;
//! if its future is dropped, the driver keeps the buffer until the kernel
//! is done.
//!
//! When the pool is empty the write waits for writability (`POLL_ADD`)
//! and sends without blocking straight from the caller's memory.

use super::{os_err, Side, UringFd};
use crate::buf::{IoBuf, PoolBuf};
use crate::driver::uring::{Keep, KernelData, Kind, OpId, MAX_IOV};
use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::task::{ready, Context, Poll};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteVia {
    /// Driven by whoever writes next: write-behind, or an owned write
    /// whose future went away.
    Behind,
    /// An owned write whose future still drives it.
    OwnedAlive,
    Poll,
}

pub(super) enum Write {
    Idle,
    InFlight {
        id: OpId,
        off: usize,
        len: usize,
        via: WriteVia,
    },
}

impl UringFd {
    fn send_sqe(&self, ptr: *const u8, len: usize, fixed: Option<u16>) -> squeue::Entry {
        let fd = Fd(self.fd);
        match fixed {
            Some(index) => opcode::WriteFixed::new(fd, ptr, len as u32, index)
                .offset(u64::MAX)
                .build(),
            None => opcode::Send::new(fd, ptr, len as u32)
                .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
                .build(),
        }
    }

    /// Waits until no send is in flight, finishing a short one; reports
    /// the error of a send nobody waited for.
    pub(super) fn poll_settle(
        &self,
        side: &mut Side<Write>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            match side.state {
                Write::Idle => return Poll::Ready(Ok(())),
                Write::InFlight {
                    via: WriteVia::OwnedAlive,
                    ..
                } => {
                    side.wait(cx);
                    return Poll::Pending;
                }
                Write::InFlight { id, off, len, via } => {
                    let (res, _, keep) = ready!(self.handle.poll_op(id, cx));
                    side.state = Write::Idle;
                    if via == WriteVia::Poll {
                        if res < 0 {
                            return Poll::Ready(Err(os_err(res)));
                        }
                        return Poll::Ready(Ok(()));
                    }
                    if res < 0 {
                        return Poll::Ready(Err(os_err(res)));
                    }
                    let done = off + res as usize;
                    if done >= len {
                        return Poll::Ready(Ok(()));
                    }
                    if res == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    // A short send: the rest goes before anything else.
                    let base = match &keep {
                        Keep::Pool(p) => p.stable_ptr(),
                        Keep::Buf(b) => b.stable_ptr(),
                        _ => {
                            tracing::warn!(
                                "a short vectored send whose future went away: the rest is dropped"
                            );
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                        }
                    };
                    // SAFETY: `done < len`, inside the kept buffer.
                    let ptr = unsafe { base.add(done) };
                    let sqe = self.send_sqe(ptr, len - done, None);
                    let id = self.handle.start(Kind::Plain, keep, false, |_| sqe)?;
                    side.state = Write::InFlight {
                        id,
                        off: done,
                        len,
                        via: WriteVia::Behind,
                    };
                }
            }
        }
    }

    /// The borrowed write: copies into a pool buffer and sends behind.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(src)])
    }

    /// Gathers `bufs` into one pool buffer and sends it behind.
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut side = self.write.lock();
        ready!(self.poll_settle(&mut side, cx))?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        // Nothing is in flight: send at once, as epoll does, when the
        // socket has room (one system call, no copy, no ring entry). Under
        // load this is cheaper than a ring send, which costs the same
        // `io_uring_enter` plus the ring's lock, op slot and completion
        // (issue 15: 20 % on the relay's median at 200k frames/s). Only
        // when the socket is full does the write go behind on the ring.
        // Under SQPOLL the ring submits without a system call: keep it.
        let direct = !self.handle.sqpoll();
        if direct {
            match self.send_now(bufs) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let Some(mut p) = self.handle.pool().take() else {
            return self.poll_write_ready(&mut side, cx, bufs);
        };
        let mut n = 0;
        for b in bufs {
            let took = p.extend_from_slice(b);
            n += took;
            if took < b.len() {
                break;
            }
        }
        let sqe = self.send_sqe(p.stable_ptr(), n, None);
        // The socket had no room (or SQPOLL submits it): the send waits,
        // and goes to the kernel with the next turn.
        let id = if direct {
            self.handle
                .start_waiting(Kind::Plain, Keep::Pool(p), false, |_| sqe)?
        } else {
            self.handle
                .start(Kind::Plain, Keep::Pool(p), false, |_| sqe)?
        };
        side.state = Write::InFlight {
            id,
            off: 0,
            len: n,
            via: WriteVia::Behind,
        };
        Poll::Ready(Ok(n))
    }

    /// One non-blocking send straight from the caller's memory: `send` for
    /// one slice or for slices small enough to gather on the stack, else
    /// `sendmsg`. Written by hand rather than through std or socket2
    /// because `MSG_NOSIGNAL` and `MSG_DONTWAIT` are needed per call (the
    /// fd is blocking for the ring's sake, and a library must not rely on
    /// SIGPIPE being ignored). `sendmsg` copies and checks a `msghdr` and
    /// imports an iovec array: for a small vectored write (hyper's headers
    /// and body, 88 bytes in two slices for a hello world) that costs more
    /// than gathering the bytes here (2 % of a hyper server's CPU under wrk).
    fn send_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        const GATHER: usize = 512;
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let r = if bufs.len() == 1 {
            // SAFETY: the slice is valid for reads of its length for the
            // call, and the kernel keeps no pointer after it.
            unsafe { libc::send(self.fd, bufs[0].as_ptr().cast(), bufs[0].len(), flags) }
        } else if total <= GATHER {
            let mut gathered = [0u8; GATHER];
            let mut n = 0;
            for b in bufs {
                gathered[n..n + b.len()].copy_from_slice(b);
                n += b.len();
            }
            // SAFETY: `gathered[..n]` is valid for reads for the call, and
            // the kernel keeps no pointer after it.
            unsafe { libc::send(self.fd, gathered.as_ptr().cast(), n, flags) }
        } else {
            let msg = libc::msghdr {
                msg_name: std::ptr::null_mut(),
                msg_namelen: 0,
                msg_iov: bufs.as_ptr() as *mut libc::iovec,
                msg_iovlen: bufs.len().min(libc::UIO_MAXIOV as usize),
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            };
            // SAFETY: IoSlice is ABI-compatible with iovec; the slices are
            // valid for the call, and the kernel keeps no pointer after it.
            unsafe { libc::sendmsg(self.fd, &msg, flags) }
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// The pool is empty: wait for writability, then send without
    /// blocking straight from the caller's memory.
    fn poll_write_ready(
        &self,
        side: &mut Side<Write>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            let fd = self.fd;
            match self.send_now(bufs) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let id = self.handle.start(Kind::Plain, Keep::None, false, |_| {
                opcode::PollAdd::new(Fd(fd), libc::POLLOUT as u32).build()
            })?;
            side.state = Write::InFlight {
                id,
                off: 0,
                len: 0,
                via: WriteVia::Poll,
            };
            ready!(self.poll_settle(side, cx))?;
        }
    }

    /// Waits for the send in flight.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut side = self.write.lock();
        self.poll_settle(&mut side, cx)
    }

    /// Sends `buf` from its own memory (a registered pool buffer by index).
    pub(crate) async fn write_owned<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let fixed = (&buf as &dyn std::any::Any)
            .downcast_ref::<PoolBuf>()
            .and_then(|p| self.handle.fixed_index(p));
        let sqe = self.send_sqe(buf.stable_ptr(), buf.bytes_init(), fixed);
        let len = buf.bytes_init();
        self.owned_write(buf, len, sqe, |b| Keep::Buf(Box::new(b)))
            .await
    }

    /// Sends up to 16 buffers in one `sendmsg`.
    pub(crate) async fn write_vectored_owned<B: IoBuf>(
        &self,
        bufs: Vec<B>,
    ) -> (io::Result<usize>, Vec<B>) {
        let used = bufs.len().min(MAX_IOV);
        let len: usize = bufs[..used].iter().map(|b| b.bytes_init()).sum();
        let iov: Vec<libc::iovec> = bufs[..used]
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr() as *mut libc::c_void,
                iov_len: b.bytes_init(),
            })
            .collect();
        let fd = self.fd;
        let build = move |k: &mut KernelData| {
            k.iov[..iov.len()].copy_from_slice(&iov);
            k.msg = libc::msghdr {
                msg_name: std::ptr::null_mut(),
                msg_namelen: 0,
                msg_iov: k.iov.as_mut_ptr(),
                msg_iovlen: iov.len(),
                msg_control: std::ptr::null_mut(),
                msg_controllen: 0,
                msg_flags: 0,
            };
            opcode::SendMsg::new(Fd(fd), &k.msg)
                .flags((libc::MSG_NOSIGNAL | libc::MSG_WAITALL) as u32)
                .build()
        };
        self.owned_write_with(bufs, len, build, |b| Keep::Bufs(Box::new(b)))
            .await
    }

    async fn owned_write<T: Send + 'static>(
        &self,
        data: T,
        len: usize,
        sqe: squeue::Entry,
        keep: fn(T) -> Keep,
    ) -> (io::Result<usize>, T) {
        self.owned_write_with(data, len, move |_| sqe, keep).await
    }

    async fn owned_write_with<T: Send + 'static>(
        &self,
        data: T,
        len: usize,
        build: impl FnOnce(&mut KernelData) -> squeue::Entry,
        keep: fn(T) -> Keep,
    ) -> (io::Result<usize>, T) {
        let mut build = Some(build);
        let id = loop {
            if let Err(e) = poll_fn(|cx| self.poll_flush(cx)).await {
                return (Err(e), data);
            }
            let mut side = self.write.lock();
            // Another writer may have started since the flush: wait again.
            if !matches!(side.state, Write::Idle) {
                continue;
            }
            let build = build.take().unwrap_or_else(|| unreachable!("built once"));
            match self.handle.start(Kind::Plain, Keep::None, false, build) {
                Ok(id) => {
                    side.state = Write::InFlight {
                        id,
                        off: 0,
                        len,
                        via: WriteVia::OwnedAlive,
                    };
                    break id;
                }
                Err(e) => return (Err(e), data),
            }
        };
        struct Orphan<'a, T: Send + 'static> {
            fd: &'a UringFd,
            id: OpId,
            data: Option<T>,
            keep: fn(T) -> Keep,
        }
        impl<T: Send + 'static> Drop for Orphan<'_, T> {
            fn drop(&mut self) {
                if let Some(d) = self.data.take() {
                    let mut side = self.fd.write.lock();
                    self.fd.handle.attach(self.id, (self.keep)(d));
                    if let Write::InFlight { via, .. } = &mut side.state {
                        *via = WriteVia::Behind;
                    }
                    side.wake_waiter();
                }
            }
        }
        let mut guard = Orphan {
            fd: self,
            id,
            data: Some(data),
            keep,
        };
        let (res, _, _) = poll_fn(|cx| self.handle.poll_op(id, cx)).await;
        let data = guard.data.take().unwrap_or_else(|| unreachable!());
        let mut side = self.write.lock();
        side.state = Write::Idle;
        side.wake_waiter();
        drop(side);
        if res < 0 {
            return (Err(os_err(res)), data);
        }
        (Ok(res as usize), data)
    }
}
