use crate::readiness::ScheduledIo;
use std::sync::Arc;

/// A socket's place in a driver: its readiness and its token.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) io: Arc<ScheduledIo>,
    pub(crate) token: usize,
}
