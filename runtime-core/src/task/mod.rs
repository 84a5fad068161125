//! Tasks: spawning, joining, yielding and the cooperative budget.
//!
//! Inside: the cell that holds a future, its state word, its wakers and its
//! JoinHandle.
//!
//! A spawn makes one allocation (the cell, `raw.rs`); wakes, polls and the
//! join make none. `state.rs` documents the protocol bit by bit; `harness.rs`
//! drives the transitions; `list.rs` tracks live tasks for shutdown.

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
