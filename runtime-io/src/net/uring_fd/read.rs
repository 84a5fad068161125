//! The read side of an io_uring socket.
//!
//! A borrowed read (`AsyncRead`, `read(&mut buf)`) first takes what the
//! socket already has with a non-blocking `recv` (not under SQPOLL). One
//! exception (`ReadHint`), for a request-response peer: hyper reads again
//! right after the read that took a request, before it answers, and the
//! peer sends nothing until the answer, so that `recv` always answers
//! EAGAIN (6 % of a hyper server's CPU under wrk). When the `recv` right
//! after a read that emptied the socket (got fewer bytes than it had room
//! for) has found nothing 16 times in a row, such a read goes straight to
//! a receive on the ring, sent with the worker's next turn, as a short
//! read clears epoll's readiness; every fourth still tries the `recv`, and
//! one that finds data ends the exception. A peer that streams (the
//! relay's publishers) keeps finding data there and keeps the direct
//! `recv`: taking every emptied socket as empty cost 60-80 % on the
//! relay's median at 50k frames/s.
//!
//! A borrowed read never lends the caller's memory to the kernel past the
//! call: on an empty socket the receive lands in a provided buffer the
//! kernel picks at completion (so 1,000 idle connections hold no memory),
//! or in a pool buffer, and is copied out. The receive belongs to
//! the stream, not to the future: a future dropped in flight leaves it
//! running, and the next read returns its data. Nothing is lost and no
//! freed memory is written. An owned read (`read_owned`) lends the
//! caller's buffer; if its future is dropped, the driver keeps the buffer
//! until the kernel is done, and the next read takes the data from it.
//!
//! With no provided buffer and no pool buffer to be had, the read waits
//! for readability (`POLL_ADD`) and receives without blocking straight
//! into the caller's memory.

use super::{os_err, UringFd};
use crate::buf::{IoBufMut, PoolBuf};
use crate::driver::uring::{Keep, Kind, OpId};
use io_uring::types::Fd;
use io_uring::{cqueue, opcode, squeue};
use std::future::poll_fn;
use std::io;
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{ready, Context, Poll};

/// Whether a borrowed read tries a direct `recv` before a receive on the
/// ring (see the module notes). Written by hand: a byte of per-socket
/// state, read and written only under the read side's lock (atomic only
/// so the socket stays `Sync`; every access is `Relaxed`).
#[derive(Default)]
pub(crate) struct ReadHint(AtomicU8);

impl ReadHint {
    /// The last read got fewer bytes than it had room for.
    const DRAINED: u8 = 0x80;
    /// Reads sent to the ring since the last `recv` probe (0-3).
    const SKIPS: u8 = 0x60;
    const SKIP_ONE: u8 = 0x20;
    /// Consecutive `recv`s right after an emptying read that found
    /// nothing (saturating at 31).
    const MISSES: u8 = 0x1f;
    /// Misses in a row after which such reads take the socket as empty.
    const LEARNED: u8 = 16;

    /// At the start of a read: `Some(true)` to skip the direct `recv`;
    /// `Some(false)` to try it right after an emptying read (report the
    /// outcome with `found`); `None` to try it with nothing to learn.
    fn decide(&self) -> Option<bool> {
        let v = self.0.load(Relaxed);
        if v & Self::DRAINED == 0 {
            return None;
        }
        let v = v & !Self::DRAINED;
        if v & Self::MISSES >= Self::LEARNED && v & Self::SKIPS != Self::SKIPS {
            self.0.store(v + Self::SKIP_ONE, Relaxed);
            return Some(true);
        }
        // Probe (and start counting skips again).
        self.0.store(v & Self::MISSES, Relaxed);
        Some(false)
    }

    /// What the `recv` right after an emptying read found.
    fn found(&self, data: bool) {
        let v = self.0.load(Relaxed);
        let misses = v & Self::MISSES;
        let misses = if data {
            0
        } else {
            (misses + 1).min(Self::MISSES)
        };
        self.0.store((v & !Self::MISSES) | misses, Relaxed);
    }

