//! Synchronisation for tasks: channels, locks, a semaphore, `Notify`, and
//! task groups. Each is a plain future or stream, so `futures::select!`,
//! `futures::future::select` and `StreamExt` work on them.
//!
//! Most items come in two flavours. The cross-worker one is `Send + Sync`
//! and keeps its state behind a short mutex; use it when tasks on
//! different workers (or other threads) share it. The [`local`] one is
//! `!Send`, keeps the same state in a `RefCell` and costs no atomic
//! instruction and no lock; use it when every user is a `spawn_local`
//! task of one worker, the common case of a thread-per-core program that
//! keeps state per core. Both have the same fairness and cancellation
//! rules.
//!
//! | item | cross-worker flavour | local flavour | pick the local one when |
//! |---|---|---|---|
//! | wake one/all waiters | [`Notify`] | [`local::Notify`] | waiters and notifiers are tasks of one worker |
//! | async mutex (FIFO) | [`Mutex`] | [`local::Mutex`] | the guarded state belongs to one worker |
//! | readers/writer lock | [`RwLock`] | [`local::RwLock`] | as for the mutex |
//! | counting semaphore | [`Semaphore`] | [`local::Semaphore`] | it bounds work of one worker (its connections) |
//! | bounded mpsc | [`mpsc::channel`] | [`mpsc::local::channel`] | producers and consumer share a worker |
//! | unbounded mpsc | [`mpsc::unbounded_channel`] | [`mpsc::local::unbounded_channel`] | as above |
//! | one value | [`oneshot`] | — (one lock per value is cheap) | — |
//! | latest value | [`watch`] | [`local::watch`] | publishers and watchers are tasks of one worker |
//! | every value to every receiver | [`broadcast`] | [`local::broadcast`] | as above |
//! | task group | [`JoinSet`] (`spawn` or `spawn_local`) | same type | — |
//!
//! A local item shared between workers does not compile; a cross-worker
//! one used on one worker works, paying for the mutex it does not need.
//!
//! Why written here rather than taken from `async-lock`/`event-listener`:
//! the local flavours need the same logic without atomics, ready
//! operations spend the worker's cooperative budget like the channels do,
//! and the state sits behind the crate's loom facade so the loom models
//! (`cargo test --lib loom` under `--cfg loom`) check the cross-worker
//! flavour.

mod bounded;
pub mod broadcast;
mod join_set;
pub mod local;
pub mod mpsc;
mod mutex;
pub(crate) mod notify;
pub mod oneshot;
pub(crate) mod rwlock;
mod sem_core;
mod semaphore;
mod state;
mod waitq;
pub mod watch;

pub use join_set::JoinSet;
pub use mutex::{
    MappedMutexGuard, Mutex, MutexGuard, OwnedMappedMutexGuard, OwnedMutexGuard, TryLockError,
};
pub use notify::{Notified, Notify};
pub use rwlock::{RwLock, RwLockMappedWriteGuard, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{
    AcquireError, OwnedSemaphorePermit, Semaphore, SemaphorePermit, TryAcquireError,
};
