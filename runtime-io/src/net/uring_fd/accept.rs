//! Accepting on an io_uring listener: one multishot accept where the
//! kernel has it (5.19), else one accept at a time.
//!
//! A multishot accept keeps delivering connections until it ends; the
//! driver caps its backlog (it cancels the accept once 64 connections
//! wait unaccepted, and this side starts it again when they are taken),
//! so a slow acceptor does not run the process out of descriptors. A
//! listener dropped with an accept in flight cancels it; a connection the
//! kernel accepted for nobody is closed by the driver.

use super::{os_err, Busy, UringFd};
use crate::driver::uring::{Keep, Kind, OpId};
use io_uring::types::Fd;
use io_uring::{cqueue, opcode};
use parking_lot::Mutex;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::OwnedFd;
use std::task::{ready, Context, Poll};

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

    /// Gives the listening fd back. An accept in flight is cancelled;
    /// connections the kernel already accepted for it (a multishot accept
    /// runs ahead of the caller) and nobody took are closed.
    pub(crate) fn into_fd(mut self) -> Result<OwnedFd, Busy> {
        if let Some((id, _)) = self.op.get_mut().take() {
            self.fd.handle.ignore(id, true, Keep::None);
        }
        let me = ManuallyDrop::new(self);
        // SAFETY: `fd` is read out of `me` once and `me` is never used or
        // dropped again (its `Drop` has nothing left to cancel; `op`, now
        // `None`, owns nothing).
        let fd = unsafe { std::ptr::read(&me.fd) };
        fd.into_fd()
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
