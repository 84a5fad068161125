//! Sprint's operations side, built on the runtime's public [`Handle`]
//! only: [`Stats`] (everything measured, in one serde value), the
//! [`health`] checks, the `/metrics` server ([`export`]), and the
//! [`adaptive`] controller that moves the level while the runtime runs.
//! The `sprint` facade starts each one where the configuration asks. The
//! `/metrics` server is the `export` feature, the controller the
//! `adaptive` feature (both on by default).

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod adaptive;
#[cfg(feature = "export")]
pub mod export;
pub mod health;
#[cfg(feature = "export")]
mod http;
pub mod stats;

#[cfg(feature = "adaptive")]
pub use adaptive::Controller;
pub use adaptive::{AdaptiveState, Transition};
pub use health::Problem;
pub use stats::Stats;

use sprint_core::{Handle, StartReport};
use std::sync::Arc;

/// A running runtime as the operations side sees it: its handle, its
/// start-up report, and the adaptive controller's state if one runs.
#[derive(Debug, Clone)]
pub struct Observed {
    pub(crate) handle: Handle,
    pub(crate) report: Arc<StartReport>,
    pub(crate) adaptive: Option<Arc<AdaptiveState>>,
}

impl Observed {
    /// Observes the runtime behind `handle`, which started as `report`
    /// says, moved by `adaptive` if a controller runs.
    pub fn new(
        handle: Handle,
        report: Arc<StartReport>,
        adaptive: Option<Arc<AdaptiveState>>,
    ) -> Observed {
        Observed {
            handle,
            report,
            adaptive,
        }
    }

    /// The runtime's handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The scheduling class and priority worker `index` should have: what
    /// the controller last set, else what it settled on at start.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn expected_sched(&self, index: usize) -> Option<(i32, i32)> {
        self.adaptive
            .as_ref()
            .and_then(|a| a.sched.lock().get(index).copied().flatten())
            .or_else(|| self.report.workers.get(index).and_then(|w| w.sched))
    }
}
