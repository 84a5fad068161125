//! A socket on the io_uring driver: completion-based reads and writes on
//! one fd, shared by TCP and Unix streams and listeners.
//!
//! Each direction has its own state behind its own lock: the read side
//! ([`read`]: at most one receive in flight, and the data it brought that
//! was not read yet) and the write side ([`write`](mod@write): at most one send in
//! flight). Listeners accept through [`accept`]. This file holds the
//! socket itself, the operations that only answer with a status
//! (connect, shutdown, readiness), and the close; [`ready`] holds the
//! readiness calls tokio users know (`readable`, `try_read`, `try_write`)
//! and handing the fd back.
//!
//! Every operation goes through the worker's [`UringHandle`]: a future
//! dropped in flight never frees memory the kernel may still write; the
//! slot keeps it until the kernel's last completion (see
//! `driver::uring::ops`).
//!
//! When the pool is empty the stream falls back to readiness (`POLL_ADD`)
//! and a non-blocking system call, so exhaustion slows, never deadlocks.

mod accept;
mod read;
mod ready;
mod write;

pub(crate) use accept::UringAcceptor;
pub(crate) use ready::Busy;

use crate::driver::uring::{Keep, KernelData, Kind, OpId, UringHandle};
use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use parking_lot::Mutex;
use read::Read;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Waker};
use write::{Write, WriteVia};

fn os_err(res: i32) -> io::Error {
    io::Error::from_raw_os_error(-res)
}

/// One direction of a socket (read or write): its state, and the tasks
/// waiting for it.
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
    /// Whether the next read tries a direct `recv` first (see `read`).
    read_hint: read::ReadHint,
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
            read_hint: read::ReadHint::default(),
        })
    }

    /// Runs one operation that keeps no memory and answers only with a
    /// status; if the future is dropped, the driver takes the slot (and
    /// cancels the operation if `cancel`).
    async fn status_op(
        &self,
        cancel: bool,
        build: impl FnOnce(&mut KernelData) -> squeue::Entry,
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
