//! A spawned child, and how its exit is awaited.
//!
//! Where the kernel has pidfds (Linux 5.3), the child's pidfd is opened
//! right after the spawn and served by the worker's driver: it becomes
//! readable when the child exits, so a wait costs no thread. Where it has
//! not (`pidfd_open` answers ENOSYS, or a seccomp filter refuses it), a
//! blocking-pool job waits with `waitid(WNOWAIT)`, which sees the exit
//! without reaping (a wait dropped early leaves that job waiting until
//! the exit). Either way the child is reaped by `try_wait`, and only
//! then: until that, its pid cannot be reused, so `kill` and the pidfd
//! always name this child.

use super::pipe::{ChildStderr, ChildStdin, ChildStdout};
use crate::readiness::Direction;
use crate::ready_io::{FdSource, ReadyIo};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::pin;
use std::process::{ExitStatus, Output};
use std::task::Poll;

/// How the exit is awaited.
#[derive(Debug)]
enum ExitWatch {
    /// The child's pidfd on the driver: readable at exit.
    Pidfd(ReadyIo<FdSource>),
    /// No pidfd: a blocking-pool job waits.
    Blocking,
}

/// A running (or exited, not yet awaited) child process.
#[derive(Debug)]
pub struct Child {
    /// The child's stdin, if it was piped.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
    inner: std::process::Child,
    watch: ExitWatch,
    status: Option<ExitStatus>,
    kill_on_drop: bool,
}

/// The child's pidfd, or `None` where the kernel has none for us.
fn pidfd_open(pid: u32) -> io::Result<Option<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and flags and touches no memory.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            // Before Linux 5.3, or refused by a seccomp filter.
            Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EACCES) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: a new fd this call owns (pidfds are close-on-exec).
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

impl Child {
    /// Serves a spawned child's exit and pipes on this thread's driver;
    /// if that fails, the child is killed and reaped before the error
    /// comes back (nothing is left running that nobody can wait for).
    pub(crate) fn new(mut inner: std::process::Child, kill_on_drop: bool) -> io::Result<Child> {
        let parts = (|| -> io::Result<_> {
            let watch = match pidfd_open(inner.id())? {
                Some(fd) => ExitWatch::Pidfd(ReadyIo::new(FdSource(fd))?),
                None => ExitWatch::Blocking,
            };
            Ok((
                watch,
                inner.stdin.take().map(ChildStdin::new).transpose()?,
                inner.stdout.take().map(ChildStdout::new).transpose()?,
                inner.stderr.take().map(ChildStderr::new).transpose()?,
            ))
        })();
        match parts {
            Ok((watch, stdin, stdout, stderr)) => Ok(Child {
                stdin,
                stdout,
                stderr,
                inner,
                watch,
                status: None,
                kill_on_drop,
            }),
            Err(e) => {
                let _ = inner.kill();
                // A killed child exits at once: a short blocking wait.
                let _ = inner.wait();
                Err(e)
            }
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Whether the exit is awaited through a pidfd on the driver (else a
    /// blocking-pool job waits for it).
    pub fn uses_pidfd(&self) -> bool {
        matches!(self.watch, ExitWatch::Pidfd(_))
    }

    /// Sends SIGKILL (nothing if the child has already been awaited).
    /// [`wait`](Self::wait) then reports the signal.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        self.inner.kill()
    }

    /// The exit status if the child has exited (reaping it), else `None`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let s = self.inner.try_wait()?;
        self.status = s;
        Ok(s)
    }

    /// Waits for the child to exit. Its stdin is closed first (if piped),
    /// so a child that reads to the end does not wait for the parent.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            match &self.watch {
                ExitWatch::Pidfd(p) => poll_fn(|cx| p.poll_ready(cx, Direction::Read)).await?,
                ExitWatch::Blocking => {
                    let pid = self.inner.id() as libc::id_t;
                    super::blocking_wait(pid).await?
                }
            }
        }
    }

    /// Reads stdout and stderr to their end (at once, so a child filling
    /// one pipe never stalls on the other) and waits for the exit.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (out, err) = (self.stdout.take(), self.stderr.take());
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        {
            let a = pin!(async {
                match &out {
                    Some(o) => o.read_to_end(&mut stdout).await.map(drop),
                    None => Ok(()),
                }
            });
            let b = pin!(async {
                match &err {
                    Some(e) => e.read_to_end(&mut stderr).await.map(drop),
                    None => Ok(()),
                }
            });
            join2(a, b).await?;
        }
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Runs two fallible futures at once; the first error wins.
async fn join2(
    mut a: std::pin::Pin<&mut impl Future<Output = io::Result<()>>>,
    mut b: std::pin::Pin<&mut impl Future<Output = io::Result<()>>>,
) -> io::Result<()> {
    let (mut a_done, mut b_done) = (false, false);
    poll_fn(|cx| {
        if !a_done {
            if let Poll::Ready(r) = a.as_mut().poll(cx) {
                r?;
                a_done = true;
            }
        }
        if !b_done {
            if let Poll::Ready(r) = b.as_mut().poll(cx) {
                r?;
                b_done = true;
            }
        }
        if a_done && b_done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

impl Drop for Child {
    /// As std, a child not awaited keeps running and is not reaped; with
    /// `kill_on_drop` it is killed, and reaped by a blocking-pool job
    /// where a runtime is at hand.
    fn drop(&mut self) {
        if !self.kill_on_drop || self.status.is_some() {
            return;
        }
        if let Err(e) = self.inner.kill() {
            tracing::warn!(pid = self.inner.id(), error = %e, "kill_on_drop: cannot kill the child");
            return;
        }
        if matches!(self.inner.try_wait(), Ok(Some(_))) {
            return;
        }
        if sprint_core::Handle::try_current().is_some() {
            let pid = self.inner.id() as libc::pid_t;
            drop(sprint_core::spawn_blocking(move || {
                let mut status = 0;
                // SAFETY: waits for (and reaps) our own killed child; the
                // status is a valid int to write.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }));
        }
    }
}
