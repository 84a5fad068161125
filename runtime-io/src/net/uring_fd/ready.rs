//! Readiness on an io_uring stream: `readable`/`writable`, `try_read`,
//! `try_write`, `try_peek`, and handing the fd back (`into_std`).
//!
//! io_uring completes operations rather than reporting readiness, so a
//! wait for readiness is a `POLL_ADD` the stream owns, kept in the same
//! per-direction state as its receives and sends: a `readable()` future
//! dropped in flight leaves the poll to the stream (the next wait reuses
//! it, the stream's drop cancels it), exactly as a dropped read leaves its
//! receive.
//!
//! Order is kept: a `try_read` never overtakes bytes a receive of the
//! stream already brought (or may be bringing), and a `try_write` never
//! overtakes a send in flight. A `try_*` call that would have to wait for
//! either answers `WouldBlock`; the matching `readable`/`writable` waits
//! for it to finish.

use super::read::{Held, Read, Via};
use super::write::{Write, WriteVia};
use super::{os_err, UringFd};
use crate::driver::uring::{Keep, Kind, OpId};
use io_uring::cqueue;
use io_uring::opcode;
use io_uring::types::Fd;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, OwnedFd};
use std::task::{ready, Context, Poll, Waker};

/// A socket's fd could not be handed over: the stream still owns work the
/// kernel is doing, or bytes nobody has read.
#[derive(Debug, thiserror::Error)]
#[error("cannot hand the socket's fd over: {0} (read it, or flush, first)")]
pub(crate) struct Busy(pub(crate) &'static str);

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl UringFd {
    fn start_poll(&self, events: i16) -> io::Result<OpId> {
        let fd = Fd(self.fd);
        self.handle.start(Kind::Plain, Keep::None, false, |_| {
            opcode::PollAdd::new(fd, events as u32).build()
        })
    }

    /// A receive the stream owns (`via` Ring, Pool or an orphaned owned
    /// read) finished with `res`: its bytes become the stream's held data.
    /// `Ok(true)`: data is held; `Ok(false)`: nothing held (end of stream,
    /// or the provided-buffer ring was empty).
    fn hold_recv(
        &self,
        state: &mut Read,
        via: Via,
        (res, flags, keep): (i32, u32, Keep),
    ) -> io::Result<bool> {
        *state = Read::Idle;
        if res < 0 {
            if let Some(bid) = cqueue::buffer_select(flags) {
                self.handle.recycle(bid);
            }
            if res == -libc::ENOBUFS && via == Via::Ring {
                return Ok(false);
            }
            return Err(os_err(res));
        }
        let n = res as usize;
        let held = match (via, keep) {
            (Via::Ring, _) => match cqueue::buffer_select(flags) {
                Some(bid) => Held::Ring(bid),
                None => return Ok(false),
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
            return Ok(false);
        }
        *state = Read::Data(held, 0, n);
        Ok(true)
    }

    /// Ready to read: bytes are held, or the socket polled readable (or
    /// hung up: the read that follows says which).
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut side = self.read.lock();
        loop {
            match side.state {
                Read::Data(..) => return Poll::Ready(Ok(())),
                Read::Idle => {
                    let id = self.start_poll(libc::POLLIN)?;
                    side.state = Read::InFlight(id, Via::Poll);
                }
                Read::InFlight(_, Via::OwnedAlive) => {
                    side.wait(cx);
                    return Poll::Pending;
                }
                Read::InFlight(id, Via::Poll) => {
                    let (res, _, _) = ready!(self.handle.poll_op(id, cx));
                    side.state = Read::Idle;
                    side.wake_waiter();
                    return Poll::Ready(if res < 0 { Err(os_err(res)) } else { Ok(()) });
                }
                Read::InFlight(id, via) => {
                    let done = ready!(self.handle.poll_op(id, cx));
                    side.wake_waiter();
                    // Data held: the loop answers ready. Nothing held (the
                    // end of the stream, or an empty provided-buffer ring):
                    // ready too, and the read that follows says which (0 at
                    // the end; `WouldBlock`, and a poll next time, if not).
                    if !self.hold_recv(&mut side.state, via, done)? {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }

    /// Reads (`peek`: copies without consuming) what can be had now.
    pub(crate) fn try_read(&self, dst: &mut [u8], peek: bool) -> io::Result<usize> {
        let mut side = self.read.lock();
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            match &mut side.state {
                Read::Data(held, pos, end) => {
                    let src = &self.held_bytes(held, *end)[*pos..];
                    let n = src.len().min(dst.len());
                    dst[..n].copy_from_slice(&src[..n]);
                    if !peek {
                        *pos += n;
                        if *pos == *end {
                            if let Read::Data(held, ..) =
                                std::mem::replace(&mut side.state, Read::Idle)
                            {
                                self.release_held(held);
                            }
                        }
                    }
                    return Ok(n);
                }
                // Nothing received ahead: the socket itself.
                Read::Idle | Read::InFlight(_, Via::Poll) => {
                    let flags = libc::MSG_DONTWAIT | if peek { libc::MSG_PEEK } else { 0 };
                    // SAFETY: `dst` is valid for writes of its length.
                    let r =
                        unsafe { libc::recv(self.fd, dst.as_mut_ptr().cast(), dst.len(), flags) };
                    if r < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    return Ok(r as usize);
                }
                Read::InFlight(_, Via::OwnedAlive) => return Err(would_block()),
                Read::InFlight(id, via) => {
                    let (id, via) = (*id, *via);
                    let Poll::Ready(done) = self.handle.poll_op(id, &mut cx) else {
                        return Err(would_block());
                    };
                    side.wake_waiter();
                    self.hold_recv(&mut side.state, via, done)?;
                    // Data is held now, or the stream is idle and the
                    // socket answers (end of stream stays end of stream).
                }
            }
        }
    }

    /// Ready to write: no send in flight, and the socket polled writable.
    pub(crate) fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut side = self.write.lock();
        if matches!(side.state, Write::Idle) {
            let id = self.start_poll(libc::POLLOUT)?;
            side.state = Write::InFlight {
                id,
                off: 0,
                len: 0,
                via: WriteVia::Poll,
            };
        }
        self.poll_settle(&mut side, cx)
    }

    /// Sends what the socket takes now, after any send in flight.
    pub(crate) fn try_write(&self, src: &[u8]) -> io::Result<usize> {
        let mut side = self.write.lock();
        let queued = !matches!(
            side.state,
            Write::Idle
                | Write::InFlight {
                    via: WriteVia::Poll,
                    ..
                }
        );
        if queued {
            let mut cx = Context::from_waker(Waker::noop());
            match self.poll_settle(&mut side, &mut cx) {
                Poll::Pending => return Err(would_block()),
                Poll::Ready(r) => r?,
            }
        }
        // SAFETY: `src` is valid for reads of its length.
        let r = unsafe {
            libc::send(
                self.fd,
                src.as_ptr().cast(),
                src.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// Gives the fd back (blocking, as io_uring kept it), or says why it
    /// cannot be: bytes received ahead and not read, a receive or a send
    /// in flight (the stream is then dropped). A readiness poll in flight
    /// is cancelled.
    pub(crate) fn into_fd(self) -> Result<OwnedFd, Busy> {
        let busy = match (&self.read.lock().state, &self.write.lock().state) {
            (Read::Data(..), _) => Some("bytes were received ahead and not read"),
            (Read::InFlight(_, via), _) if *via != Via::Poll => Some("a receive is in flight"),
            (
                _,
                Write::InFlight {
                    via: WriteVia::OwnedAlive | WriteVia::Behind,
                    ..
                },
            ) => Some("a send is in flight"),
            _ => None,
        };
        if let Some(why) = busy {
            return Err(Busy(why));
        }
        if let Read::InFlight(id, _) = std::mem::replace(&mut self.read.lock().state, Read::Idle) {
            self.handle.ignore(id, true, Keep::None);
        }
        if let Write::InFlight { id, .. } =
            std::mem::replace(&mut self.write.lock().state, Write::Idle)
        {
            self.handle.ignore(id, true, Keep::None);
        }
        let me = ManuallyDrop::new(self);
        // SAFETY: each field is read out of `me` once and dropped; `me`
        // itself is never used or dropped again, so nothing is dropped
        // twice and the fd is not closed through the ring.
        unsafe {
            drop(std::ptr::read(&me.handle));
            drop(std::ptr::read(&me.read));
            drop(std::ptr::read(&me.write));
        }
        // SAFETY: the stream owned the fd, and gives it up here.
        Ok(unsafe { OwnedFd::from_raw_fd(me.fd) })
    }
}
