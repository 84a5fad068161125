//! Channels and task groups: `oneshot`, bounded `mpsc` (a `Send` flavour
//! for crossing workers and a `!Send` flavour that stays on one worker),
//! and [`JoinSet`]. All are plain futures, so `futures::select!`,
//! `futures::future::select` and friends race them.

mod bounded;
mod join_set;
pub mod mpsc;
pub mod oneshot;

pub use join_set::JoinSet;
