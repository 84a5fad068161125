//! A worker's two ports on the mesh: its [`Sender`], the producer of
//! every ring leaving the worker, and its [`Receiver`], the consumer of
//! every ring arriving at it.
//!
//! Both are `!Send` and taken once per worker on that worker's thread, so
//! each ring has exactly one producer thread and one consumer thread: the
//! contract of `ring.rs`'s unsafe methods, kept by the types. A port acts
//! through `&self` and its methods never run user code while they touch a
//! ring, so no two calls on one ring overlap on that thread either. What a
//! port did in a turn it publishes at the end of the turn (`local.rs`).

use super::local::{TurnEnd, WaitSlot};
use super::{Inner, MeshError, DROPPED};
use crate::sched::with_core;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// A refused send: why, and the message, given back.
pub struct SendError<T> {
    /// Why it was refused.
    pub error: MeshError,
    /// The message that was not sent.
    pub message: T,
}

impl<T> std::fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<T> std::error::Error for SendError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Why [`Receiver::try_recv`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing published yet; more may come.
    #[error("no message waiting for this worker")]
    Empty,
    /// Nothing waiting, and nothing more will come (every sender gone, or
    /// the mesh closed).
    #[error("the mesh is finished: no message waiting and no sender left")]
    Finished,
}

/// Registers `waker` with this thread's worker; false if this thread's
/// worker is gone (the runtime shut down).
fn wait_here(rt: u64, waker: &Waker, slot: &WaitSlot) -> bool {
    with_core(|c| match c {
        Some(c) if c.shared.runtime_id == rt => {
            c.mesh.wait(waker, slot);
            true
        }
        _ => false,
    })
}

/// Asks this thread's worker to let `port` publish at the end of the turn;
/// publishes at once if the worker is gone.
fn defer_here(rt: u64, port: Rc<dyn TurnEnd>) {
    let deferred = with_core(|c| match c {
        Some(c) if c.shared.runtime_id == rt => {
            c.mesh.defer(port.clone());
            true
        }
        _ => false,
    });
    if !deferred {
        port.turn_end();
    }
}

/// A worker's sending port: the producer of the rings from this worker to
/// every worker (itself included). Clones share the port.
pub struct Sender<T: Send + 'static> {
    port: Rc<SenderPort<T>>,
}

struct SenderPort<T: Send + 'static> {
    mesh: Arc<Inner<T>>,
    worker: usize,
    /// Whether the worker holds this port for the end of the turn.
    deferred: Cell<bool>,
    /// Rings written this turn, and a mark per ring to list each once.
    written: RefCell<Vec<usize>>,
    marked: Box<[Cell<bool>]>,
}

impl<T: Send + 'static> Sender<T> {
    pub(super) fn new(mesh: Arc<Inner<T>>, worker: usize) -> Sender<T> {
        let n = mesh.workers;
        Sender {
            port: Rc::new(SenderPort {
                mesh,
                worker,
                deferred: Cell::new(false),
                written: RefCell::new(Vec::with_capacity(n)),
                marked: (0..n).map(|_| Cell::new(false)).collect(),
            }),
        }
    }

    /// The worker this port sends from.
    pub fn worker(&self) -> usize {
        self.port.worker
    }

    /// Queues `message` for `worker`'s receiver, to be published at the end
    /// of this worker's turn; refused when that ring is full, the worker
    /// does not exist, or its receiver is gone.
    pub fn try_send_to(&self, worker: usize, message: T) -> Result<(), SendError<T>> {
        self.port.try_push(worker, message)
    }

    /// Like [`try_send_to`](Self::try_send_to), but waits for room when
    /// the ring is full.
    pub fn send_to(&self, worker: usize, message: T) -> SendTo<'_, T> {
        SendTo {
            port: &self.port,
            worker,
            message: Some(message),
            slot: WaitSlot::default(),
        }
    }

    /// [`send_to`](Self::send_to) for futures that cannot borrow the
    /// sender across polls (the mesh's `Sharded`).
    pub(crate) fn poll_send_to(
        &self,
        worker: usize,
        message: &mut Option<T>,
        slot: &WaitSlot,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        self.port.poll_send(worker, message, slot, cx)
    }

    /// Publishes what this port queued now, instead of at the end of the
    /// turn (for a message whose latency matters more than batching).
    pub fn flush(&self) {
        self.port.publish_written();
    }
}

impl<T: Send + 'static> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            port: self.port.clone(),
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("worker", &self.port.worker)
            .finish()
    }
}

