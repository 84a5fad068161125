//! Graceful shutdown of a server's connections: stop accepting, ask every
//! open connection to finish (hyper's `graceful_shutdown`: an HTTP/1
//! connection completes the request in flight and closes instead of
//! waiting for the next; an HTTP/2 one sends GOAWAY), wait up to a
//! deadline, then drop what is still open.
//!
//! The shape: the accept loop runs [`until`] a stop future (a signal, a
//! shutdown token) completes; each connection is served through
//! [`GracefulShutdown::watch`], which counts it and relays the request to
//! finish; after the loop, [`GracefulShutdown::shutdown`] asks, waits and
//! cuts. The connections run in tasks of their own, on any worker: a
//! watched connection notices the request (and the cut) when its task is
//! woken, which `shutdown` does.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// A connection that can be asked to finish what it is doing and close.
pub trait GracefulConnection: Future {
    /// Starts the graceful close; the connection's future then completes
    /// once the requests in flight are answered.
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self)
    }
}

impl<I, S, B> GracefulConnection for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(self)
    }
}

/// The connections' registry and the phase of the shutdown. Shared by the
/// server and every watched connection; any worker may hold a part.
#[derive(Debug, Default)]
struct State {
    phase: Phase,
    /// Each open watched connection's task, woken when the phase moves.
    open: HashMap<u64, Option<Waker>>,
    next_id: u64,
    /// `shutdown`'s task, woken when the last connection leaves.
    drained: Option<Waker>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Serving,
    /// Every connection is asked to finish.
    Draining,
    /// The deadline passed: what is still open is dropped.
    Cut,
}

/// Tracks a server's connections and shuts them down gracefully: see the
/// module notes and [`sprint::compat`](crate::compat) for the accept loop.
/// Clones share the registry.
#[derive(Debug, Clone, Default)]
pub struct GracefulShutdown {
    state: Arc<Mutex<State>>,
}

/// The drain deadline passed with connections still open; they were
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{open} connection(s) still open when the drain deadline of {deadline:?} passed; dropped")]
pub struct DrainTimeout {
    /// How many connections were dropped.
    pub open: usize,
    /// The deadline given to [`GracefulShutdown::shutdown`].
    pub deadline: Duration,
}

/// What a [`Watched`] connection returns when the drain deadline passed
/// before it finished: the connection was dropped unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection was dropped: it was still open when the drain deadline passed")]
pub struct Cut;

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves the registry consistent (each
    // critical section is a few plain assignments), so go on.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl GracefulShutdown {
    /// An empty registry, serving.
    pub fn new() -> GracefulShutdown {
        GracefulShutdown::default()
    }

    /// Serves `conn` under this registry: asked to shut down gracefully
    /// when [`shutdown`](Self::shutdown) starts (at once if it has
    /// started), dropped with [`Cut`] if still open at the deadline.
    pub fn watch<C: GracefulConnection>(&self, conn: C) -> Watched<C, fn(Pin<&mut C>)> {
        self.watch_with(conn, C::graceful_shutdown)
    }

    /// [`watch`](Self::watch) for a connection type that is no
    /// [`GracefulConnection`] (hyper's HTTP/2 connection, hyper-util's
    /// `auto` one): `ask` starts its graceful close.
    pub fn watch_with<C, F>(&self, conn: C, ask: F) -> Watched<C, F>
    where
        C: Future,
        F: FnMut(Pin<&mut C>),
    {
        let mut s = lock(&self.state);
        let id = s.next_id;
        s.next_id += 1;
        s.open.insert(id, None);
        Watched {
            state: self.state.clone(),
            id,
            conn,
            ask,
            asked: false,
            done: false,
        }
    }

    /// How many watched connections are open.
    pub fn open(&self) -> usize {
        lock(&self.state).open.len()
    }

    /// Asks every open connection (and every one watched from now on) to
    /// finish, and waits until all have, for up to `deadline`. Past it,
    /// the ones still open are dropped (their [`Watched`] returns [`Cut`]
    /// on its task's next poll, which this waits for) and this returns
    /// how many.
    pub async fn shutdown(&self, deadline: Duration) -> Result<(), DrainTimeout> {
        self.move_to(Phase::Draining);
        let mut timer = std::pin::pin!(crate::time::sleep(deadline));
        let drained = std::future::poll_fn(|cx| {
            if self.poll_drained(cx).is_ready() {
                return Poll::Ready(true);
            }
            timer.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if drained {
            return Ok(());
        }
        let open = self.move_to(Phase::Cut);
        std::future::poll_fn(|cx| self.poll_drained(cx)).await;
        Err(DrainTimeout { open, deadline })
    }

    /// Moves to `phase` and wakes every connection's task to act on it;
    /// returns how many were open.
    fn move_to(&self, phase: Phase) -> usize {
        let wakers: Vec<Waker> = {
            let mut s = lock(&self.state);
            s.phase = phase;
            s.open.values_mut().filter_map(Option::take).collect()
        };
        let open = wakers.len();
        wakers.into_iter().for_each(Waker::wake);
        open
    }

    fn poll_drained(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(&self.state);
        if s.open.is_empty() {
            return Poll::Ready(());
        }
        s.drained = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The future of [`GracefulShutdown::watch`]: the connection's own output,
/// or [`Cut`] when it was dropped at the drain deadline.
#[must_use = "futures do nothing unless awaited"]
pub struct Watched<C, F> {
    state: Arc<Mutex<State>>,
    id: u64,
    conn: C,
    ask: F,
    asked: bool,
    done: bool,
}

impl<C, F> fmt::Debug for Watched<C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watched")
            .field("id", &self.id)
            .field("asked", &self.asked)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<C, F> Watched<C, F> {
    /// Leaves the registry (once), waking `shutdown` if it was the last.
    fn leave(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let waker = {
            let mut s = lock(&self.state);
            s.open.remove(&self.id);
            if s.open.is_empty() {
                s.drained.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<C: Future, F: FnMut(Pin<&mut C>)> Future for Watched<C, F> {
    type Output = Result<C::Output, Cut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `conn` is pinned structurally: it is never moved out of
        // `self` (not here, not in `Drop`), and `Watched` is `Unpin` only
        // when `C` and `F` are. The other fields are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        assert!(
            !this.done,
            "a Watched connection was polled after it completed"
        );
        let phase = {
            let mut s = lock(&this.state);
            if let Some(slot) = s.open.get_mut(&this.id) {
                match slot {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
            }
            s.phase
        };
        if phase == Phase::Cut {
            this.leave();
            return Poll::Ready(Err(Cut));
        }
        // SAFETY: see above; `conn` stays where it is until `self` drops.
        let mut conn = unsafe { Pin::new_unchecked(&mut this.conn) };
        if phase == Phase::Draining && !this.asked {
            this.asked = true;
            (this.ask)(conn.as_mut());
        }
        let out = std::task::ready!(conn.poll(cx));
        this.leave();
        Poll::Ready(Ok(out))
    }
}

impl<C, F> Drop for Watched<C, F> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Polls `future` until `stop` completes: `Some` of its output if it
/// completes first, `None` once `stop` has. For an accept loop that ends
/// on a signal: `while let Some(accepted) = until(stop.as_mut(),
/// listener.accept()).await { … }` (a completed `stop` ends every later
/// call at once, as long as it may be polled again, as a signal or a
/// shutdown token may).
pub async fn until<S, F>(mut stop: Pin<&mut S>, future: F) -> Option<F::Output>
where
    S: Future,
    F: Future,
{
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        if stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        future.as_mut().poll(cx).map(Some)
    })
    .await
}
