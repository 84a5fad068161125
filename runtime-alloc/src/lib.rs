//! Sprint's memory: per-worker arenas (reserved up to a budget, committed
//! as the level says, prefaulted, locked, on huge pages, bound to the
//! worker's NUMA node), the task slab that carves them, the memory budget,
//! and the machine's topology through hwloc.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod arena;
pub mod budget;
pub mod cgroup;
pub mod counting;
#[cfg(feature = "mimalloc")]
pub mod mimalloc;
mod os;
pub mod slab;
pub mod topology;

pub use arena::{Arena, ArenaConfig, ArenaError, ArenaStats};
pub use budget::Budget;
pub use slab::{Slab, SlabStats};