impl<T: Send + 'static> SenderPort<T> {
    fn try_push(self: &Rc<Self>, to: usize, message: T) -> Result<(), SendError<T>> {
        let mesh = &*self.mesh;
        if to >= mesh.workers {
            let error = MeshError::NoSuchWorker {
                worker: to,
                workers: mesh.workers,
            };
            return Err(SendError { error, message });
        }
        if mesh.refuses(to) {
            let error = MeshError::Closed { worker: to };
            return Err(SendError { error, message });
        }
        let ring = mesh.ring(self.worker, to);
        // SAFETY: this port is the one producer of ring `worker → to` (one
        // `!Send` sender per worker, taken on its thread), and this call
        // does not overlap another on that ring (no user code runs inside).
        match unsafe { ring.push(message) } {
            Ok(()) => {
                self.mark(to);
                Ok(())
            }
            Err(message) => {
                let error = MeshError::Full {
                    worker: to,
                    capacity: ring.capacity(),
                };
                Err(SendError { error, message })
            }
        }
    }

    /// Remembers that ring `worker → to` has something to publish.
    fn mark(self: &Rc<Self>, to: usize) {
        if !self.marked[to].replace(true) {
            self.written.borrow_mut().push(to);
        }
        if !self.deferred.replace(true) {
            defer_here(self.mesh.rt.id, self.clone());
        }
    }

    /// Publishes ring `worker → to`, and rings `to`'s bell if its receiver
    /// waits.
    fn publish(&self, to: usize) {
        // SAFETY: the producer's contract, as in `try_push`.
        let new = unsafe { self.mesh.ring(self.worker, to).publish() };
        if new && self.mesh.data_wanted[to].take() {
            self.mesh.ring_bell(to);
        }
    }

    /// Sends `message` (taken from the option; put back while pending),
    /// waiting for room.
    fn poll_send(
        self: &Rc<Self>,
        to: usize,
        message: &mut Option<T>,
        slot: &WaitSlot,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let msg = message.take().expect("a send polled after it completed");
        let msg = match self.try_push(to, msg) {
            Err(SendError {
                error: MeshError::Full { .. },
                message,
            }) => message,
            done => return Poll::Ready(done),
        };
        // The ring may be full of this port's own unpublished messages:
        // the receiver can make room only once they are published.
        self.publish(to);
        if !wait_here(self.mesh.rt.id, cx.waker(), slot) {
            let error = MeshError::Closed { worker: to };
            return Poll::Ready(Err(SendError {
                error,
                message: msg,
            }));
        }
        self.mesh.room_wanted(self.worker, to).arm();
        match self.try_push(to, msg) {
            Err(SendError {
                error: MeshError::Full { .. },
                message: msg,
            }) => {
                *message = Some(msg);
                Poll::Pending
            }
            done => Poll::Ready(done),
        }
    }

    fn publish_written(&self) {
        loop {
            let Some(to) = self.written.borrow_mut().pop() else {
                break;
            };
            self.marked[to].set(false);
            self.publish(to);
        }
    }
}

impl<T: Send + 'static> TurnEnd for SenderPort<T> {
    fn turn_end(&self) {
        self.deferred.set(false);
        self.publish_written();
    }
}

impl<T: Send + 'static> Drop for SenderPort<T> {
    fn drop(&mut self) {
        // The last handle is gone, and the worker's end-of-turn list no
        // longer holds the port: publish, then say no more will come.
        self.publish_written();
        self.mesh.senders[self.worker].store(DROPPED, Release);
        self.mesh.wake_receivers();
    }
}

/// The future of [`Sender::send_to`]: done when the message is in the
/// ring (published at the end of the turn), or refused.
#[must_use = "futures do nothing unless awaited"]
pub struct SendTo<'a, T: Send + 'static> {
    port: &'a Rc<SenderPort<T>>,
    worker: usize,
    message: Option<T>,
    slot: WaitSlot,
}

// The message is moved in and out, never pinned.
impl<T: Send + 'static> Unpin for SendTo<'_, T> {}

impl<T: Send + 'static> Future for SendTo<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.port
            .poll_send(this.worker, &mut this.message, &this.slot, cx)
    }
}

impl<T: Send + 'static> std::fmt::Debug for SendTo<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendTo")
            .field("from", &self.port.worker)
            .field("to", &self.worker)
            .finish()
    }
}

/// Fairness: a receiver takes at most this many messages in a row from
/// one ring before it looks at the next.
const BURST: u32 = 32;

/// A worker's receiving port: the consumer of the rings from every worker
/// to this one. Also a [`Stream`](futures_util::Stream).
pub struct Receiver<T: Send + 'static> {
    port: Rc<ReceiverPort<T>>,
    /// The stream's registration with the worker.
    slot: WaitSlot,
}

struct ReceiverPort<T: Send + 'static> {
    mesh: Arc<Inner<T>>,
    worker: usize,
    /// The ring to look at first, and how many came from it in a row.
    next: Cell<(usize, u32)>,
    deferred: Cell<bool>,
    /// Rings taken from this turn, and a mark per ring to list each once.
    taken: RefCell<Vec<usize>>,
    marked: Box<[Cell<bool>]>,
}

