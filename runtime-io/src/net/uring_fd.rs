//! A socket on the io_uring driver: completion-based reads and writes on
//! one fd, shared by TCP and Unix streams and listeners.
//!
//! Reads. A borrowed read (`AsyncRead`, `read(&mut buf)`) never lends the
//! caller's memory to the kernel: the receive lands in a provided buffer
//! the kernel picks at completion (so 1,000 idle connections hold no
//! memory), or in a pool buffer, and is copied out. The receive belongs to
//! the stream, not to the future: a future dropped in flight leaves it
//! running, and the next read returns its data. Nothing is lost and no
//! freed memory is written. An owned read (`read_owned`) lends the
//! caller's buffer; if its future is dropped, the driver keeps the buffer
//! until the kernel is done, and the next read takes the data from it.
//!
//! Writes. A borrowed write copies into a pool buffer, starts the send and
//! returns at once (write-behind): one send per stream is in flight, the
//! next write or `flush` waits for it and reports its error, and a short
//! send is finished before anything else is sent. Sends carry
//! `MSG_WAITALL` (the kernel completes stream sends whole) and
//! `MSG_NOSIGNAL`. An owned write (`write_owned`) sends from the caller's
//! buffer, from its registered index when it is a registered pool buffer.
//!
//! When the pool is empty the stream falls back to readiness (`POLL_ADD`)
//! and a non-blocking system call, so exhaustion slows, never deadlocks.

use crate::buf::{IoBuf, IoBufMut, PoolBuf};
use crate::driver::uring::{Keep, Kind, OpId, UringHandle, MAX_IOV};
use io_uring::types::Fd;
use io_uring::{cqueue, opcode, squeue};
use parking_lot::Mutex;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};

fn os_err(res: i32) -> io::Error {
    io::Error::from_raw_os_error(-res)
}

enum Held {
    Ring(u16),
    Pool(PoolBuf),
    Owned(Box<dyn IoBufMut>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Ring,
    Pool,
    /// An owned read whose future still runs and drives it.
    OwnedAlive,
    /// An owned read whose future went away; the buffer is in the slot.
    OwnedOrphan,
    Poll,
}

enum Read {
    Idle,
    InFlight(OpId, Via),
    Data(Held, usize, usize),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteVia {
    /// Driven by whoever writes next: write-behind, or an owned write
    /// whose future went away.
    Behind,
    /// An owned write whose future still drives it.
    OwnedAlive,
    Poll,
}

enum Write {
    Idle,
    InFlight {
        id: OpId,
        off: usize,
        len: usize,
        via: WriteVia,
    },
}

struct Side<S> {
    state: S,
    /// Tasks waiting for an owned operation's future to finish; all are
    /// woken (the vector keeps its capacity, so this does not allocate in
    /// steady state).
    waiters: Vec<Waker>,
}

impl<S> Side<S> {
    fn wait(&mut self, cx: &Context<'_>) {
        if !self.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            self.waiters.push(cx.waker().clone());
        }
    }

    fn wake_waiter(&mut self) {
        for w in self.waiters.drain(..) {
            w.wake();
        }
    }
}

/// One socket on an io_uring driver.
pub(crate) struct UringFd {
    fd: RawFd,
    handle: Arc<UringHandle>,
    read: Mutex<Side<Read>>,
    write: Mutex<Side<Write>>,
}

impl std::fmt::Debug for UringFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringFd").field("fd", &self.fd).finish()
    }
}

impl AsRawFd for UringFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

/// Awaits one operation; if dropped first, hands the slot to the driver
/// (cancelling it if `cancel`).
struct OpGuard<'a> {
    handle: &'a UringHandle,
    id: Option<OpId>,
    cancel: bool,
}

impl OpGuard<'_> {
    async fn wait(mut self) -> (i32, u32, Keep) {
        let r = poll_fn(|cx| {
            let id = self
                .id
                .unwrap_or_else(|| unreachable!("polled after completion"));
            self.handle.poll_op(id, cx)
        })
        .await;
        self.id = None;
        r
    }
}

impl Drop for OpGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.handle.ignore(id, self.cancel, Keep::None);
        }
    }
}

