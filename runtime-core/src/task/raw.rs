//! The task cell: one allocation holding the header, the future and,
//! later, its output. The header is type-erased; a vtable reaches the rest.

use super::cache;
use super::join::JoinError;
use super::list::Links;
use super::state::State;
use super::TaskMeta;
use crate::sched::worker::{Core, WorkerShared};
use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Type-specific operations on a task cell.
pub(crate) struct Vtable {
    /// Poll the future (the caller holds RUNNING); on `Ready` the output, or
    /// the panic, is stored in the stage.
    pub(crate) poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Poll<()>,
    /// Drop the future (the caller holds RUNNING), storing `Cancelled`, or
    /// the panic the drop raised.
    pub(crate) drop_future: unsafe fn(NonNull<Header>),
    /// Move the output into `*dst`, a `Poll<Result<T, JoinError>>`.
    pub(crate) read_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drop whatever the stage holds.
    pub(crate) drop_stage: unsafe fn(NonNull<Header>),
    /// Free the cell.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
}

/// The type-erased head of every task cell.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: &'static Vtable,
    /// The worker whose queues and owned list hold the task; null for
    /// tasks of the blocking pool. Kept alive by the worker's count of
    /// outstanding tasks (`WorkerShared::hold`), not by a reference count of
    /// its own, so that a spawn costs no atomic operation on it.
    owner: *const WorkerShared,
    /// The cell's size class (`cache.rs`), or `cache::EXACT`.
    class: u8,
    /// May run on any worker of the runtime (a `Send` task at a stealing
    /// level).
    pub(crate) stealable: bool,
    /// A pinned task's running and queued flags (`L_*`), touched only on
    /// the thread that runs it (see state.rs).
    pub(crate) local: std::cell::Cell<u8>,
    pub(crate) links: UnsafeCell<Links>,
    pub(crate) join_waker: UnsafeCell<Option<Waker>>,
    pub(crate) meta: TaskMeta,
    /// The raw clock reading when the task was queued (for the schedule
    /// delay histogram); 0 when not stamped. Written by whoever queues
    /// the task, read and cleared by the worker that polls it.
    pub(crate) queued_at: std::sync::atomic::AtomicU64,
}

/// A pointer to a live task. It carries no reference count of its own:
/// whoever holds one relies on the invariants in `state.rs`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: the header is only mutated through atomics, or by the one thread
// the state protocol makes its owner; `!Send` futures never leave their
// worker because only their owner moves them to RUNNING.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

/// Pinned task: in its owner's local run queue.
pub(crate) const L_QUEUED: u8 = 1;
/// Pinned task: being polled.
pub(crate) const L_RUNNING: u8 = 2;
/// Pinned task: woken while being polled; queue it again after.
pub(crate) const L_NOTIFIED: u8 = 4;

impl Header {
    /// The owning worker; `None` for blocking-pool tasks.
    pub(crate) fn owner(&self) -> Option<&WorkerShared> {
        // SAFETY: a worker's shared state outlives every task it owns: its
        // outstanding-task count keeps it alive until the last is freed.
        unsafe { self.owner.as_ref() }
    }
}

impl TaskRef {
    pub(crate) fn from_ptr(p: *const Header) -> Option<TaskRef> {
        NonNull::new(p as *mut Header).map(TaskRef)
    }

    pub(crate) fn as_ptr(self) -> *const Header {
        self.0.as_ptr()
    }

    pub(crate) fn raw(self) -> NonNull<Header> {
        self.0
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a TaskRef is only handed out while the task is alive
        // (state.rs: the owned list's reference outlives every queue entry).
        unsafe { self.0.as_ref() }
    }

    /// The cell's address, for a prefetch hint.
    pub(crate) fn header_ptr(&self) -> *const u8 {
        self.0.as_ptr().cast_const().cast()
    }
}

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct Cell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// Where a new cell's memory comes from and who owns the task.
pub(crate) enum Home<'a> {
    /// Spawned on its owner's thread: the cell comes from its cache.
    Local(&'a Core),
    /// Spawned from another thread for `WorkerShared`.
    Remote(&'a WorkerShared),
    /// A blocking-pool task.
    Blocking,
}

/// Allocates a task cell: one allocation at most, none when the worker's
/// cell cache has a cell of the size class.
pub(crate) fn allocate<F>(
    future: F,
    home: Home<'_>,
    stealable: bool,
    link_on_arrival: bool,
    meta: TaskMeta,
) -> TaskRef
where
    F: Future + 'static,
{
    let class = <F as CellClass>::CLASS;
    let layout = Layout::new::<Cell<F>>();
    let (state, local) = match (&home, stealable) {
        (Home::Local(_) | Home::Remote(_), true) => (State::new(), 0),
        (Home::Local(_) | Home::Blocking, false) => (State::new_pinned(), L_QUEUED),
        (Home::Remote(_), false) => (State::new_pinned_remote(), 0),
        (Home::Blocking, true) => unreachable!("blocking tasks are never stealable"),
    };
    let (mem, owner) = match home {
        Home::Local(core) => (core.alloc_cell(class, layout), Arc::as_ptr(&core.shared)),
        Home::Remote(ws) => {
            ws.hold_remote();
            ws.counters
                .spawned_elsewhere
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let from_slab = match ws.slab.get() {
                Some(slab) if class != cache::EXACT => {
                    let p = slab.take_shared(class as usize);
                    if p.is_none() {
                        slab.count_fallback();
                    }
                    p
                }
                Some(slab) => {
                    slab.count_fallback();
                    None
                }
                None => None,
            };
            let mem = from_slab.unwrap_or_else(|| cache::alloc_any(class, layout));
            (mem, ws as *const WorkerShared)
        }
        Home::Blocking => (cache::alloc_any(class, layout), std::ptr::null()),
    };
    let cell = mem.cast::<Cell<F>>();
    // SAFETY: `mem` is fresh memory of at least the cell's size and
    // alignment (its class, or its exact layout).
    unsafe {
        cell.as_ptr().write(Cell {
            header: Header {
                state,
                vtable: vtable::<F>(),
                owner,
                class,
                stealable,
                local: std::cell::Cell::new(local),
                links: UnsafeCell::new(Links::new(link_on_arrival)),
                join_waker: UnsafeCell::new(None),
                meta,
                queued_at: std::sync::atomic::AtomicU64::new(0),
            },
            stage: UnsafeCell::new(Stage::Running(future)),
        })
    };
    TaskRef(cell.cast())
}

trait CellClass {
    const CLASS: u8;
}

/// The size class of `F`'s task cell.
pub(crate) fn cell_class<F: Future>() -> u8 {
    <F as CellClass>::CLASS
}

impl<F: Future> CellClass for F {
    const CLASS: u8 = cache::class_of(Layout::new::<Cell<F>>());
}

fn vtable<F: Future + 'static>() -> &'static Vtable {
    trait HasVtable {
        const VTABLE: Vtable;
    }
    impl<F: Future + 'static> HasVtable for F {
        const VTABLE: Vtable = Vtable {
            poll: poll::<F>,
            drop_future: drop_future::<F>,
            read_output: read_output::<F>,
            drop_stage: drop_stage::<F>,
            dealloc: dealloc::<F>,
        };
    }
    &<F as HasVtable>::VTABLE
}

