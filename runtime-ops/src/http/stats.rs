//! How often each of the server's defences acted.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the server has done since it started: how often each defence
/// acted. Served in `/metrics` too, as `sprint_metrics_server_*_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections closed to admit a new one at the cap.
    pub evictions: u64,
    /// Connections closed at their read or write deadline.
    pub timeouts: u64,
    /// Requests refused as malformed, too large (431) or of another HTTP
    /// version.
    pub bad_requests: u64,
    /// Accepts that failed for the process (out of descriptors or memory),
    /// each followed by a pause.
    pub accept_errors: u64,
}

/// The counters behind [`ServerStats`]: written by the server's thread,
/// read by anyone.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn get(&self) -> ServerStats {
        ServerStats {
            connections: self.connections.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            bad_requests: self.bad_requests.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
