//! The relay as a Bitcoin P2P peer: it completes the handshake with
//! nodes (inbound on `--p2p`, outbound to each `--connect`), learns
//! transactions by `inv` → `getdata` → `tx` (or unsolicited `tx`),
//! announces each new one to every other peer by `inv`, and serves
//! `getdata` from a bounded store of recent transactions.
//!
//! It shares the relay's one state (`core.rs`): a transaction from a
//! peer is deduplicated by the same wtxid set as a publisher's and
//! queued to the subscribers as it came (the frame is the same bytes:
//! one network magic for both sides); a new transaction from a publisher
//! is announced to the peers. The publisher/subscriber path is unchanged
//! and costs nothing more while no P2P side is configured.
//!
//! - `msg.rs`: the messages on the wire, parsed in place, with typed
//!   refusals.
//! - `store.rs`: the known-inventory filter and the recent-transaction
//!   store.
//! - `node.rs`: the peers' state (handshake, negotiated features, pending
//!   announcements, in-flight requests, misbehaviour score) and what is
//!   sent to them.
//! - `handle.rs`: what each message a peer sends does.
//! - `conn.rs`: a peer's connection over the runtime seam.

pub mod conn;
mod handle;
pub mod msg;
mod network;
pub mod node;
mod store;
mod timing;

pub use msg::Network;
pub use node::{Gone, PeerId};

use std::net::SocketAddr;
use std::time::Duration;

/// The P2P side's settings (off, the default, when it neither listens nor
/// connects).
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// Where peers connect (`--p2p`).
    pub listen: Option<SocketAddr>,
    /// Peers the relay connects to and reconnects to when they go
    /// (`--connect`, repeatable).
    pub connect: Vec<SocketAddr>,
    /// The services the relay's `version` offers.
    pub services: u64,
    /// A peer must complete the handshake within this long.
    pub handshake_timeout: Duration,
    /// A `ping` is sent this long after the last one was answered.
    pub ping_interval: Duration,
    /// A peer that leaves a `ping` unanswered this long is dead.
    pub ping_timeout: Duration,
    /// The first wait before reconnecting to a `--connect` peer; it
    /// doubles on each failure, up to a minute.
    pub reconnect_after: Duration,
    /// Peers at once (inbound and outbound); more inbound are refused.
    pub max_peers: usize,
    /// Bytes queued to one peer: past this its requests wait (reading
    /// stops), past twice this (announcements to a peer that reads
    /// nothing) it is dropped as slow.
    pub queue_bytes: usize,
    /// Transactions requested from one peer and not yet received.
    pub max_inflight: usize,
    /// A request unanswered this long is forgotten (the transaction may
    /// then be asked of another peer).
    pub request_timeout: Duration,
    /// Hashes each peer's known-inventory filter remembers.
    pub known: usize,
    /// Bytes of transactions kept to answer `getdata`.
    pub store_bytes: usize,
    /// How long a transaction is kept to answer `getdata`.
    pub store_age: Duration,
    /// The misbehaviour score at which a peer is disconnected.
    pub ban_score: u32,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: None,
            connect: Vec::new(),
            services: msg::NODE_WITNESS,
            handshake_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(120),
            ping_timeout: Duration::from_secs(90),
            reconnect_after: Duration::from_secs(1),
            max_peers: 1_024,
            queue_bytes: 4 << 20,
            max_inflight: 1_000,
            request_timeout: Duration::from_secs(60),
            known: 50_000,
            store_bytes: 64 << 20,
            store_age: Duration::from_secs(15 * 60),
            ban_score: 100,
        }
    }
}

impl P2pConfig {
    /// Whether the P2P side runs at all.
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || !self.connect.is_empty()
    }
}

/// What the P2P side counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct P2pCounters {
    /// Peers connected now (handshake done or not).
    pub peers: u64,
    /// Inbound connections accepted, ever.
    pub inbound: u64,
    /// Outbound connections made, ever.
    pub outbound: u64,
    /// Outbound connections that failed.
    pub connect_failures: u64,
    /// Inbound connections refused at `max_peers`.
    pub refused: u64,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Peers that were ourselves (our own nonce in their `version`).
    pub self_connections: u64,
    /// Peers whose protocol version is too old.
    pub obsolete: u64,
    /// Peers that did not complete the handshake in time.
    pub handshake_timeouts: u64,
    /// Peers that left a ping unanswered too long.
    pub ping_timeouts: u64,
    /// Peers dropped for not reading what was queued to them.
    pub slow: u64,
    /// Peers disconnected at the misbehaviour threshold.
    pub misbehaving: u64,
    /// Misbehaviour by kind: a magic not the network's.
    pub bad_magic: u64,
    /// Command bytes not printable ASCII padded with NULs.
    pub bad_command: u64,
    /// A payload above its command's limit.
    pub oversize: u64,
    /// A checksum mismatch.
    pub bad_checksum: u64,
    /// A payload that does not decode.
    pub malformed: u64,
    /// An inventory message of more than 50,000 entries.
    pub too_many_inv: u64,
    /// A `tx` that is not a transaction in its canonical form.
    pub undecodable_tx: u64,
    /// A message out of order (before the handshake, a second
    /// `version`, `wtxidrelay` or `sendaddrv2` after `verack`).
    pub out_of_order: u64,
    /// Messages read and ignored (`addr`, `headers`, block `inv`, …).
    pub ignored: u64,
    /// Inventory entries received.
    pub inv_received: u64,
    /// Transactions requested by `getdata`.
    pub requested: u64,
    /// Transactions received from peers.
    pub tx_received: u64,
    /// Of those, not requested.
    pub unsolicited: u64,
    /// Inventory entries announced (one per transaction per peer).
    pub announced: u64,
    /// Transactions sent on request.
    pub served: u64,
    /// Entries answered with `notfound`.
    pub not_found: u64,
    /// `pong`s received that matched a `ping`.
    pub pongs: u64,
    /// Transactions in the store (at the last trim).
    pub stored: u64,
    /// Their bytes.
    pub stored_bytes: u64,
}