impl UringFd {
    /// Takes `fd` (made blocking: the ring waits, not the socket).
    pub(crate) fn new(fd: OwnedFd, handle: Arc<UringHandle>) -> io::Result<UringFd> {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an fd we own.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::O_NONBLOCK != 0 {
            // SAFETY: as above.
            if unsafe { libc::fcntl(raw, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(UringFd {
            fd: fd.into_raw_fd(),
            handle,
            read: Mutex::new(Side {
                state: Read::Idle,
                waiters: Vec::new(),
            }),
            write: Mutex::new(Side {
                state: Write::Idle,
                waiters: Vec::new(),
            }),
        })
    }

    fn held_bytes<'a>(&'a self, held: &'a Held, end: usize) -> &'a [u8] {
        match held {
            // SAFETY: this stream holds `bid` (its CQE named it, it is not
            // given back yet) and the kernel wrote `end` bytes into it.
            Held::Ring(bid) => unsafe { self.handle.ring_bytes(*bid, end) },
            Held::Pool(p) => &p[..end.min(p.len())],
            // SAFETY: the kernel wrote `end` bytes at the buffer's start.
            Held::Owned(b) => unsafe { std::slice::from_raw_parts(b.stable_ptr(), end) },
        }
    }

    fn release_held(&self, held: Held) {
        if let Held::Ring(bid) = held {
            self.handle.recycle(bid);
        }
    }

    fn start_recv(&self, avoid_ring: bool) -> io::Result<(OpId, Via)> {
        let fd = Fd(self.fd);
        if self.handle.has_bufring() && !avoid_ring {
            let group = self.handle.bufring_group();
            let id = self.handle.start(Kind::Plain, Keep::None, false, |_| {
                opcode::Recv::new(fd, std::ptr::null_mut(), 0)
                    .buf_group(group)
                    .build()
                    .flags(squeue::Flags::BUFFER_SELECT)
            })?;
            return Ok((id, Via::Ring));
        }
        if let Some(mut p) = self.handle.pool().take() {
            let (ptr, cap) = (p.stable_mut_ptr(), p.bytes_total());
            let id = self.handle.start(Kind::Plain, Keep::Pool(p), false, |_| {
                opcode::Recv::new(fd, ptr, cap as u32).build()
            })?;
            return Ok((id, Via::Pool));
        }
        let id = self.handle.start(Kind::Plain, Keep::None, false, |_| {
            opcode::PollAdd::new(fd, libc::POLLIN as u32).build()
        })?;
        Ok((id, Via::Poll))
    }

    /// The borrowed read: see the module notes.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: a slice is valid for writes of its length.
        unsafe { self.poll_read_raw(cx, dst.as_mut_ptr(), dst.len()) }
    }

    /// `poll_read` into `len` bytes at `dst`, which may be uninitialised.
    ///
    /// # Safety
    /// `dst` is valid for writes of `len` bytes for the call.
    pub(crate) unsafe fn poll_read_raw(
        &self,
        cx: &mut Context<'_>,
        dst: *mut u8,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let mut side = self.read.lock();
        let mut avoid_ring = false;
        loop {
            match &mut side.state {
                Read::Data(held, pos, end) => {
                    let n = {
                        let src = &self.held_bytes(held, *end)[*pos..];
                        let n = src.len().min(len);
                        // SAFETY: `dst` takes `len >= n` bytes (the caller's
                        // promise) and cannot overlap memory the stream owns.
                        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, n) };
                        n
                    };
                    *pos += n;
                    if *pos == *end {
                        if let Read::Data(held, ..) = std::mem::replace(&mut side.state, Read::Idle)
                        {
                            self.release_held(held);
                        }
                    }
                    return Poll::Ready(Ok(n));
                }
                Read::Idle => {
                    if len == 0 {
                        return Poll::Ready(Ok(0));
                    }
                    let (id, via) = self.start_recv(avoid_ring)?;
                    side.state = Read::InFlight(id, via);
                }
                Read::InFlight(_, Via::OwnedAlive) => {
                    side.wait(cx);
                    return Poll::Pending;
                }
                Read::InFlight(id, via) => {
                    let (id, via) = (*id, *via);
                    let (res, flags, keep) = ready!(self.handle.poll_op(id, cx));
                    side.state = Read::Idle;
                    if res < 0 {
                        if let Some(bid) = cqueue::buffer_select(flags) {
                            self.handle.recycle(bid);
                        }
                        if res == -libc::ENOBUFS && via == Via::Ring {
                            avoid_ring = true;
                            continue;
                        }
                        return Poll::Ready(Err(os_err(res)));
                    }
                    let n = res as usize;
                    let held = match (via, keep) {
                        (Via::Poll, _) => {
                            // Readable: read straight into the caller's buffer.
                            // SAFETY: `dst` is valid for `len` bytes.
                            let r =
                                unsafe { libc::recv(self.fd, dst.cast(), len, libc::MSG_DONTWAIT) };
                            if r < 0 {
                                let e = io::Error::last_os_error();
                                if e.kind() == io::ErrorKind::WouldBlock {
                                    continue;
                                }
                                return Poll::Ready(Err(e));
                            }
                            return Poll::Ready(Ok(r as usize));
                        }
                        (Via::Ring, _) => match cqueue::buffer_select(flags) {
                            Some(bid) => Held::Ring(bid),
                            None => return Poll::Ready(Ok(0)),
                        },
                        (Via::Pool, Keep::Pool(mut p)) => {
                            p.set_len(n);
                            Held::Pool(p)
                        }
                        (Via::OwnedOrphan, Keep::BufMut(b)) => Held::Owned(b),
                        _ => unreachable!("a receive's slot kept the wrong memory"),
                    };
                    if n == 0 {
                        self.release_held(held);
                        return Poll::Ready(Ok(0));
                    }
                    side.state = Read::Data(held, 0, n);
                }
            }
        }
    }

