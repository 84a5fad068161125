//! What an operator sets ([`RelayConfig`]) and what the relay counts
//! ([`Counters`]).

use crate::wire;
use std::time::Duration;

/// What to do with a subscriber whose queue has no room for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowPolicy {
    /// Disconnect it (counted).
    Drop,
    /// Skip the frame for it (counted) and keep it.
    Skip,
}

/// A slow-subscriber policy that is neither `drop` nor `skip`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("slow-subscriber policy must be drop or skip, not {0:?}")]
pub struct ParseSlowPolicyError(pub String);

impl std::str::FromStr for SlowPolicy {
    type Err = ParseSlowPolicyError;
    fn from_str(s: &str) -> Result<Self, ParseSlowPolicyError> {
        match s {
            "drop" => Ok(SlowPolicy::Drop),
            "skip" => Ok(SlowPolicy::Skip),
            _ => Err(ParseSlowPolicyError(s.to_string())),
        }
    }
}

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Decode each transaction with the `bitcoin` crate (refusing what
    /// does not decode); off, nothing is allocated per message. Either
    /// way duplicates are keyed by the wtxid.
    pub decode: bool,
    /// The network's magic.
    pub magic: [u8; 4],
    /// The largest payload accepted.
    pub max_payload: usize,
    /// Transactions remembered for duplicate detection (oldest forgotten
    /// first).
    pub seen: usize,
    /// Bytes each subscriber's queue may hold. It grows on demand up to
    /// this, and gives its memory back once empty for `trim_after`.
    pub queue_bytes: usize,
    /// What a slow subscriber gets.
    pub slow: SlowPolicy,
    /// A subscriber whose queue stays over half full this long without
    /// sending half a queue's worth meanwhile is slow. Meanwhile the
    /// publishers filling it wait (the relay may itself be behind: then
    /// every queue drains in turn, and nothing is dropped). A full queue
    /// counts as slow at once.
    pub slow_after: Duration,
    /// Publishers served at once; more are refused (closed at once,
    /// counted).
    pub max_publishers: usize,
    /// Subscribers served at once; more are refused likewise.
    pub max_subscribers: usize,
    /// A publisher must complete a frame within this long of connecting
    /// or of its previous frame, or it is closed (counted).
    pub publisher_idle: Duration,
    /// A frame started must complete within this long plus its size at
    /// `min_frame_rate`, or its publisher is closed (counted).
    pub frame_grace: Duration,
    /// The slowest a frame in progress may arrive, in bytes per second.
    pub min_frame_rate: u64,
    /// Memory a connection holds for traffic (a queue, a buffer) is given
    /// back once it has been idle this long.
    pub trim_after: Duration,
    /// Workers the relay runs on (Sprint only; 1 elsewhere). Each has its
    /// own listeners on the same ports (SO_REUSEPORT), its connections,
    /// and its part of deciding what is new (`shard.rs`). The caps on
    /// publishers, subscribers and peers are shared out between them.
    pub workers: usize,
    /// The Bitcoin P2P side (off unless it listens or connects). Its
    /// network's magic is `magic`, shared with the publishers' frames.
    pub p2p: crate::p2p::P2pConfig,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            decode: true,
            magic: wire::MAINNET,
            max_payload: 400_000,
            seen: 100_000,
            queue_bytes: 1 << 20,
            slow: SlowPolicy::Drop,
            slow_after: Duration::from_millis(500),
            max_publishers: 1_024,
            max_subscribers: 4_096,
            publisher_idle: Duration::from_secs(120),
            frame_grace: Duration::from_secs(10),
            min_frame_rate: 10_000,
            trim_after: Duration::from_secs(2),
            workers: 1,
            p2p: crate::p2p::P2pConfig::default(),
        }
    }
}

impl RelayConfig {
    /// How long a frame of `len` bytes may take to arrive once started.
    pub fn frame_deadline(&self, len: usize) -> Duration {
        let rate = self.min_frame_rate.max(1);
        self.frame_grace + Duration::from_nanos((len as u64).saturating_mul(1_000_000_000) / rate)
    }
}

