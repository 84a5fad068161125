//! The mesh: messages from a task on one worker to a task on another,
//! through a full mesh of bounded single-producer single-consumer rings,
//! one per ordered pair of workers (as Seastar's per-core queues and
//! glommio's channel mesh).
//!
//! Why a ring per pair: with one producer and one consumer a ring needs no
//! lock and no read-modify-write per message, only a store of its counter,
//! and the two workers share nothing else. A shared channel (crossbeam's,
//! tokio's mpsc, the runtime's inbox) makes every producer contend on one
//! tail and every cross-thread wake take a lock.
//!
//! How a message travels (`ring.rs`, `bell.rs`, `local.rs`):
//! 1. `send_to(j, msg)` on worker `i` writes into ring `i → j` and leaves
//!    it unpublished; the sender asks its worker to let it publish at the
//!    end of the turn.
//! 2. At its next maintenance turn (every `event_interval` polls, and
//!    before it sleeps) worker `i` publishes each ring it wrote to: one
//!    release store per ring, however many messages the turn sent.
//! 3. If worker `j`'s receiver was waiting, the publish rings worker `j`'s
//!    bell: a store, and the parker's one swap, which unparks `j` only if
//!    it sleeps. No lock and no system call while `j` is awake.
//! 4. Worker `j` answers its bell in its own maintenance turn, waking the
//!    receiver's task on its own thread; the receiver takes messages ring
//!    by ring, each ring in the order it was written.
//!
//! Backpressure: a full ring refuses [`Sender::try_send_to`] with
//! [`MeshError::Full`]; [`Sender::send_to`] waits for room, woken the same
//! way by the receiver's turn. The ports are `!Send` and there is one of
//! each per worker ([`Mesh::sender`], [`Mesh::receiver`]), so the type
//! system keeps every ring single-producer single-consumer.
//!
//! Ending: a receiver's stream ends once every worker's sender is gone (or
//! can no longer be taken: every [`Mesh`] handle dropped), or at
//! [`Mesh::close`], after what was published. Messages still in a ring
//! when the last port and handle go, at shutdown say, are dropped with it.
//!
//! [`Sharded`] keeps one value per worker and runs closures on a chosen
//! worker's value, over a mesh.

mod bell;
mod local;
mod port;
mod ring;
mod sharded;

pub(crate) use bell::Bell;
pub(crate) use local::WorkerMesh;
pub use port::{Receiver, Recv, SendError, SendTo, Sender, TryRecvError};
pub use sharded::{InvokeOn, Sharded};

use crate::sched::Shared;
use bell::WaitFlag;
use ring::{Padded, Ring};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::Arc;

/// Slots per ring when none is asked for.
pub const DEFAULT_CAPACITY: usize = 256;
/// The largest ring [`Mesh::with_capacity`] makes.
pub const MAX_CAPACITY: usize = 1 << 20;

/// Why a mesh operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// A worker index past the runtime's workers.
    #[error("no worker {worker}: this mesh joins workers 0..{workers}")]
    NoSuchWorker {
        /// The index asked for.
        worker: usize,
        /// How many workers the mesh joins.
        workers: usize,
    },
    /// The ring to `worker` has no free slot.
    #[error("the ring to worker {worker} is full ({capacity} messages waiting)")]
    Full {
        /// The target worker.
        worker: usize,
        /// The ring's capacity.
        capacity: usize,
    },
    /// `worker`'s receiver was dropped (its task ended, or the runtime shut
    /// down), or the mesh was closed.
    #[error("worker {worker}'s receiver is gone, or the mesh was closed")]
    Closed {
        /// The target worker.
        worker: usize,
    },
    /// Ports are taken on a worker of the mesh's runtime.
    #[error(
        "mesh ports are taken by a task on a worker of the mesh's runtime; this thread is not one"
    )]
    NotOnWorker,
    /// Each worker takes one sender and one receiver.
    #[error("worker {worker} already took its mesh {port}")]
    AlreadyTaken {
        /// The worker.
        worker: usize,
        /// `"sender"` or `"receiver"`.
        port: &'static str,
    },
    /// A ring capacity of zero, or past [`MAX_CAPACITY`].
    #[error("ring capacity {capacity} is out of range: 1..={max}")]
    Capacity {
        /// The capacity asked for.
        capacity: usize,
        /// [`MAX_CAPACITY`].
        max: usize,
    },
}

/// A port's life: not taken yet, taken, dropped.
const UNTAKEN: u8 = 0;
const TAKEN: u8 = 1;
const DROPPED: u8 = 2;

/// A full mesh of rings between the workers of one runtime; a cheap,
/// `Send + Sync` handle. See the module documentation.
///
/// ```
/// # let rt = sprint_core::Runtime::new(
/// #     { let mut c = sprint_core::Config::for_level(sprint_core::Level::Basic);
/// #       c.workers = Some(2); c.rt_policy = sprint_core::config::RtPolicy::None; c },
/// #     None).unwrap();
/// use sprint_core::mesh::Mesh;
/// let mesh = Mesh::<u64>::new(rt.handle());
/// let m = mesh.clone();
/// let got = rt.handle().spawn_local_on(1, move || async move {
///     let rx = m.receiver().unwrap();
///     rx.recv().await
/// }).unwrap();
/// rt.handle().spawn_local_on(0, move || async move {
///     let tx = mesh.sender().unwrap();
///     tx.send_to(1, 42).await.unwrap();
/// }).unwrap();
/// assert_eq!(rt.block_on(got).unwrap(), Some(42));
/// ```
pub struct Mesh<T: Send + 'static> {
    inner: Arc<Inner<T>>,
}

