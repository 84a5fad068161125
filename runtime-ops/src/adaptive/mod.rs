//! The adaptive controller: moves the runtime's level while it runs, from
//! measured latency and load. Every window it reads the objective's
//! histogram (the change over the window) and the workers' busy time; it
//! steps up one level after `adaptive_up_after` windows in a row that
//! miss the objective, and down one after `adaptive_down_after` windows
//! that meet it with margin (at most half the bound) at a low busy ratio.
//! It climbs fast and comes down slowly: once a streak of misses has
//! stepped it up, every further window that still misses steps it up
//! again, while each step down needs a fresh streak at the new level.
//! A step that reverses the last one is never taken within
//! `adaptive_dwell_ms` of it. The runtime starts
//! with the restart-only settings of the highest level allowed, so a step
//! changes only what can change live: the idle strategy and spin, whether
//! workers steal, and each worker's scheduling class or nice value and
//! timer slack. What the
//! target level would change only with a restart is named in the log. A
//! level that cannot be applied (a missing privilege) is marked
//! unavailable with the reason and not tried again.

use parking_lot::Mutex;
use serde::Serialize;
use sprint_core::config::Level;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// One move of the level.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    /// From.
    pub from: Level,
    /// To.
    pub to: Level,
    /// Why, with the figures measured.
    pub reason: String,
    /// What the target level changes only with a restart.
    pub needs_restart: Vec<String>,
}

/// The controller's state, shared with stats and export.
#[derive(Debug)]
pub struct AdaptiveState {
    level: AtomicU8,
    pub(crate) transitions: AtomicU64,
    pub(crate) history: Mutex<Vec<Transition>>,
    pub(crate) unavailable: Mutex<Vec<(Level, String)>>,
    /// The scheduling class and priority the controller set on each
    /// worker (`None`: untouched since the start), for drift checks
    /// (Linux's: elsewhere scheduling classes are not read).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) sched: Mutex<Vec<Option<(i32, i32)>>>,
}

fn level_of(i: u8) -> Level {
    Level::ALL[(i as usize).min(Level::ALL.len() - 1)]
}

impl AdaptiveState {
    #[cfg_attr(not(feature = "adaptive"), allow(dead_code))]
    pub(crate) fn new(level: Level, workers: usize) -> AdaptiveState {
        AdaptiveState {
            level: AtomicU8::new(level.index() as u8),
            transitions: AtomicU64::new(0),
            history: Mutex::new(Vec::new()),
            unavailable: Mutex::new(Vec::new()),
            sched: Mutex::new(vec![None; workers]),
        }
    }

    /// The level in force.
    pub fn level(&self) -> Level {
        level_of(self.level.load(Relaxed))
    }
}

#[cfg(feature = "adaptive")]
mod controller;
#[cfg(feature = "adaptive")]
pub use controller::Controller;
