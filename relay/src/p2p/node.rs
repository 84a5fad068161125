//! The peers' state and what is sent to them.
//!
//! A peer's life: opened (an outbound one sends its `version` at once),
//! handshaking (its `version` answered by ours if inbound, then
//! `wtxidrelay`, `sendaddrv2` and `verack`), ready once both `version`
//! and `verack` are in, gone when it closes, misbehaves past the score,
//! times out or does not read. Everything it is sent is appended to its
//! `out` buffer, which its writer swaps for an empty one and writes: one
//! write per turn however many messages piled up. Announcements wait in
//! `pending` and become one `inv` per 50,000 entries when the writer
//! next runs, so a burst of transactions is one `inv`, not one each.

use super::msg::{self, Inv, Message, Version};
use super::store::{Known, Stored, TxStore};
use super::{P2pConfig, P2pCounters};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::task::Waker;
use std::time::{Duration, Instant};

/// A `feefilter` at or above this (Bitcoin Core sends `MAX_MONEY` while
/// it wants no transactions) stops announcements to the peer. The relay
/// has no UTXO set, so it does not know a transaction's fee: a lower
/// filter is recorded and the receiving node applies its own policy.
pub const NO_TX_FEEFILTER: i64 = 21_000_000 * 100_000_000;

/// Identifies a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(pub(crate) usize);

/// Why a peer was let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// It closed, or the connection failed.
    Closed,
    /// Its misbehaviour score reached the threshold.
    Misbehaving,
    /// It was the relay itself.
    SelfConnection,
    /// Its protocol version is too old.
    Obsolete,
    /// No handshake in time.
    HandshakeTimeout,
    /// A ping unanswered too long.
    PingTimeout,
    /// It did not read what was queued to it.
    Slow,
}

/// A message whose payload is being skipped: checked against its
/// checksum as it streams by, never held whole.
#[derive(Clone)]
pub(crate) struct Skip {
    pub(crate) remaining: usize,
    pub(crate) engine: bitcoin::hashes::sha256::HashEngine,
    pub(crate) checksum: [u8; 4],
    pub(crate) command: msg::Command,
}

impl std::fmt::Debug for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Skip")
            .field("remaining", &self.remaining)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

/// One peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    pub(crate) inbound: bool,
    /// Its id as a source of frames for the subscribers' fair shares.
    pub(crate) publisher: u64,
    pub(crate) since: Instant,
    /// Its `version`, once received.
    pub(crate) version: Option<Version>,
    pub(crate) verack: bool,
    /// It sent `wtxidrelay` in the handshake (and speaks 70016+).
    pub(crate) wtxid: bool,
    /// It sent `sendaddrv2` in the handshake.
    pub(crate) addrv2: bool,
    pub(crate) feefilter: i64,
    pub(crate) sendheaders: bool,
    pub(crate) cmpct: Option<(bool, u64)>,
    pub(crate) known: Known,
    pub(crate) pending: Vec<Inv>,
    /// The timing numbers of `pending`'s announcements (`timing.rs`), and
    /// of those being written.
    pub(crate) pending_n: Vec<u64>,
    pub(crate) writing_n: Vec<u64>,
    /// The arrival times of the transactions queued on request, and of
    /// those being written.
    pub(crate) served_at: Vec<u64>,
    pub(crate) writing_served: Vec<u64>,
    pub(crate) out: Vec<u8>,
    pub(crate) writer: Option<Waker>,
    pub(crate) reader: Option<Waker>,
    /// Transactions requested from it and not received.
    pub(crate) inflight: usize,
    pub(crate) score: u32,
    pub(crate) gone: Option<Gone>,
    /// The ping outstanding: its nonce and when it went.
    pub(crate) ping: Option<(u64, Instant)>,
    /// When the last ping was answered (or the handshake completed).
    pub(crate) pinged: Instant,
    pub(crate) skip: Option<Skip>,
}

impl Peer {
    pub(crate) fn ready(&self) -> bool {
        self.version.is_some() && self.verack && self.gone.is_none()
    }

    /// Whether transactions are announced to it.
    fn wants_txs(&self) -> bool {
        self.ready()
            && self.version.as_ref().is_some_and(|v| v.relay)
            && self.feefilter < NO_TX_FEEFILTER
    }

    pub(crate) fn send(&mut self, magic: [u8; 4], m: &Message<'_>) {
        msg::encode(&mut self.out, magic, m);
        self.wake_writer();
    }

