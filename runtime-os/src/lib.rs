//! Everything Sprint reads from or changes in the operating system, each
//! change with an exact restore.
//!
//! - [`thread`]: the system calls about threads (scheduling class, nice,
//!   timer slack, affinity) and the process limits the tuner reads.
//! - The machine: [`topology`] (hwloc), [`cgroup`] limits, the
//!   [`budget`]'s inputs, the memory limit's [`fit`], and the allowed and
//!   isolated CPUs ([`placement`]).
//! - The plan: [`placement`] (which worker on which CPU), [`memory`]
//!   (each worker's arena), and the whole [`start`] plan.
//! - The changes: [`tune`] (thread and process settings, with the undo
//!   list and the apply report) and the opt-in machine-wide [`system`]
//!   profile with its journal, which the `sprint-tune` binary drives.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod budget;
pub mod cgroup;
pub mod fit;
pub mod memory;
pub mod placement;
pub mod start;
pub mod system;
#[cfg(target_os = "linux")]
pub mod thread;
pub mod topology;
pub mod tune;

pub use placement::{allowed_cpus, isolated_cpus, machine, Plan, WorkerPlan};
pub use start::{PlanError, StartPlan};
pub use tune::{ReportLine, TuneError, Tuner};
