//! Child processes: a [`Command`] builder as std's, a [`Child`] whose
//! exit is awaited without holding a thread (a pidfd on the worker's
//! driver where the kernel has one), and its piped stdin, stdout and
//! stderr as Sprint streams.
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! use sprint_io::process::Command;
//! let out = Command::new("sh").args(["-c", "echo hi"]).output().await?;
//! assert!(out.status.success());
//! assert_eq!(out.stdout, b"hi\n");
//! # Ok(())
//! # }
//! ```

mod child;
mod pipe;

pub use child::Child;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};

use std::ffi::OsStr;
use std::io;
use std::path::Path;

/// What to run and how, as std's `Command`; `spawn` gives a [`Child`]
/// whose pipes and exit are served by the worker's driver.
#[derive(Debug)]
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    stdio_set: [bool; 3],
}

impl Command {
    /// Runs `program` (looked up in `PATH` if it has no slash).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            std: std::process::Command::new(program),
            kill_on_drop: false,
            stdio_set: [false; 3],
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts from an empty environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin (`Stdio::piped()` gives [`Child::stdin`]).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self.stdio_set[0] = true;
        self
    }

    /// The child's stdout (`Stdio::piped()` gives [`Child::stdout`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self.stdio_set[1] = true;
        self
    }

    /// The child's stderr (`Stdio::piped()` gives [`Child::stderr`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self.stdio_set[2] = true;
        self
    }

    /// Kill the child (SIGKILL) when its [`Child`] is dropped before it
    /// was awaited (off by default, as std and tokio).
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Command {
        self.kill_on_drop = on;
        self
    }

    /// The std command underneath (for what this builder does not
    /// mirror: `pre_exec`, `uid`, `process_group`, …).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// Starts the child. Stdio not set is inherited. Outside a Sprint
    /// runtime this fails before anything is started.
    pub fn spawn(&mut self) -> io::Result<Child> {
        crate::driver::current()?;
        Child::new(self.std.spawn()?, self.kill_on_drop)
    }

    /// Runs the child to its exit (stdio not set is inherited).
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait().await
    }

    /// Runs the child with its output captured: stdout and stderr are
    /// piped and stdin is null unless set otherwise (as std's `output`).
    pub async fn output(&mut self) -> io::Result<Output> {
        if !self.stdio_set[0] {
            self.std.stdin(Stdio::null());
        }
        if !self.stdio_set[1] {
            self.std.stdout(Stdio::piped());
        }
        if !self.stdio_set[2] {
            self.std.stderr(Stdio::piped());
        }
        self.spawn()?.wait_with_output().await
    }
}

/// Waits on the blocking pool until child `pid` has exited, without
/// reaping it (`waitid` with `WNOWAIT`): the fallback where there is no
/// pidfd.
async fn blocking_wait(pid: libc::id_t) -> io::Result<()> {
    let job = sprint_core::spawn_blocking(move || loop {
        // SAFETY: a zeroed siginfo_t is valid for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits on our own child; `info` is writable.
        let r = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    });
    job.await.map_err(|e| {
        io::Error::other(format!("the child's wait on the blocking pool failed: {e}"))
    })?
}