impl<T: Send + 'static> Receiver<T> {
    pub(super) fn new(mesh: Arc<Inner<T>>, worker: usize) -> Receiver<T> {
        let n = mesh.workers;
        Receiver {
            port: Rc::new(ReceiverPort {
                mesh,
                worker,
                next: Cell::new((0, 0)),
                deferred: Cell::new(false),
                taken: RefCell::new(Vec::with_capacity(n)),
                marked: (0..n).map(|_| Cell::new(false)).collect(),
            }),
            slot: WaitSlot::default(),
        }
    }

    /// The worker this port receives on.
    pub fn worker(&self) -> usize {
        self.port.worker
    }

    /// The next message, from any worker; `None` once the mesh is
    /// finished (see the module documentation) and drained.
    pub fn recv(&self) -> Recv<'_, T> {
        Recv {
            port: &self.port,
            slot: WaitSlot::default(),
        }
    }

    /// A published message, if one waits.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(v) = self.port.pop_any() {
            return Ok(v);
        }
        if self.port.mesh.finished() {
            return self.port.pop_any().ok_or(TryRecvError::Finished);
        }
        Err(TryRecvError::Empty)
    }
}

impl<T: Send + 'static> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("worker", &self.port.worker)
            .finish()
    }
}

impl<T: Send + 'static> ReceiverPort<T> {
    /// Takes one published message, ring by ring.
    fn pop_any(self: &Rc<Self>) -> Option<T> {
        let n = self.mesh.workers;
        let (start, run) = self.next.get();
        for k in 0..n {
            let from = (start + k) % n;
            // SAFETY: this port is the one consumer of ring `from →
            // worker` (one `!Send` receiver per worker, taken on its
            // thread), and this call does not overlap another on that ring.
            let Some(v) = (unsafe { self.mesh.ring(from, self.worker).pop() }) else {
                continue;
            };
            let run = if k == 0 { run + 1 } else { 1 };
            self.next.set(if run >= BURST {
                ((from + 1) % n, 0)
            } else {
                (from, run)
            });
            if !self.marked[from].replace(true) {
                self.taken.borrow_mut().push(from);
            }
            if !self.deferred.replace(true) {
                defer_here(self.mesh.rt.id, self.clone());
            }
            return Some(v);
        }
        None
    }

    fn poll_recv(self: &Rc<Self>, cx: &mut Context<'_>, slot: &WaitSlot) -> Poll<Option<T>> {
        if let Some(v) = self.pop_any() {
            return Poll::Ready(Some(v));
        }
        if self.mesh.finished() {
            return Poll::Ready(self.pop_any());
        }
        if !wait_here(self.mesh.rt.id, cx.waker(), slot) {
            return Poll::Ready(None);
        }
        self.mesh.data_wanted[self.worker].arm();
        if let Some(v) = self.pop_any() {
            return Poll::Ready(Some(v));
        }
        if self.mesh.finished() {
            return Poll::Ready(self.pop_any());
        }
        Poll::Pending
    }

    /// Wakes the senders that wait for room on the rings taken from.
    fn release_taken(&self) {
        loop {
            let Some(from) = self.taken.borrow_mut().pop() else {
                break;
            };
            self.marked[from].set(false);
            if self.mesh.room_wanted(from, self.worker).take() {
                self.mesh.ring_bell(from);
            }
        }
    }
}

impl<T: Send + 'static> TurnEnd for ReceiverPort<T> {
    fn turn_end(&self) {
        self.deferred.set(false);
        self.release_taken();
    }
}

impl<T: Send + 'static> Drop for ReceiverPort<T> {
    fn drop(&mut self) {
        let mesh = &*self.mesh;
        mesh.receivers[self.worker].store(DROPPED, Release);
        mesh.data_wanted[self.worker].take();
        // Senders waiting for room look again and find the port gone.
        for from in 0..mesh.workers {
            if mesh.room_wanted(from, self.worker).take() {
                mesh.ring_bell(from);
            }
        }
        // Drop what was published here, on this worker; what comes later
        // is dropped with the rings.
        for from in 0..mesh.workers {
            // SAFETY: the consumer's contract, as in `pop_any`.
            while let Some(v) = unsafe { mesh.ring(from, self.worker).pop() } {
                drop(v);
            }
        }
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T: Send + 'static> {
    port: &'a Rc<ReceiverPort<T>>,
    slot: WaitSlot,
}

impl<T: Send + 'static> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.port.poll_recv(cx, &self.slot)
    }
}

impl<T: Send + 'static> std::fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recv")
            .field("worker", &self.port.worker)
            .finish()
    }
}

impl<T: Send + 'static> futures_util::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.port.poll_recv(cx, &self.slot)
    }
}
