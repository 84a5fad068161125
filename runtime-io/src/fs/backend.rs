//! Where a file operation runs: on the worker's io_uring (where the probe
//! found the file opcodes) or on the runtime's blocking pool (epoll cannot
//! wait on regular files: they are always "ready", and a read of a cold
//! page blocks the thread).
//!
//! Both keep the buffer alive for as long as the kernel may write into
//! it, whatever happens to the future. On io_uring the buffer travels with
//! the future while it runs; a future dropped in flight hands it to the
//! operation's slot, which frees it only at the kernel's last completion
//! (the rule of `driver::uring::ops`), and asks the kernel to cancel. On
//! the blocking pool the buffer moves into the job, which owns it until
//! the system call returns, and comes back through a shared slot, so the
//! caller gets it back even when the pool never ran the job.

#[cfg(target_os = "linux")]
pub(crate) use crate::driver::uring::Kind;
#[cfg(target_os = "linux")]
use crate::driver::uring::{Keep, OpId};
#[cfg(target_os = "linux")]
use crate::driver::UringHandle;
use crate::driver::{self, Current};
use parking_lot::Mutex;
#[cfg(target_os = "linux")]
use std::future::poll_fn;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Where one file's operations run, fixed when it is opened.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    #[cfg(target_os = "linux")]
    Uring(Arc<UringHandle>),
    Blocking,
}

impl Backend {
    /// This thread's: its worker's ring if the ring does files, else the
    /// blocking pool. An error outside a Sprint runtime.
    pub(crate) fn current() -> io::Result<Backend> {
        Ok(match driver::current()? {
            #[cfg(target_os = "linux")]
            Current::Uring(h) if h.fs_ops() => Backend::Uring(h),
            _ => Backend::Blocking,
        })
    }
}

/// Runs one operation of `kind` on `handle`'s ring (`Kind::Open` for an
/// open: its fd is closed if nobody takes it). `build` makes the entry
/// from `data`, whose heap memory the entry may point into (it must not
/// move when `data` does: a `Vec`'s or a `Box`'s contents). Returns the
/// kernel's result (a count or an fd) and `data`.
#[cfg(target_os = "linux")]
pub(crate) async fn uring_op<T: Send + 'static>(
    handle: &UringHandle,
    kind: Kind,
    mut data: T,
    build: impl FnOnce(&mut T) -> io_uring::squeue::Entry,
) -> (io::Result<i32>, T) {
    let sqe = build(&mut data);
    let id = match handle.start(kind, Keep::None, false, |_| sqe) {
        Ok(id) => id,
        Err(e) => return (Err(e), data),
    };
    /// Holds `data` while the operation runs; dropped in flight, gives it
    /// to the slot and cancels.
    struct InFlight<'a, T: Send + 'static> {
        handle: &'a UringHandle,
        id: OpId,
        data: Option<T>,
    }
    impl<T: Send + 'static> Drop for InFlight<'_, T> {
        fn drop(&mut self) {
            if let Some(d) = self.data.take() {
                self.handle.ignore(self.id, true, Keep::Bufs(Box::new(d)));
            }
        }
    }
    let mut guard = InFlight {
        handle,
        id,
        data: Some(data),
    };
    let (res, _, _) = poll_fn(|cx| handle.poll_op(id, cx)).await;
    let data = guard
        .data
        .take()
        .unwrap_or_else(|| unreachable!("taken once, at completion"));
    let r = if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res)
    };
    (r, data)
}

/// Runs `f` on the blocking pool.
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> io::Result<R> + Send + 'static,
) -> io::Result<R> {
    match sprint_core::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(io::Error::other(format!(
            "a file job on the blocking pool failed: {e}"
        ))),
    }
}

/// Runs `f` on `data` on the blocking pool and gives `data` back: through
/// a shared slot, so it comes back even if the job never ran (the pool
/// shut down) or `f` panicked.
pub(crate) async fn blocking_with<T: Send + 'static, R: Send + 'static>(
    data: T,
    f: impl FnOnce(&mut T) -> io::Result<R> + Send + 'static,
) -> (io::Result<R>, T) {
    let slot = Arc::new(Mutex::new(Some(data)));
    let job = slot.clone();
    let r = blocking(move || {
        let mut guard = job.lock();
        let data = guard
            .as_mut()
            .unwrap_or_else(|| unreachable!("the data waits in the slot for the job"));
        catch_unwind(AssertUnwindSafe(|| f(data)))
            .unwrap_or_else(|_| Err(io::Error::other("a file operation panicked")))
    })
    .await;
    let data = slot
        .lock()
        .take()
        .unwrap_or_else(|| unreachable!("the job puts nothing elsewhere"));
    (r, data)
}

/// A system call's `-1` as the error, else its count.
pub(crate) fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}
