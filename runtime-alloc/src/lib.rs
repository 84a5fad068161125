//! Sprint's memory: per-worker arenas (reserved up to a budget, committed
//! as the level says, prefaulted, locked, on huge pages, bound to the
//! worker's NUMA node), the task slab that carves them, the memory budget
//! (given the machine's memory as an input), mimalloc, and allocation
//! counting. It reads nothing about the machine: sprint-os does.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod arena;
pub mod budget;
pub mod counting;
#[cfg(feature = "mimalloc")]
pub mod mimalloc;
mod os;
pub mod slab;

pub use arena::{Arena, ArenaConfig, ArenaError, ArenaStats};
pub use budget::Budget;
pub use slab::{Slab, SlabStats};
