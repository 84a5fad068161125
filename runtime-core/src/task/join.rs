//! JoinHandle: await a task's output, abort it, ask whether it finished.

use super::harness;
use super::raw::TaskRef;
use super::state::{COMPLETE, JOIN_WAKER};
use super::TaskId;
use crate::coop;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// An owned permission to await a task's output (`Result<T, JoinError>`).
/// Dropping it detaches the task, which keeps running.
pub struct JoinHandle<T> {
    raw: Option<TaskRef>,
    _output: PhantomData<T>,
}

// SAFETY: the handle only moves the output (T) across threads, and aborts
// through the atomic state word; a `!Send` future never leaves its worker.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the state word or aborts.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(raw: TaskRef) -> JoinHandle<T> {
        JoinHandle {
            raw: Some(raw),
            _output: PhantomData,
        }
    }

    fn task(&self) -> TaskRef {
        self.raw
            .unwrap_or_else(|| unreachable!("JoinHandle used after drop"))
    }

    /// Cancels the task: its future is dropped on its own worker at the next
    /// chance, and awaiting the handle gives [`JoinError::is_cancelled`]. A
    /// task that already finished keeps its output.
    pub fn abort(&self) {
        harness::abort(self.task());
    }

    /// True once the task has finished, by completing, panicking or being
    /// cancelled.
    pub fn is_finished(&self) -> bool {
        harness::is_complete(self.task())
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.task().header().meta.id
    }

    /// A handle that can abort the task without owning its output.
    pub fn abort_handle(&self) -> AbortHandle {
        let task = self.task();
        task.header().state.ref_inc();
        AbortHandle { raw: task }
    }

    /// Registers `waker` and reports whether the output can be read.
    fn can_read_output(&self, waker: &Waker) -> bool {
        let task = self.task();
        let header = task.header();
        let snap = header.state.load();
        if snap.has(COMPLETE) {
            return true;
        }
        let slot = header.join_waker.get();
        if snap.has(JOIN_WAKER) {
            // SAFETY: JOIN_WAKER is set, so the task side may only read the
            // slot; reading it here too is a shared access.
            if let Some(w) = unsafe { &*slot } {
                if w.will_wake(waker) {
                    return false;
                }
            }
            if header.state.unset_join_waker().is_err() {
                return true;
            }
        }
        // SAFETY: JOIN_WAKER is clear, so the slot is the handle's alone.
        unsafe { *slot = Some(waker.clone()) };
        header.state.set_join_waker().is_err()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = std::task::ready!(coop::poll_proceed(cx));
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        if self.can_read_output(cx.waker()) {
            let task = self.task();
            // SAFETY: the task is complete and JOIN_INTEREST is ours, so the
            // output is ours to take; `out` has the type the vtable writes.
            unsafe {
                (task.header().vtable.read_output)(task.raw(), &mut out as *mut _ as *mut ())
            };
            coop.made_progress();
        }
        out
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let Some(task) = self.raw.take() else { return };
        let header = task.header();
        if header.state.load().has(COMPLETE) {
            // SAFETY: complete while we hold JOIN_INTEREST: the output is
            // ours to drop, and nobody else touches the stage.
            unsafe { (header.vtable.drop_stage)(task.raw()) };
            if header.state.drop_join_interest_and_ref() {
                // SAFETY: that was the last reference.
                unsafe { (header.vtable.dealloc)(task.raw()) };
            }
            return;
        }
        if header.state.unset_join_interest() {
            // SAFETY: the task completed while we still held JOIN_INTEREST.
            unsafe { (header.vtable.drop_stage)(task.raw()) };
        }
        harness::drop_reference(task);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Aborts a task without owning its output.
pub struct AbortHandle {
    raw: TaskRef,
}

impl AbortHandle {
    /// See [`JoinHandle::abort`].
    pub fn abort(&self) {
        harness::abort(self.raw);
    }

    /// See [`JoinHandle::is_finished`].
    pub fn is_finished(&self) -> bool {
        harness::is_complete(self.raw)
    }
}

impl Drop for AbortHandle {
    fn drop(&mut self) {
        harness::drop_reference(self.raw);
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.raw.header().meta.id)
            .finish()
    }
}

/// Why a task gave no output.
pub struct JoinError {
    id: TaskId,
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    pub(crate) fn cancelled(id: TaskId) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(id: TaskId, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic(payload),
        }
    }

    /// The task was aborted, or the runtime shut down before it finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The id of the task that failed.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The panic payload, to resume it with `std::panic::resume_unwind`.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(p) => p
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str())),
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "task {} was cancelled", self.id),
            Repr::Panic(_) => match self.panic_message() {
                Some(m) => write!(f, "task {} panicked with message {m:?}", self.id),
                None => write!(f, "task {} panicked", self.id),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for JoinError {}
