//! What one client may cost the server, checked before it starts.

use std::fmt;
use std::time::Duration;

/// What one client may cost the `/metrics` server.
///
/// ```
/// use sprint_ops::export::Limits;
/// use std::time::Duration;
///
/// let strict = Limits {
///     read_timeout: Duration::from_secs(2),
///     ..Limits::default()
/// };
/// assert_eq!(strict.max_head_bytes, 8 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request head (request line and headers) read; a longer
    /// one is answered 431 and its connection closed. Default 8 KiB.
    pub max_head_bytes: usize,
    /// How long a connection may wait for a whole request head, counted
    /// from when the server began waiting for it (the accept, or the end of
    /// the previous response). Idle keep-alive connections close after it
    /// too. Default 5 s.
    pub read_timeout: Duration,
    /// How long a response may take to be written whole; past it the
    /// connection is closed. Default 5 s.
    pub write_timeout: Duration,
    /// Connections held at once; at the cap a new one closes the one that
    /// has waited longest for its peer. Default 64.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head_bytes: 8 * 1024,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            max_connections: 64,
        }
    }
}

/// The smallest head limit: a scraper's request line and headers fit.
const MIN_HEAD_BYTES: usize = 512;

/// A [`Limits`] field the server cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metrics server limit {field} = {value}: {reason}")]
pub struct LimitsError {
    /// The field.
    pub field: &'static str,
    /// Its value, as given.
    pub value: String,
    /// What it must be.
    pub reason: &'static str,
}

impl Limits {
    /// Checks that a server can run with these limits.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let err = |field, value: &dyn fmt::Debug, reason| {
            Err(LimitsError {
                field,
                value: format!("{value:?}"),
                reason,
            })
        };
        if self.max_head_bytes < MIN_HEAD_BYTES {
            return err(
                "max_head_bytes",
                &self.max_head_bytes,
                "at least 512 bytes, so that a scraper's request fits",
            );
        }
        if self.read_timeout.is_zero() {
            return err("read_timeout", &self.read_timeout, "more than zero");
        }
        if self.write_timeout.is_zero() {
            return err("write_timeout", &self.write_timeout, "more than zero");
        }
        if self.max_connections == 0 {
            return err("max_connections", &self.max_connections, "at least 1");
        }
        Ok(())
    }
}
