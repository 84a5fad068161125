//! Tasks: spawning, joining, aborting, yielding, the cooperative budget,
//! task-local values and [`block_in_place`].
//!
//! ```no_run
//! # async fn f() {
//! let h = sprint_core::spawn(async { 40 + 2 });
//! assert_eq!(h.await.unwrap(), 42);
//! # }
//! ```
//!
//! [`spawn`] takes a `Send` future that the runtime may run on any worker
//! (at the levels that steal work); [`spawn_local`] keeps a future on the
//! worker that spawns it, so it need not be `Send`; [`spawn_on`] and
//! [`spawn_local_on`] choose the worker. A [`JoinHandle`] gives the
//! output (or a [`JoinError`] if the task panicked or was aborted), and
//! dropping it detaches the task. A task runs until it returns `Pending`
//! or uses up its budget of operations (`coop_budget`), after which
//! Sprint's own futures return `Pending` once so that the worker's other
//! tasks get their turn: [`yield_now`] does the same by hand.

// Inside: the cell that holds a future (`raw.rs`, one allocation per
// spawn; wakes, polls and the join make none), its state word
// (`state.rs` documents the protocol bit by bit), the transitions
// (`harness.rs`), live tasks for shutdown (`list.rs`).

pub(crate) mod cache;
pub(crate) mod harness;
mod in_place;
mod join;
pub(crate) mod list;
mod local;
pub(crate) mod raw;
pub(crate) mod state;
pub(crate) mod waker;

pub use crate::coop::{consume_budget, has_budget_remaining, yield_now, YieldNow};
pub use crate::spawn::{
    current, spawn, spawn_blocking, spawn_local, spawn_local_on, spawn_on, Builder,
};
pub use in_place::{block_in_place, BlockInPlaceError};
pub use join::{AbortHandle, JoinError, JoinHandle};
pub use local::{AccessError, LocalKey, TaskLocalFuture};

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;

/// A task's identity, unique within the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub(crate) u64);

impl TaskId {
    /// The raw number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a task records about itself for stall reports and stats.
#[derive(Debug)]
pub(crate) struct TaskMeta {
    pub(crate) id: TaskId,
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) location: &'static Location<'static>,
}
