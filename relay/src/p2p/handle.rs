//! What a peer's bytes do: messages are cut from its stream, checked and
//! handled in order; each refusal scores by its kind, and a peer whose
//! score reaches the threshold is let go.
//!
//! | kind | score | why |
//! |---|---|---|
//! | bad magic, bad command bytes, oversize | the threshold | the stream cannot be followed past it, or it would hold too much |
//! | bad checksum, malformed payload, > 50,000 inventory, undecodable `tx` | 50 | a broken or hostile sender; two and it goes |
//! | out of order (before the handshake, a second `version`, `wtxidrelay`/`sendaddrv2` after `verack`) | 20 | a confused sender |
//!
//! A command the relay does not decode (`addr`, `addrv2`, `getaddr`,
//! `headers`, `getheaders`, `block`, `mempool`, anything new) is skipped
//! as it streams in, its checksum checked on the way, and counted as
//! ignored: never held whole, never a disconnect by itself.

use super::msg::{self, inv, Inv, InvList, Message, ProtocolError};
use super::node::{Gone, PeerId, Skip};
use crate::core::{PubId, Relay};
use crate::wire::HEADER;
use bitcoin::hashes::{sha256, sha256d, Hash, HashEngine};
use std::time::Instant;

/// The score of a refusal that is not about framing.
const BROKEN: u32 = 50;
/// The score of a message out of order.
const OUT_OF_ORDER: u32 = 20;

/// What [`Relay::peer_input`] did with a peer's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// Bytes consumed.
    pub used: usize,
    /// The whole size of the message in progress after them, when more
    /// than what is there is needed to decode it (0 otherwise).
    pub need: usize,
}

impl Relay {
    /// A new peer (inbound, or one the relay connected to), or `None` at
    /// the peer cap (counted): the caller closes the connection.
    pub fn peer_open(&mut self, addr: std::net::SocketAddr, inbound: bool) -> Option<PeerId> {
        self.next_publisher += 1;
        let publisher = self.next_publisher;
        self.p2p.open(
            addr,
            inbound,
            publisher,
            Instant::now(),
            &mut self.counters.p2p,
        )
    }

    /// What peer `id`'s writer sends next: everything queued to it since
    /// the last call (its pending announcements as `inv`s) is swapped
    /// into `spare`, which must be empty. `Some(true)` with bytes to
    /// write, `Some(false)` with none (`waker` is woken when there are),
    /// `None` once the peer is let go.
    pub fn peer_next(
        &mut self,
        id: PeerId,
        spare: &mut Vec<u8>,
        waker: &std::task::Waker,
    ) -> Option<bool> {
        self.p2p.next(id, spare, waker)
    }

    /// Peer `id`'s writer wrote everything [`Relay::peer_next`] gave it.
    pub fn peer_wrote(&mut self, id: PeerId) {
        self.p2p.wrote(id, sprint::metrics::now_raw());
    }

    /// Times the peers from now on: `last_peer` gets each announcement's
    /// time from the transaction's arrival to its `inv` written to the
    /// last peer it went to, `served` each transaction's to its `tx`
    /// written on request.
    pub fn time_peers(
        &mut self,
        last_peer: sprint::metrics::Histogram,
        served: sprint::metrics::Histogram,
    ) {
        self.p2p.timing.set(last_peer, served);
    }

    /// Peer `id`'s timers at `now` (see [`super::P2pConfig`]): false once
    /// it is to be let go.
    pub fn peer_tick(&mut self, id: PeerId, now: Instant) -> bool {
        self.p2p.tick(id, now, &mut self.counters.p2p)
    }

    /// A peer's connection ended.
    pub fn peer_close(&mut self, id: PeerId) {
        self.p2p.close(id, &mut self.counters.p2p);
    }