    /// Reads into `buf` (its whole capacity; its length becomes the bytes
    /// read); the kernel writes straight into it.
    pub(crate) async fn read_owned<B: IoBufMut>(&self, mut buf: B) -> (io::Result<usize>, B) {
        // Data or a receive already belongs to the stream: take it first.
        let id = loop {
            let r = poll_fn(|cx| {
                let mut side = self.read.lock();
                match side.state {
                    Read::Idle => Poll::Ready(None),
                    Read::InFlight(_, Via::OwnedAlive) => {
                        side.wait(cx);
                        Poll::Pending
                    }
                    _ => Poll::Ready(Some(())),
                }
            })
            .await;
            if r.is_some() {
                let total = buf.bytes_total();
                let ptr = buf.stable_mut_ptr();
                // SAFETY: the buffer is valid for `total` bytes of writes
                // (possibly uninitialised, which the raw read allows).
                let res = poll_fn(|cx| unsafe { self.poll_read_raw(cx, ptr, total) }).await;
                if let Ok(n) = res {
                    // SAFETY: `poll_read` initialised the first `n` bytes.
                    unsafe { buf.set_init(n) };
                }
                return (res, buf);
            }
            let mut side = self.read.lock();
            if !matches!(side.state, Read::Idle) {
                continue;
            }
            let (ptr, len) = (buf.stable_mut_ptr(), buf.bytes_total());
            let fd = Fd(self.fd);
            match self.handle.start(Kind::Plain, Keep::None, false, |_| {
                opcode::Recv::new(fd, ptr, len as u32).build()
            }) {
                Ok(id) => {
                    side.state = Read::InFlight(id, Via::OwnedAlive);
                    break id;
                }
                Err(e) => return (Err(e), buf),
            }
        };
        struct Orphan<'a, B: IoBufMut> {
            fd: &'a UringFd,
            id: OpId,
            buf: Option<B>,
        }
        impl<B: IoBufMut> Drop for Orphan<'_, B> {
            fn drop(&mut self) {
                if let Some(b) = self.buf.take() {
                    let mut side = self.fd.read.lock();
                    self.fd.handle.attach(self.id, Keep::BufMut(Box::new(b)));
                    side.state = Read::InFlight(self.id, Via::OwnedOrphan);
                    side.wake_waiter();
                }
            }
        }
        let mut guard = Orphan {
            fd: self,
            id,
            buf: Some(buf),
        };
        let (res, _, _) = poll_fn(|cx| self.handle.poll_op(id, cx)).await;
        let mut buf = guard.buf.take().unwrap_or_else(|| unreachable!());
        let mut side = self.read.lock();
        side.state = Read::Idle;
        side.wake_waiter();
        drop(side);
        if res < 0 {
            return (Err(os_err(res)), buf);
        }
        // SAFETY: the kernel wrote `res` bytes at the buffer's start.
        unsafe { buf.set_init(res as usize) };
        (Ok(res as usize), buf)
    }

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
    fn poll_settle(&self, side: &mut Side<Write>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
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
        let id = self
            .handle
            .start(Kind::Plain, Keep::Pool(p), false, |_| sqe)?;
        side.state = Write::InFlight {
            id,
            off: 0,
            len: n,
            via: WriteVia::Behind,
        };
        Poll::Ready(Ok(n))
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
            // valid for the call.
            let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
            if r >= 0 {
                return Poll::Ready(Ok(r as usize));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Poll::Ready(Err(e));
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
        let build = move |k: &mut crate::driver::uring::KernelData| {
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
        build: impl FnOnce(&mut crate::driver::uring::KernelData) -> squeue::Entry,
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

    /// Runs one operation that keeps no memory and answers only with a
    /// status; if the future is dropped, the driver takes the slot (and
    /// cancels the operation if `cancel`).
    async fn status_op(
        &self,
        cancel: bool,
        build: impl FnOnce(&mut crate::driver::uring::KernelData) -> squeue::Entry,
    ) -> io::Result<()> {
        let id = self.handle.start(Kind::Plain, Keep::None, false, build)?;
        let (res, _, _) = OpGuard {
            handle: &self.handle,
            id: Some(id),
            cancel,
        }
        .wait()
        .await;
        if res < 0 {
            return Err(os_err(res));
        }
        Ok(())
    }

    /// Shuts down `how`, after the send in flight.
    pub(crate) async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            poll_fn(|cx| self.poll_flush(cx)).await?;
        }
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        let fd = Fd(self.fd);
        self.status_op(false, |_| opcode::Shutdown::new(fd, how).build())
            .await
    }

    /// Connects this socket to `addr`.
    pub(crate) async fn connect(&self, addr: &socket2::SockAddr) -> io::Result<()> {
        let fd = Fd(self.fd);
        self.status_op(true, |k| {
            let len = addr.len() as usize;
            // SAFETY: `addr` holds `len` bytes of a sockaddr, and
            // sockaddr_storage is large enough for any.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    addr.as_ptr().cast::<u8>(),
                    (&mut k.addr as *mut libc::sockaddr_storage).cast::<u8>(),
                    len,
                )
            };
            k.addr_len = addr.len();
            opcode::Connect::new(
                fd,
                (&k.addr as *const libc::sockaddr_storage).cast(),
                k.addr_len,
            )
            .build()
        })
        .await
    }

    /// Waits until the socket is ready for `events` (POLLIN, POLLOUT).
    pub(crate) async fn ready(&self, events: i16) -> io::Result<()> {
        let fd = Fd(self.fd);
        self.status_op(true, |_| opcode::PollAdd::new(fd, events as u32).build())
            .await
    }
}

