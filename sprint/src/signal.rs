//! Unix signals as futures: `ctrl_c().await`, `recv(SignalKind::hangup())`,
//! or a [`Signal`] to receive one kind again and again.
//!
//! ```no_run
//! #[sprint::main]
//! async fn main() {
//!     let mut hangups = sprint::signal::signal(sprint::signal::SignalKind::hangup()).unwrap();
//!     sprint::spawn(async move {
//!         while hangups.recv().await.is_some() {
//!             println!("reloading");
//!         }
//!     });
//!     sprint::signal::ctrl_c().await.unwrap();
//!     println!("bye");
//! }
//! ```
//!
//! How: one process-wide thread (`sprint-signals`), started on first use,
//! reads signal-hook's self-pipe and fires one broadcast event per signal
//! number; every future waiting for that signal, on any worker or thread,
//! wakes. The handler itself only writes a byte to the pipe (async-signal
//! safe). signal-hook rather than signalfd: signalfd needs the signal
//! blocked in every thread of the process, which a library that starts
//! late cannot promise (threads started before it, and children, which
//! inherit the mask); the self-pipe needs nothing of the rest of the
//! program and chains to handlers installed before it. It is what
//! `#[sprint::main]` already used for SIGINT and SIGTERM.
//!
//! As in tokio, once a signal kind has been asked for, its handler stays
//! for the life of the process: that signal no longer has its default
//! action (SIGINT no longer ends a program that does not act on it).
//! Deliveries while nobody waits are remembered by count only: a future
//! made before a signal arrives completes; one made after waits for the
//! next. Several deliveries before a wake are seen as one.

use crate::event::{Event, Waiter};
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

/// The highest signal number Sprint can wait for.
const MAX_SIGNAL: i32 = 64;

/// A kind of signal, named as in tokio (`SignalKind::interrupt()` is
/// SIGINT), or any number with [`SignalKind::from_raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// Any signal number (checked when waited for).
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }
    /// The signal number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }
    /// SIGINT: Ctrl-C at a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }
    /// SIGTERM: the polite request to stop (systemd, `kill`, Kubernetes).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }
    /// SIGHUP: the terminal went away; daemons read it as "reload".
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }
    /// SIGQUIT: Ctrl-\ at a terminal.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }
    /// SIGUSR1.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }
    /// SIGUSR2.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }
    /// SIGCHLD: a child process changed state.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }
    /// SIGWINCH: the terminal changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
    /// SIGPIPE: a write to a pipe or socket nobody reads.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }
    /// SIGALRM.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }
}

impl From<i32> for SignalKind {
    fn from(signum: i32) -> SignalKind {
        SignalKind(signum)
    }
}

/// Why a signal cannot be waited for.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SignalError {
    /// Not a signal a handler may be installed for: out of range, or one
    /// of those signal-hook forbids (SIGKILL, SIGSTOP, SIGILL, SIGFPE,
    /// SIGSEGV), which a process cannot or must not catch.
    #[error("signal {signum} cannot be waited for: {why}")]
    Refused {
        /// The signal number.
        signum: i32,
        /// Why.
        why: String,
    },
    /// The signal thread or its pipe could not be set up.
    #[error("cannot set up signal handling: {0}")]
    Setup(String),
}

struct Registry {
    handle: signal_hook::iterator::Handle,
}

static EVENTS: [Event; MAX_SIGNAL as usize + 1] = [const { Event::new() }; MAX_SIGNAL as usize + 1];
static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();

fn registry() -> Result<&'static Registry, SignalError> {
    REGISTRY
        .get_or_init(|| {
            let mut signals = signal_hook::iterator::Signals::new(std::iter::empty::<i32>())
                .map_err(|e| format!("the self-pipe: {e}"))?;
            let handle = signals.handle();
            std::thread::Builder::new()
                .name("sprint-signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        if let Some(e) = usize::try_from(sig).ok().and_then(|i| EVENTS.get(i)) {
                            e.fire();
                        }
                    }
                })
                .map_err(|e| format!("the sprint-signals thread: {e}"))?;
            Ok(Registry { handle })
        })
        .as_ref()
        .map_err(|e| SignalError::Setup(e.clone()))
}

/// Installs the handler for `kind` (once per process) and returns its
/// event.
fn listen(kind: SignalKind) -> Result<&'static Event, SignalError> {
    let signum = kind.0;
    let refused = |why: String| SignalError::Refused { signum, why };
    if !(1..=MAX_SIGNAL).contains(&signum) {
        return Err(refused(format!(
            "signal numbers run from 1 to {MAX_SIGNAL}"
        )));
    }
    if signal_hook::consts::FORBIDDEN.contains(&signum) {
        return Err(refused(
            "the process cannot or must not catch it (signal-hook's FORBIDDEN list)".into(),
        ));
    }
    registry()?
        .handle
        .add_signal(signum)
        .map_err(|e| refused(e.to_string()))?;
    if signum == libc::SIGINT || signum == libc::SIGTERM {
        // The program acts on the stop signals itself: let
        // `#[sprint::main]` give it the draining phase.
        crate::shutdown::mark_watched();
    }
    Ok(&EVENTS[signum as usize])
}

/// Waits for the next `kind` signal after this call. The handler is
/// installed by the call itself, so a signal that arrives before the
/// first poll still completes the future.
///
/// ```no_run
/// # #[sprint::main] async fn main() {
/// use sprint::signal::{recv, SignalKind};
/// recv(SignalKind::terminate()).await.expect("SIGTERM can be caught");
/// # }
/// ```
pub fn recv(kind: SignalKind) -> Recv {
    Recv(listen(kind).map(|e| e.waiter(e.count())).map_err(Some))
}

/// Waits for the next SIGINT (Ctrl-C): `recv(SignalKind::interrupt())`.
pub fn ctrl_c() -> Recv {
    recv(SignalKind::interrupt())
}

/// The future of [`recv`] and [`ctrl_c`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Recv(Result<Waiter, Option<SignalError>>);

impl Future for Recv {
    type Output = Result<(), SignalError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Ok(w) => w.poll_count(cx).map(|_| Ok(())),
            Err(e) => Poll::Ready(Err(e.take().unwrap_or_else(|| {
                SignalError::Setup("the future was polled after it completed".into())
            }))),
        }
    }
}

/// Receives one kind of signal again and again (tokio's `Signal`).
#[derive(Debug)]
pub struct Signal {
    waiter: Waiter,
}

/// Starts listening for `kind`: signals that arrive from now on are seen
/// by [`Signal::recv`].
pub fn signal(kind: SignalKind) -> Result<Signal, SignalError> {
    let e = listen(kind)?;
    Ok(Signal {
        waiter: e.waiter(e.count()),
    })
}

impl Signal {
    /// Waits for the next signal not yet received through this `Signal`
    /// (several that arrived in between count as one). Never `None` (the
    /// handler is never removed); the `Option` is tokio's shape, for
    /// `while let Some(()) = sig.recv().await`.
    pub async fn recv(&mut self) -> Option<()> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next signal (for hand-written futures and streams).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let n = std::task::ready!(self.waiter.poll_count(cx));
        self.waiter.rearm(n);
        Poll::Ready(Some(()))
    }
}
