//! A Bitcoin transaction relay, written once and run on Sprint or on tokio
//! behind a small seam (`seam.rs`): publishers send P2P `tx` messages in
//! the wire framing; the relay checks each frame, decodes the transaction
//! (or skips decoding, a flag), drops duplicates (by wtxid) with a bounded
//! seen-set, and copies each new frame into every subscriber's bounded
//! queue, which that subscriber's writer drains to its socket. A slow
//! subscriber is dropped or skipped (a policy); malformed input closes
//! that connection and is counted; the rest go on.
//!
//! Hostile traffic: connections are capped; a publisher that sends no
//! whole frame in time, or a frame too slowly, is closed; a subscriber's
//! read side is watched, so one that closes or resets is freed at once;
//! memory follows traffic, not connections (an idle connection holds no
//! queue or buffer); a flooding publisher is paced to its share of each
//! queue; the accept loops outlive any error.
//!
//! It is also a Bitcoin P2P peer (`p2p/`, on with `--p2p ADDR` or
//! `--connect HOST:PORT`): it completes the handshake with nodes and
//! other relays, learns transactions by `inv` → `getdata` → `tx`, and
//! announces each new one to its other peers, sharing one duplicate set
//! with the publishers and subscribers (a peer's transaction reaches the
//! subscribers, a publisher's is announced to the peers).
//!
//! The crate is the library, the `sprint-relay` server (`src/main.rs`)
//! and their tests. The tokio side of the seam (`server::run_tokio`,
//! `sprint-relay --runtime tokio`), there to compare the two runtimes on
//! the same code, is the `tokio` feature, on by default;
//! `--no-default-features` builds the relay on Sprint alone.

#![warn(missing_docs)]

pub mod config;
pub mod core;
pub mod p2p;
pub mod queue;
pub mod sample;
pub mod seam;
pub mod server;
pub mod shard;
pub mod wire;

pub use crate::config::{Counters, RelayConfig, SlowPolicy};
pub use crate::core::Relay;