impl Drop for UringFd {
    fn drop(&mut self) {
        // A receive or poll in flight is cancelled; a send is left to
        // finish (the ring holds the socket open until then); the close
        // is queued after both.
        let read = std::mem::replace(&mut self.read.get_mut().state, Read::Idle);
        match read {
            Read::InFlight(id, _) => self.handle.ignore(id, true, Keep::None),
            Read::Data(held, ..) => self.release_held(held),
            Read::Idle => {}
        }
        if let Write::InFlight { id, via, .. } =
            std::mem::replace(&mut self.write.get_mut().state, Write::Idle)
        {
            self.handle.ignore(id, via == WriteVia::Poll, Keep::None);
        }
        self.handle.close(self.fd);
    }
}

/// Accepts on a listening fd: one multishot accept where the kernel has
/// it, else one accept at a time.
pub(crate) struct UringAcceptor {
    fd: UringFd,
    op: Mutex<Option<(OpId, bool)>>,
}

impl std::fmt::Debug for UringAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringAcceptor")
            .field("fd", &self.fd.fd)
            .finish()
    }
}

impl UringAcceptor {
    pub(crate) fn new(fd: UringFd) -> UringAcceptor {
        UringAcceptor {
            fd,
            op: Mutex::new(None),
        }
    }

    pub(crate) fn fd(&self) -> &UringFd {
        &self.fd
    }

    /// The next accepted connection's fd (close-on-exec, blocking).
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<OwnedFd>> {
        let h = &self.fd.handle;
        let mut op = self.op.lock();
        loop {
            let (id, multi) = match *op {
                Some(x) => x,
                None => {
                    let multi = h.multishot_accept();
                    let fd = Fd(self.fd.fd);
                    let id = h.start(Kind::Accept, Keep::None, multi, |_| {
                        if multi {
                            opcode::AcceptMulti::new(fd)
                                .flags(libc::SOCK_CLOEXEC)
                                .build()
                        } else {
                            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                                .flags(libc::SOCK_CLOEXEC)
                                .build()
                        }
                    })?;
                    *op = Some((id, multi));
                    (id, multi)
                }
            };
            let res = if multi {
                match ready!(h.poll_multi(id, cx)) {
                    Some((res, flags)) => {
                        if !cqueue::more(flags) {
                            // The multishot ended with this result; the
                            // slot is freed on the next poll, which sees
                            // the end.
                            if let Poll::Ready(None) = h.poll_multi(id, cx) {
                                *op = None;
                            }
                            if res == -libc::ECANCELED {
                                // Stopped for backpressure (or by the
                                // driver's shutdown): start again.
                                continue;
                            }
                        }
                        res
                    }
                    None => {
                        *op = None;
                        continue;
                    }
                }
            } else {
                let (res, _, _) = ready!(h.poll_op(id, cx));
                *op = None;
                res
            };
            if res < 0 {
                return Poll::Ready(Err(os_err(res)));
            }
            // SAFETY: the kernel accepted this fd for us.
            return Poll::Ready(Ok(unsafe {
                <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(res)
            }));
        }
    }
}

impl Drop for UringAcceptor {
    fn drop(&mut self) {
        if let Some((id, _)) = self.op.get_mut().take() {
            self.fd.handle.ignore(id, true, Keep::None);
        }
    }
}