    pub(crate) fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    pub(crate) fn end(&mut self, why: Gone) {
        if self.gone.is_none() {
            self.gone = Some(why);
        }
        self.wake_writer();
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}

/// A random 64-bit number (std's per-process random hash keys, mixed
/// with the clock): for nonces, not for keys.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The relay's `version` for a peer at `addr`: protocol 70016, its
/// services, the time, both addresses, its nonce (to detect connecting
/// to itself), `/sprint-relay:<version>/`, height 0, relay on.
pub(crate) fn version_for(
    cfg: &P2pConfig,
    nonce: u64,
    listen: Option<SocketAddr>,
    addr: SocketAddr,
) -> Version {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let local = listen.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    Version {
        version: msg::PROTOCOL_VERSION,
        services: cfg.services,
        timestamp: now,
        receiver: msg::NetAddr::of(addr, 0),
        sender: msg::NetAddr::of(local, cfg.services),
        nonce,
        user_agent: concat!("/sprint-relay:", env!("CARGO_PKG_VERSION"), "/").to_string(),
        start_height: 0,
        relay: true,
    }
}

/// The P2P side's state.
#[derive(Debug)]
pub struct Node {
    pub(crate) cfg: P2pConfig,
    pub(crate) magic: [u8; 4],
    pub(crate) peers: Vec<Option<Peer>>,
    pub(crate) store: TxStore,
    /// Txids seen (the relay's own set holds wtxids).
    pub(crate) txids: Known,
    /// Hashes requested: from which peer, and when.
    pub(crate) inflight: HashMap<[u8; 32], (PeerId, Instant)>,
    /// The nonce in every `version` the relay sends.
    pub(crate) nonce: u64,
    pub(crate) listen: Option<SocketAddr>,
    /// A list reused for each `getdata` and `notfound` built.
    pub(crate) scratch: Vec<Inv>,
    /// How long the peers wait for announcements and transactions.
    pub(crate) timing: super::timing::Timing,
}

impl Node {
    pub(crate) fn new(cfg: P2pConfig, magic: [u8; 4], seen: usize) -> Node {
        Node {
            store: TxStore::new(cfg.store_bytes, cfg.store_age),
            txids: Known::new(seen),
            inflight: HashMap::new(),
            nonce: random_u64(),
            listen: cfg.listen,
            scratch: Vec::new(),
            timing: Default::default(),
            peers: Vec::new(),
            magic,
            cfg,
        }
    }

    /// Whether the P2P side runs (then transactions are stored and
    /// announced).
    pub(crate) fn on(&self) -> bool {
        self.cfg.enabled()
    }

    pub(crate) fn peer(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.peers.get_mut(id.0).and_then(Option::as_mut)
    }

    /// Our `version` for a peer at `addr`.
    pub(crate) fn version(&self, addr: SocketAddr) -> Version {
        version_for(&self.cfg, self.nonce, self.listen, addr)
    }