pub(crate) struct Inner<T> {
    rt: Arc<Shared>,
    workers: usize,
    /// Ring `i → j` at `i * workers + j`.
    rings: Box<[Ring<T>]>,
    /// Set by a sender waiting for room on the ring of the same index.
    room_wanted: Box<[Padded<WaitFlag>]>,
    /// Set by worker `j`'s receiver waiting for a message.
    data_wanted: Box<[Padded<WaitFlag>]>,
    senders: Box<[AtomicU8]>,
    receivers: Box<[AtomicU8]>,
    /// Live [`Mesh`] handles: with none, no port can be taken any more.
    handles: AtomicUsize,
    closed: AtomicBool,
}

impl<T: Send + 'static> Mesh<T> {
    /// A mesh between every worker of `handle`'s runtime, rings of
    /// [`DEFAULT_CAPACITY`] slots.
    pub fn new(handle: &crate::Handle) -> Mesh<T> {
        Self::make(handle.shared.clone(), DEFAULT_CAPACITY)
    }

    /// A mesh whose rings hold `capacity` messages each (rounded up to a
    /// power of two).
    pub fn with_capacity(handle: &crate::Handle, capacity: usize) -> Result<Mesh<T>, MeshError> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(MeshError::Capacity {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        Ok(Self::make(
            handle.shared.clone(),
            capacity.next_power_of_two(),
        ))
    }

    fn make(rt: Arc<Shared>, capacity: usize) -> Mesh<T> {
        let n = rt.workers.len();
        let flags = |k: usize| (0..k).map(|_| Padded(WaitFlag::new())).collect();
        let states = || (0..n).map(|_| AtomicU8::new(UNTAKEN)).collect();
        Mesh {
            inner: Arc::new(Inner {
                rt,
                workers: n,
                rings: (0..n * n).map(|_| Ring::new(capacity)).collect(),
                room_wanted: flags(n * n),
                data_wanted: flags(n),
                senders: states(),
                receivers: states(),
                handles: AtomicUsize::new(1),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// How many workers the mesh joins (the runtime's).
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Messages each ring holds.
    pub fn capacity(&self) -> usize {
        self.inner.rings[0].capacity()
    }

    /// The current worker's sender (once per worker; on a worker of this
    /// mesh's runtime). Clone it to share it between tasks of the worker.
    pub fn sender(&self) -> Result<Sender<T>, MeshError> {
        let w = self.take(&self.inner.senders, "sender")?;
        Ok(Sender::new(self.inner.clone(), w))
    }

    /// The current worker's receiver (once per worker; on a worker of
    /// this mesh's runtime).
    pub fn receiver(&self) -> Result<Receiver<T>, MeshError> {
        let w = self.take(&self.inner.receivers, "receiver")?;
        Ok(Receiver::new(self.inner.clone(), w))
    }

    /// Both ports of the current worker.
    pub fn join(&self) -> Result<(Sender<T>, Receiver<T>), MeshError> {
        Ok((self.sender()?, self.receiver()?))
    }

    /// Ends every receiver's stream once it has taken what was published,
    /// and refuses later sends with [`MeshError::Closed`].
    pub fn close(&self) {
        self.inner.closed.store(true, Release);
        self.inner.wake_receivers();
    }

    fn take(&self, states: &[AtomicU8], port: &'static str) -> Result<usize, MeshError> {
        let rt = self.inner.rt.id;
        let worker = crate::sched::with_core(|c| {
            c.filter(|c| c.shared.runtime_id == rt)
                .map(|c| c.shared.index)
        })
        .ok_or(MeshError::NotOnWorker)?;
        states[worker]
            .compare_exchange(UNTAKEN, TAKEN, AcqRel, Acquire)
            .map_err(|_| MeshError::AlreadyTaken { worker, port })?;
        Ok(worker)
    }
}

impl<T: Send + 'static> Clone for Mesh<T> {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Relaxed);
        Mesh {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Send + 'static> Drop for Mesh<T> {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, AcqRel) == 1 {
            // Senders never taken now never will be: receivers waiting on
            // them look again.
            self.inner.wake_receivers();
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Mesh<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("workers", &self.inner.workers)
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T> Inner<T> {
    fn ring(&self, from: usize, to: usize) -> &Ring<T> {
        &self.rings[from * self.workers + to]
    }

    fn room_wanted(&self, from: usize, to: usize) -> &WaitFlag {
        &self.room_wanted[from * self.workers + to]
    }

    /// Rings worker `w`'s bell (see `bell.rs`).
    fn ring_bell(&self, w: usize) {
        let w = &self.rt.workers[w];
        w.mesh_bell.ring(&w.parker);
    }

    fn wake_receivers(&self) {
        for j in 0..self.workers {
            if self.data_wanted[j].take() {
                self.ring_bell(j);
            }
        }
    }

    /// Whether sends to `to` are refused.
    fn refuses(&self, to: usize) -> bool {
        self.closed.load(Acquire) || self.receivers[to].load(Acquire) == DROPPED
    }

    /// Whether nothing more can be published to any receiver: closed, or
    /// every sender dropped or never to be taken. Its acquire loads order
    /// every publish of a finished sender before the caller's last look.
    fn finished(&self) -> bool {
        if self.closed.load(Acquire) {
            return true;
        }
        let no_handles = self.handles.load(Acquire) == 0;
        self.senders.iter().all(|s| match s.load(Acquire) {
            DROPPED => true,
            UNTAKEN => no_handles,
            _ => false,
        })
    }
}