    /// Takes what `buf` holds of peer `id`'s stream: each whole message is
    /// handled (a skipped one as far as it goes). `Err` once the peer is
    /// to be let go: the caller closes the connection.
    pub fn peer_input(&mut self, id: PeerId, buf: &[u8], now: u64) -> Result<Input, Gone> {
        let mut used = 0;
        loop {
            let Some(p) = self.p2p.peers.get_mut(id.0).and_then(Option::as_mut) else {
                return Err(Gone::Closed);
            };
            if let Some(g) = p.gone {
                return Err(g);
            }
            let rest = &buf[used..];
            if let Some(skip) = &mut p.skip {
                let n = skip.remaining.min(rest.len());
                skip.engine.input(&rest[..n]);
                skip.remaining -= n;
                used += n;
                if skip.remaining > 0 {
                    return Ok(Input { used, need: 0 });
                }
                let Some(s) = p.skip.take() else { continue };
                let first = sha256::Hash::from_engine(s.engine);
                let sum = sha256::Hash::hash(first.as_byte_array()).to_byte_array();
                if sum[..4] == s.checksum {
                    self.counters.p2p.ignored += 1;
                } else {
                    self.misbehave(id, &ProtocolError::BadChecksum(s.command))?;
                }
                continue;
            }
            let h = match msg::header(rest, self.cfg.magic, self.cfg.max_payload) {
                Ok(None) => {
                    let need = if rest.is_empty() { 0 } else { HEADER };
                    return Ok(Input { used, need });
                }
                Ok(Some(h)) => h,
                Err(e) => {
                    // The stream cannot be followed past a bad header.
                    self.misbehave(id, &e)?;
                    return Err(self.let_go(id, Gone::Misbehaving));
                }
            };
            if !h.decoded {
                p.skip = Some(Skip {
                    remaining: h.len,
                    engine: sha256::Hash::engine(),
                    checksum: h.checksum,
                    command: h.command,
                });
                used += HEADER;
                continue;
            }
            let end = HEADER + h.len;
            if rest.len() < end {
                return Ok(Input { used, need: end });
            }
            let payload = &rest[HEADER..end];
            let hash = sha256d::Hash::hash(payload).to_byte_array();
            if hash[..4] != h.checksum {
                self.misbehave(id, &ProtocolError::BadChecksum(h.command))?;
            } else {
                match msg::decode(h.command, payload) {
                    Err(e) => self.misbehave(id, &e)?,
                    Ok(m) => self.handle(id, m, &rest[..end], hash, now)?,
                }
            }
            used += end;
        }
    }

    /// Ends peer `id` for `why`, and says so.
    fn let_go(&mut self, id: PeerId, why: Gone) -> Gone {
        if let Some(p) = self.p2p.peer(id) {
            p.end(why);
        }
        why
    }

    /// Counts a refusal by kind and scores it.
    fn misbehave(&mut self, id: PeerId, e: &ProtocolError) -> Result<(), Gone> {
        let c = &mut self.counters.p2p;
        let framing = self.p2p.cfg.ban_score;
        let score = match e {
            ProtocolError::BadMagic(_) => {
                c.bad_magic += 1;
                framing
            }
            ProtocolError::BadCommand(_) => {
                c.bad_command += 1;
                framing
            }
            ProtocolError::Oversize { .. } => {
                c.oversize += 1;
                framing
            }
            ProtocolError::BadChecksum(_) => {
                c.bad_checksum += 1;
                BROKEN
            }
            ProtocolError::Malformed { .. } => {
                c.malformed += 1;
                BROKEN
            }
            ProtocolError::TooManyInv { .. } => {
                c.too_many_inv += 1;
                BROKEN
            }
        };
        self.penalise(id, score)
    }

    fn out_of_order(&mut self, id: PeerId) -> Result<(), Gone> {
        self.counters.p2p.out_of_order += 1;
        self.penalise(id, OUT_OF_ORDER)
    }

    fn penalise(&mut self, id: PeerId, score: u32) -> Result<(), Gone> {
        let ban = self.p2p.cfg.ban_score;
        let Some(p) = self.p2p.peer(id) else {
            return Err(Gone::Closed);
        };
        p.score = p.score.saturating_add(score);
        if p.score < ban {
            return Ok(());
        }
        self.counters.p2p.misbehaving += 1;
        Err(self.let_go(id, Gone::Misbehaving))
    }