    /// A new peer (an outbound one's `version` queued), or `None` at the
    /// cap (counted).
    pub(crate) fn open(
        &mut self,
        addr: SocketAddr,
        inbound: bool,
        publisher: u64,
        now: Instant,
        c: &mut P2pCounters,
    ) -> Option<PeerId> {
        if self.peers.iter().flatten().count() >= self.cfg.max_peers {
            c.refused += u64::from(inbound);
            return None;
        }
        c.peers += 1;
        if inbound {
            c.inbound += 1;
        } else {
            c.outbound += 1;
        }
        let mut p = Peer {
            addr,
            inbound,
            publisher,
            since: now,
            version: None,
            verack: false,
            wtxid: false,
            addrv2: false,
            feefilter: 0,
            sendheaders: false,
            cmpct: None,
            known: Known::new(self.cfg.known),
            pending: Vec::new(),
            pending_n: Vec::new(),
            writing_n: Vec::new(),
            served_at: Vec::new(),
            writing_served: Vec::new(),
            out: Vec::new(),
            writer: None,
            reader: None,
            inflight: 0,
            score: 0,
            gone: None,
            ping: None,
            pinged: now,
            skip: None,
        };
        if !inbound {
            p.send(self.magic, &Message::Version(self.version(addr)));
        }
        let i = match self.peers.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.peers.push(None);
                self.peers.len() - 1
            }
        };
        self.peers[i] = Some(p);
        Some(PeerId(i))
    }

    /// Forgets a peer and its requests.
    pub(crate) fn close(&mut self, id: PeerId, c: &mut P2pCounters) {
        if let Some(slot) = self.peers.get_mut(id.0) {
            if let Some(p) = slot.take() {
                c.peers -= 1;
                self.inflight.retain(|_, (p, _)| *p != id);
                for n in p.pending_n.iter().chain(&p.writing_n) {
                    self.timing.done(*n, None);
                }
            }
        }
    }

    /// A new transaction: kept to answer `getdata`, and announced to
    /// every ready peer but `from` that wants transactions and does not
    /// know it (by wtxid to wtxid-relay peers, by txid to the others).
    pub(crate) fn offer(
        &mut self,
        txid: [u8; 32],
        wtxid: [u8; 32],
        raw: &[u8],
        from: Option<PeerId>,
        at: u64,
        c: &mut P2pCounters,
    ) {
        let now = Instant::now();
        self.txids.insert(txid);
        let stored = Stored {
            raw: raw.into(),
            wtxid,
            segwit: txid != wtxid,
            at,
        };
        self.store.insert(txid, stored, now);
        let limit = 2 * self.cfg.queue_bytes;
        let (n, timed) = (self.timing.next(), self.timing.on());
        let mut told = 0;
        for (i, p) in self.peers.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            if Some(PeerId(i)) == from || !p.wants_txs() {
                continue;
            }
            // What it told us or asked for. What it is told here needs no
            // entry: a new transaction is offered once (per worker), so a
            // peer is told it once. Not inserting keeps the cost per peer
            // and transaction to two lookups (none for a peer that tells us
            // nothing) at 1,024 peers; inserting made each peer's set grow
            // with every transaction, and all of them rehash on the same
            // one (a stall of hundreds of milliseconds there).
            if p.known.knows(&txid, &wtxid) {
                continue;
            }
            let e = if p.wtxid {
                Inv {
                    kind: msg::inv::WTX,
                    hash: wtxid,
                }
            } else {
                Inv {
                    kind: msg::inv::TX,
                    hash: txid,
                }
            };
            p.pending.push(e);
            if timed {
                p.pending_n.push(n);
                told += 1;
            }
            c.announced += 1;
            if p.out.len() + p.pending.len() * msg::INV_ENTRY > limit {
                c.slow += 1;
                p.end(Gone::Slow);
                continue;
            }
            p.wake_writer();
        }
        self.timing.announced(at, told);
    }

    /// What peer `id`'s writer sends next: its pending announcements
    /// become `inv`s, then its queued bytes are swapped into `spare`
    /// (which must be empty). `Some(true)` with bytes to write,
    /// `Some(false)` with none (the waker registered), `None` once the
    /// peer is gone.
    pub(crate) fn next(&mut self, id: PeerId, spare: &mut Vec<u8>, waker: &Waker) -> Option<bool> {
        let magic = self.magic;
        let p = self.peer(id)?;
        if p.gone.is_some() {
            return None;
        }
        for chunk in p.pending.chunks(msg::MAX_INV) {
            msg::encode_inv(&mut p.out, magic, "inv", chunk.iter().copied());
        }
        p.pending.clear();
        p.writing_n.append(&mut p.pending_n);
        p.writing_served.append(&mut p.served_at);
        if p.out.is_empty() {
            match &p.writer {
                Some(w) if w.will_wake(waker) => {}
                _ => p.writer = Some(waker.clone()),
            }
            return Some(false);
        }
        std::mem::swap(&mut p.out, spare);
        // What was queued went out: requests waiting for room go on.
        if let Some(w) = p.reader.take() {
            w.wake();
        }
        Some(true)
    }

    /// Peer `id`'s writer wrote what [`Node::next`] gave it, at `now`
    /// (`sprint::metrics::now_raw()`).
    pub(crate) fn wrote(&mut self, id: PeerId, now: u64) {
        let Some(p) = self.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        for n in p.writing_n.drain(..) {
            self.timing.done(n, Some(now));
        }
        for at in p.writing_served.drain(..) {
            self.timing.served(at, now);
        }
    }

    /// Whether peer `id`'s input may be read (its queue is below the
    /// limit); if not, `waker` is woken when its writer takes the queue.
    pub(crate) fn room(&mut self, id: PeerId, waker: &Waker) -> bool {
        let limit = self.cfg.queue_bytes;
        let Some(p) = self.peer(id) else {
            return true;
        };
        if p.gone.is_some() || p.out.len() < limit {
            return true;
        }
        p.reader = Some(waker.clone());
        false
    }

    /// Peer `id`'s timers at `now`: the handshake timeout, the ping to
    /// send, the ping unanswered. False once it is gone.
    pub(crate) fn tick(&mut self, id: PeerId, now: Instant, c: &mut P2pCounters) -> bool {
        let (cfg, magic) = (&self.cfg, self.magic);
        let Some(p) = self.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return false;
        };
        if p.gone.is_some() {
            return false;
        }
        if !p.ready() {
            if now.saturating_duration_since(p.since) >= cfg.handshake_timeout {
                c.handshake_timeouts += 1;
                p.end(Gone::HandshakeTimeout);
                return false;
            }
            return true;
        }
        match p.ping {
            Some((_, at)) if now.saturating_duration_since(at) >= cfg.ping_timeout => {
                c.ping_timeouts += 1;
                p.end(Gone::PingTimeout);
                return false;
            }
            Some(_) => {}
            None if now.saturating_duration_since(p.pinged) >= cfg.ping_interval => {
                let nonce = random_u64();
                p.ping = Some((nonce, now));
                p.send(magic, &Message::Ping(nonce));
            }
            None => {}
        }
        true
    }

    /// Forgets requests unanswered for `request_timeout`, and
    /// transactions past the store's age.
    pub(crate) fn expire(&mut self, now: Instant) {
        let after = self.cfg.request_timeout;
        let peers = &mut self.peers;
        self.inflight.retain(|_, (p, at)| {
            let keep = now.saturating_duration_since(*at) < after;
            if !keep {
                if let Some(Some(peer)) = peers.get_mut(p.0) {
                    peer.inflight = peer.inflight.saturating_sub(1);
                }
            }
            keep
        });
        self.store.expire(now);
    }

    /// How often a peer's timers are looked at: often enough for the
    /// shortest of them.
    pub(crate) fn tick_period(&self) -> Duration {
        let c = &self.cfg;
        (c.handshake_timeout.min(c.ping_interval).min(c.ping_timeout) / 4)
            .clamp(Duration::from_millis(5), Duration::from_secs(1))
    }
}
