//! A Bitcoin transaction relay, written once and run on Sprint or on tokio
//! behind a small seam (`seam.rs`): publishers send P2P `tx` messages in
//! the wire framing; the relay checks each frame, decodes the transaction
//! (or skips decoding, a flag), drops duplicates with a bounded seen-set,
//! and copies each new frame into every subscriber's bounded queue, which
//! that subscriber's writer drains to its socket. A slow subscriber is
//! dropped or skipped (a policy); malformed input closes that connection
//! and is counted; the rest go on.

#![warn(missing_docs)]

pub mod core;
pub mod sample;
pub mod seam;
pub mod server;
pub mod wire;

pub use crate::core::{Counters, Relay, RelayConfig, SlowPolicy};