/// What the relay counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Frames read from publishers.
    pub frames: u64,
    /// New transactions relayed.
    pub relayed: u64,
    /// Duplicates dropped (same wtxid).
    pub duplicates: u64,
    /// Frames queued to subscribers.
    pub deliveries: u64,
    /// Frames skipped for a slow subscriber (skip policy).
    pub skipped: u64,
    /// Subscribers disconnected for being slow (drop policy).
    pub dropped_subscribers: u64,
    /// Times a publisher found no room because a subscriber's queue was
    /// over half full and it had its share of it (backpressure: its data
    /// stays in TCP meanwhile).
    pub paused: u64,
    /// Malformed input, by kind; each closed its connection.
    pub bad_magic: u64,
    /// Payload length above the limit.
    pub oversize: u64,
    /// Checksum mismatch.
    pub bad_checksum: u64,
    /// A command other than `tx`.
    pub bad_command: u64,
    /// Not a transaction.
    pub undecodable: u64,
    /// Connections refused: the publishers' cap was reached.
    pub refused_publishers: u64,
    /// Connections refused: the subscribers' cap was reached.
    pub refused_subscribers: u64,
    /// Failed accepts (the listener backed off and went on).
    pub accept_errors: u64,
    /// Publishers closed for sending no whole frame in `publisher_idle`.
    pub idle_publishers: u64,
    /// Publishers closed for a frame slower than `min_frame_rate`.
    pub slow_publishers: u64,
    /// Subscribers that closed, reset or sent something (subscribers
    /// send nothing): noticed on their read side and freed.
    pub hung_up_subscribers: u64,
    /// Publishers connected now.
    pub publishers: u64,
    /// Subscribers connected now.
    pub subscribers: u64,
    /// The most connections (publishers and subscribers) at once.
    pub peak_connections: u64,
    /// Bytes the subscribers' queues and the spare write buffers hold
    /// (at the last trim).
    pub queue_memory: u64,
    /// The process's resident bytes at the last sample.
    pub rss_bytes: u64,
    /// Resident bytes per connection above the resident size at start, at
    /// the sample with the most connections: what an idle connection
    /// costs when most of them are idle.
    pub rss_per_connection: u64,
    /// On several workers: transactions this worker asked another one
    /// about (their wtxid's owner, `shard.rs`).
    pub mesh_questions: u64,
    /// On several workers: new transactions sent to another worker (one
    /// per other worker each).
    pub mesh_sent: u64,
    /// On several workers: new transactions received from another
    /// worker.
    pub mesh_received: u64,
    /// The P2P side's counts.
    pub p2p: crate::p2p::P2pCounters,
}

impl Counters {
    /// Adds another worker's counts to these: sums, but the process's
    /// resident sizes (the largest).
    pub fn merge(&mut self, o: &Counters) {
        // Names every field of the struct: one added later and not merged
        // here is a compile error, not a count silently left at worker 0's.
        macro_rules! sum {
            ($a:expr, $T:ident $b:expr; $($f:ident),*; besides $($x:ident),*) => {{
                let $T { $($f,)* $($x: _,)* } = $b;
                $($a.$f += $f;)*
            }};
        }
        sum!(self, Counters *o; frames, relayed, duplicates, deliveries,
            skipped, dropped_subscribers, paused, bad_magic, oversize,
            bad_checksum, bad_command, undecodable, refused_publishers,
            refused_subscribers, accept_errors, idle_publishers,
            slow_publishers, hung_up_subscribers, publishers, subscribers,
            peak_connections, queue_memory, mesh_questions, mesh_sent,
            mesh_received; besides rss_bytes, rss_per_connection, p2p);
        self.rss_bytes = self.rss_bytes.max(o.rss_bytes);
        self.rss_per_connection = self.rss_per_connection.max(o.rss_per_connection);
        use crate::p2p::P2pCounters;
        sum!(self.p2p, P2pCounters o.p2p; peers, inbound, outbound,
            connect_failures, refused, handshakes, self_connections, obsolete,
            handshake_timeouts, ping_timeouts, slow, misbehaving, bad_magic,
            bad_command, oversize, bad_checksum, malformed, too_many_inv,
            undecodable_tx, out_of_order, ignored, inv_received, requested,
            tx_received, unsolicited, announced, served, not_found, pongs,
            stored, stored_bytes; besides);
    }
}