    /// A read took `n` bytes with room for `room`.
    fn took(&self, n: usize, room: usize) {
        let v = self.0.load(Relaxed) & !Self::DRAINED;
        let drained = if n > 0 && n < room { Self::DRAINED } else { 0 };
        self.0.store(v | drained, Relaxed);
    }
}

pub(super) enum Held {
    Ring(u16),
    Pool(PoolBuf),
    Owned(Box<dyn IoBufMut>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Ring,
    Pool,
    /// An owned read whose future still runs and drives it.
    OwnedAlive,
    /// An owned read whose future went away; the buffer is in the slot.
    OwnedOrphan,
    Poll,
}

pub(super) enum Read {
    Idle,
    InFlight(OpId, Via),
    Data(Held, usize, usize),
}

impl UringFd {
    pub(super) fn held_bytes<'a>(&'a self, held: &'a Held, end: usize) -> &'a [u8] {
        match held {
            // SAFETY: this stream holds `bid` (its CQE named it, it is not
            // given back yet) and the kernel wrote `end` bytes into it.
            Held::Ring(bid) => unsafe { self.handle.ring_bytes(*bid, end) },
            Held::Pool(p) => &p[..end.min(p.len())],
            // SAFETY: the kernel wrote `end` bytes at the buffer's start.
            Held::Owned(b) => unsafe { std::slice::from_raw_parts(b.stable_ptr(), end) },
        }
    }

    pub(super) fn release_held(&self, held: Held) {
        if let Held::Ring(bid) = held {
            self.handle.recycle(bid);
        }
    }

    /// Starts a receive; `empty`: a direct `recv` just found the socket
    /// empty, so the receive waits and goes to the ring with the next turn
    /// (`start_waiting`).
    fn start_recv(&self, avoid_ring: bool, empty: bool) -> io::Result<(OpId, Via)> {
        let fd = Fd(self.fd);
        if self.handle.has_bufring() && !avoid_ring {
            let group = self.handle.bufring_group();
            let sqe = opcode::Recv::new(fd, std::ptr::null_mut(), 0)
                .buf_group(group)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT);
            let id = if empty {
                self.handle
                    .start_waiting(Kind::Plain, Keep::None, false, |_| sqe)?
            } else {
                self.handle.start(Kind::Plain, Keep::None, false, |_| sqe)?
            };
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
                    // Nothing is in flight and nothing held: take what the
                    // socket has at once, as epoll does (one system call,
                    // no ring entry, no copy). Only an empty socket gets a
                    // receive on the ring. Under SQPOLL the ring takes
                    // submissions without a system call: keep it.
                    // A socket learned to be emptied by its reads may be
                    // taken as empty (see the module notes).
                    let hint = self.read_hint.decide();
                    let skip = hint == Some(true);
                    let direct = !avoid_ring && !skip && !self.handle.sqpoll();
                    if direct {
                        // SAFETY: `dst` is valid for writes of `len` bytes
                        // (the caller's promise), and the call keeps no
                        // pointer after it returns.
                        let r = unsafe { libc::recv(self.fd, dst.cast(), len, libc::MSG_DONTWAIT) };
                        if r >= 0 {
                            let n = r as usize;
                            if hint.is_some() {
                                self.read_hint.found(true);
                            }
                            self.read_hint.took(n, len);
                            return Poll::Ready(Ok(n));
                        }
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::WouldBlock {
                            return Poll::Ready(Err(e));
                        }
                        if hint.is_some() {
                            self.read_hint.found(false);
                        }
                    }
                    let (id, via) = self.start_recv(avoid_ring, direct || skip)?;
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
                            Some(bid) => {
                                self.read_hint.took(n, self.handle.ring_buffer_len());
                                Held::Ring(bid)
                            }
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
}