/// # Safety
/// `ptr` heads a live `Cell<F>` and the caller may touch its stage.
unsafe fn stage<'a, F: Future>(ptr: NonNull<Header>) -> &'a mut Stage<F> {
    // SAFETY: the header is the first field of the repr(C) cell, and the
    // caller holds the exclusive right to the stage (RUNNING, or COMPLETE
    // with the output's ownership).
    unsafe { &mut *(*ptr.cast::<Cell<F>>().as_ptr()).stage.get() }
}

fn panic_error(ptr: NonNull<Header>, payload: Box<dyn Any + Send>) -> JoinError {
    // SAFETY: the header is alive for as long as the caller runs.
    let meta = unsafe { &ptr.as_ref().meta };
    JoinError::panic(meta.id, payload)
}

unsafe fn poll<F: Future>(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()> {
    // SAFETY: the caller holds RUNNING.
    let stage = unsafe { stage::<F>(ptr) };
    let Stage::Running(fut) = stage else {
        unreachable!("a task is polled only while its future is alive");
    };
    // SAFETY: the future lives in a heap cell that never moves.
    let fut = unsafe { Pin::new_unchecked(fut) };
    let res = panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
    let out = match res {
        Ok(Poll::Pending) => return Poll::Pending,
        Ok(Poll::Ready(v)) => Ok(v),
        Err(payload) => Err(panic_error(ptr, payload)),
    };
    // Dropping the finished future may itself panic: keep the first result
    // unless that happens.
    let dropped = panic::catch_unwind(AssertUnwindSafe(|| *stage = Stage::Consumed));
    *stage = match dropped {
        Ok(()) => Stage::Finished(out),
        Err(payload) => Stage::Finished(Err(panic_error(ptr, payload))),
    };
    Poll::Ready(())
}

unsafe fn drop_future<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: the caller holds RUNNING.
    let stage = unsafe { stage::<F>(ptr) };
    let res = panic::catch_unwind(AssertUnwindSafe(|| *stage = Stage::Consumed));
    // SAFETY: the header outlives this call.
    let id = unsafe { ptr.as_ref().meta.id };
    *stage = Stage::Finished(Err(match res {
        Ok(()) => JoinError::cancelled(id),
        Err(payload) => panic_error(ptr, payload),
    }));
}

unsafe fn read_output<F: Future>(ptr: NonNull<Header>, dst: *mut ()) {
    // SAFETY: the caller (the JoinHandle) owns the output of a COMPLETE task.
    let stage = unsafe { stage::<F>(ptr) };
    let out = match std::mem::replace(stage, Stage::Consumed) {
        Stage::Finished(out) => out,
        _ => panic!("JoinHandle polled after it returned its output"),
    };
    // SAFETY: `dst` points to a `Poll<Result<F::Output, JoinError>>`, as
    // JoinHandle<F::Output> passes.
    unsafe { *(dst as *mut Poll<Result<F::Output, JoinError>>) = Poll::Ready(out) };
}

unsafe fn drop_stage<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: the caller owns the stage (see state.rs, JOIN_INTEREST).
    let stage = unsafe { stage::<F>(ptr) };
    let _ = panic::catch_unwind(AssertUnwindSafe(|| *stage = Stage::Consumed));
}

unsafe fn dealloc<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: the last reference is gone, so nothing else reaches the cell.
    let (owner, class) = unsafe { (ptr.as_ref().owner, ptr.as_ref().class) };
    let cell = ptr.cast::<Cell<F>>();
    // SAFETY: the cell was initialised by `allocate` and is dropped once.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
        std::ptr::drop_in_place(cell.as_ptr())
    }));
    // SAFETY: the memory came from `allocate` with this class and layout.
    unsafe { crate::sched::free_cell(cell.cast(), class, Layout::new::<Cell<F>>(), owner) };
}