    /// Handles one checked message; `frame` is its bytes, header
    /// included, and `hash` its payload's double SHA-256.
    fn handle(
        &mut self,
        id: PeerId,
        m: Message<'_>,
        frame: &[u8],
        hash: [u8; 32],
        now: u64,
    ) -> Result<(), Gone> {
        let t = Instant::now();
        let magic = self.cfg.magic;
        let Some(p) = self.p2p.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return Err(Gone::Closed);
        };
        let handshaking = matches!(
            m,
            Message::Version(_) | Message::Verack | Message::WtxidRelay | Message::SendAddrV2
        );
        if !handshaking && !p.ready() {
            return self.out_of_order(id);
        }
        let c = &mut self.counters.p2p;
        match m {
            Message::Version(v) => {
                if p.version.is_some() {
                    return self.out_of_order(id);
                }
                if v.nonce == self.p2p.nonce {
                    c.self_connections += 1;
                    return Err(self.let_go(id, Gone::SelfConnection));
                }
                if v.version < msg::MIN_PEER_VERSION {
                    c.obsolete += 1;
                    return Err(self.let_go(id, Gone::Obsolete));
                }
                let (cfg, nonce, listen) = (&self.p2p.cfg, self.p2p.nonce, self.p2p.listen);
                let ours = p
                    .inbound
                    .then(|| super::node::version_for(cfg, nonce, listen, p.addr));
                if let Some(ours) = ours {
                    p.send(magic, &Message::Version(ours));
                }
                if v.version >= msg::PROTOCOL_VERSION {
                    p.send(magic, &Message::WtxidRelay);
                }
                p.send(magic, &Message::SendAddrV2);
                p.send(magic, &Message::Verack);
                p.version = Some(v);
            }
            Message::Verack => {
                if p.version.is_none() || p.verack {
                    return self.out_of_order(id);
                }
                p.verack = true;
                p.pinged = t;
                c.handshakes += 1;
            }
            Message::WtxidRelay | Message::SendAddrV2 => {
                let Some(v) = &p.version else {
                    return self.out_of_order(id);
                };
                if p.verack {
                    return self.out_of_order(id);
                }
                if matches!(m, Message::SendAddrV2) {
                    p.addrv2 = true;
                } else if v.version >= msg::PROTOCOL_VERSION {
                    p.wtxid = true;
                }
            }
            Message::SendHeaders => p.sendheaders = true,
            Message::SendCmpct { announce, version } => p.cmpct = Some((announce, version)),
            Message::FeeFilter(rate) => {
                // Out of range (Bitcoin Core's MoneyRange) is ignored.
                if (0..=super::node::NO_TX_FEEFILTER).contains(&rate) {
                    p.feefilter = rate;
                }
            }
            Message::Ping(n) => p.send(magic, &Message::Pong(n)),
            Message::Pong(n) => {
                if p.ping.is_some_and(|(sent, _)| sent == n) {
                    p.ping = None;
                    p.pinged = t;
                    c.pongs += 1;
                }
            }
            Message::Inv(list) => self.inv(id, list, t),
            Message::GetData(list) => self.getdata(id, list),
            Message::NotFound(list) => {
                for e in list.iter() {
                    if self
                        .p2p
                        .inflight
                        .get(&e.hash)
                        .is_some_and(|(q, _)| *q == id)
                    {
                        self.p2p.inflight.remove(&e.hash);
                        p.inflight = p.inflight.saturating_sub(1);
                    }
                }
            }
            Message::Tx(payload) => return self.tx(id, payload, frame, hash, now),
        }
        Ok(())
    }

    /// An `inv`: what the relay has not seen and has not asked of anyone
    /// is asked of this peer (up to its in-flight limit), by wtxid from a
    /// wtxid-relay peer and by txid (with witness) from the others.
    fn inv(&mut self, id: PeerId, list: InvList<'_>, t: Instant) {
        let (magic, most) = (self.cfg.magic, self.p2p.cfg.max_inflight);
        let (node, seen, c) = (&mut self.p2p, &self.seen, &mut self.counters.p2p);
        let Some(p) = node.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        let mut want = std::mem::take(&mut node.scratch);
        for e in list.iter() {
            c.inv_received += 1;
            // A wtxid-relay peer announces by wtxid only (BIP 339), the
            // others by txid; the other kind, and blocks, are ignored.
            let by_wtxid = match e.kind {
                inv::WTX if p.wtxid => true,
                inv::TX if !p.wtxid => false,
                _ => {
                    c.ignored += 1;
                    continue;
                }
            };
            p.known.insert(e.hash);
            let have = if by_wtxid {
                seen.contains(&e.hash)
            } else {
                node.txids.contains(&e.hash)
            };
            if have || node.inflight.contains_key(&e.hash) || p.inflight >= most {
                continue;
            }
            node.inflight.insert(e.hash, (id, t));
            p.inflight += 1;
            c.requested += 1;
            let kind = if by_wtxid { inv::WTX } else { inv::WITNESS_TX };
            want.push(Inv { kind, hash: e.hash });
        }
        if !want.is_empty() {
            msg::encode_inv(&mut p.out, magic, "getdata", want.iter().copied());
            p.wake_writer();
        }
        want.clear();
        node.scratch = want;
    }

    /// A `getdata`: each transaction the store holds is sent (without its
    /// witness for a plain `MSG_TX`), the rest, and what does not fit the
    /// peer's queue, answered by one `notfound`.
    fn getdata(&mut self, id: PeerId, list: InvList<'_>) {
        let (magic, limit) = (self.cfg.magic, self.p2p.cfg.queue_bytes);
        let (node, c) = (&mut self.p2p, &mut self.counters.p2p);
        let Some(p) = node.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        let mut missing = std::mem::take(&mut node.scratch);
        for e in list.iter() {
            let found = match e.kind {
                inv::TX | inv::WITNESS_TX => node.store.by_txid(&e.hash),
                inv::WTX => node.store.by_wtxid(&e.hash),
                _ => None,
            };
            match found {
                Some(s) if p.out.len() < limit => {
                    p.known.insert(e.hash);
                    c.served += 1;
                    if node.timing.on() {
                        p.served_at.push(s.at);
                    }
                    if e.kind == inv::TX && s.segwit {
                        let bare = without_witness(&s.raw);
                        msg::encode(&mut p.out, magic, &Message::Tx(&bare));
                    } else {
                        msg::encode(&mut p.out, magic, &Message::Tx(&s.raw));
                    }
                }
                _ => missing.push(e),
            }
        }
        c.not_found += missing.len() as u64;
        if !missing.is_empty() {
            msg::encode_inv(&mut p.out, magic, "notfound", missing.iter().copied());
        }
        p.wake_writer();
        missing.clear();
        node.scratch = missing;
    }

    /// A `tx`, requested or not: decoded (refused unless canonical), its
    /// request settled, then relayed as a publisher's would be: to the
    /// subscribers, and announced to the other peers.
    fn tx(
        &mut self,
        id: PeerId,
        payload: &[u8],
        frame: &[u8],
        wtxid: [u8; 32],
        now: u64,
    ) -> Result<(), Gone> {
        self.counters.p2p.tx_received += 1;
        let tx = match bitcoin::consensus::deserialize::<bitcoin::Transaction>(payload) {
            Ok(tx) if tx.total_size() == payload.len() => tx,
            _ => {
                self.counters.p2p.undecodable_tx += 1;
                return self.penalise(id, BROKEN);
            }
        };
        let txid = tx.compute_txid().to_byte_array();
        let node = &mut self.p2p;
        let Some(p) = node.peers.get_mut(id.0).and_then(Option::as_mut) else {
            return Err(Gone::Closed);
        };
        let mut asked = false;
        for h in [wtxid, txid] {
            if node.inflight.get(&h).is_some_and(|(q, _)| *q == id) {
                node.inflight.remove(&h);
                asked = true;
            }
        }
        if asked {
            p.inflight = p.inflight.saturating_sub(1);
        } else {
            self.counters.p2p.unsolicited += 1;
        }
        p.known.insert(txid);
        p.known.insert(wtxid);
        let publisher = PubId(p.publisher);
        self.counters.frames += 1;
        // Decoded above, so the relay does not decode it again: this
        // cannot be refused.
        let _ = self.relay(publisher, frame, payload, wtxid, now, Some(id), Some(txid));
        Ok(())
    }
}

/// A segwit transaction's serialisation without its witness (what a
/// plain `MSG_TX` request gets).
fn without_witness(raw: &[u8]) -> Vec<u8> {
    match bitcoin::consensus::deserialize::<bitcoin::Transaction>(raw) {
        Ok(mut tx) => {
            for i in &mut tx.input {
                i.witness.clear();
            }
            bitcoin::consensus::serialize(&tx)
        }
        // Stored only after decoding; kept as it came otherwise.
        Err(_) => raw.to_vec(),
    }
}
