//! The relay's logic, runtime-free: checking and deduplicating frames and
//! fanning them out into the subscribers' bounded queues. One relay lives
//! on one thread (a thread-per-core server), so it is plain `&mut` state.
//!
//! Fairness. Each queued frame remembers its publisher, and each queue
//! knows how many bytes of it each publisher holds. When a queue is over
//! half full, a publisher that holds at least its share of that half
//! (half the queue over the publishers present in it) waits, its data
//! left in TCP; the others go on. A flooding publisher is thus paced to
//! what the subscribers take, and an honest one's frames still fit.

use crate::queue::{Pool, Ring, Seen};
use crate::shard::{Msg, Pending, Shards, Tx};
use crate::wire::{self, Malformed, Parsed};
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;

pub use crate::config::{Counters, RelayConfig, SlowPolicy};

/// A queued frame: the queue position where it ends, when it arrived
/// (for the latency histogram), its size and its publisher.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    end: u64,
    at: u64,
    len: u32,
    publisher: u64,
}

/// One subscriber's queue.
#[derive(Debug)]
struct Subscriber {
    ring: Ring,
    stamps: VecDeque<Stamp>,
    /// Bytes each publisher has in the queue (those with any).
    shares: Vec<(u64, usize)>,
    /// Bytes ever queued, and ever written.
    queued: u64,
    written: u64,
    waker: Option<Waker>,
    closed: bool,
    /// Since when the queue is over half full (the relay's clock), and
    /// `written` then.
    over_since: Option<(u64, u64)>,
    /// Slow under the skip policy: frames are skipped for it until it
    /// drains to half.
    lagging: bool,
    /// When its queue last became empty (the relay's clock).
    empty_since: u64,
}

impl Subscriber {
    /// Whether publishers wait for it.
    fn holds_back(&self) -> bool {
        !self.closed && !self.lagging && self.over_since.is_some()
    }

    /// Whether `publisher` has its share of this queue's first half.
    fn over_share(&self, publisher: u64, half: usize) -> bool {
        let mine = self
            .shares
            .iter()
            .find(|(p, _)| *p == publisher)
            .map_or(0, |(_, b)| *b);
        mine > 0 && mine >= half / self.shares.len().max(1)
    }

    /// Applies the slow-subscriber policy to it: dropped (counted) or
    /// skipped until it drains.
    fn slow(&mut self, policy: SlowPolicy, c: &mut Counters) {
        match policy {
            SlowPolicy::Skip => self.lagging = true,
            SlowPolicy::Drop => {
                self.closed = true;
                c.dropped_subscribers += 1;
                if let Some(w) = self.waker.take() {
                    w.wake();
                }
            }
        }
    }

    fn memory(&self) -> usize {
        self.ring.capacity()
            + self.stamps.capacity() * std::mem::size_of::<Stamp>()
            + self.shares.capacity() * std::mem::size_of::<(u64, usize)>()
    }
}

/// Identifies a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubId(usize);

/// Identifies a publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PubId(pub(crate) u64);

/// What a subscriber's writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write these many bytes (copied into the buffer lent).
    Write(usize),
    /// Nothing queued: wait (the waker is registered, the buffer given
    /// back).
    Wait,
    /// Dropped for being slow, or the relay closed: stop.
    Closed,
}

/// What [`Relay::take`] did with a publisher's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Bytes consumed (whole frames).
    pub used: usize,
    /// Whole frames among them.
    pub frames: usize,
    /// The size of the frame in progress after them, as far as known (a
    /// header's, until the header is in); 0 if none.
    pub pending: usize,
}

/// The relay's state.
#[derive(Debug)]
pub struct Relay {
    pub(crate) cfg: RelayConfig,
    pub(crate) seen: Seen,
    subs: Vec<Option<Subscriber>>,
    pub(crate) next_publisher: u64,
    /// What was counted.
    pub counters: Counters,
    latency: Option<sprint::metrics::Histogram>,
    /// Publishers waiting for room (see [`Relay::poll_room`]).
    paused: Vec<(u64, Waker)>,
    pool: Pool,
    /// When the pool was last trimmed (the relay's clock).
    pool_trimmed: u64,
    /// The P2P side (`p2p/`): its peers and recent transactions.
    pub(crate) p2p: crate::p2p::node::Node,
    /// On more than one worker, this worker's part in deciding what is
    /// new (`shard.rs`); `seen` then holds what was delivered here.
    pub(crate) shards: Option<Shards>,
}

impl Relay {
    /// A relay; `latency` (a Sprint named histogram) records each
    /// delivery's time from the frame's arrival to its write.
    pub fn new(cfg: RelayConfig, latency: Option<sprint::metrics::Histogram>) -> Relay {
        Relay {
            seen: Seen::new(cfg.seen),
            p2p: crate::p2p::node::Node::new(cfg.p2p.clone(), cfg.magic, cfg.seen),
            cfg,
            subs: Vec::new(),
            next_publisher: 0,
            counters: Counters::default(),
            latency,
            // Room for a publisher each without growing in the steady state.
            paused: Vec::with_capacity(64),
            pool: Pool::default(),
            pool_trimmed: sprint::metrics::now_raw(),
            shards: None,
        }
    }

    /// Makes this relay worker `me` of the workers `shared` joins: what
    /// is new is then decided by each wtxid's owner over the mesh
    /// (`shard.rs`), and [`Relay::outgoing`] and [`Relay::mesh`] carry
    /// the messages.
    pub fn join_workers(&mut self, me: usize, shared: Arc<crate::shard::Shared>) {
        self.shards = Some(Shards::new(me, shared, self.cfg.seen));
    }

    /// The next message for another worker (the worker's pump sends it),
    /// or `None` with `waker` registered for when there is one.
    pub fn outgoing(&mut self, waker: &Waker) -> Option<(usize, Msg)> {
        let m = self.shards.as_mut()?.next_out(waker);
        self.unhold();
        m
    }

    /// A message from another worker, taken at `now`.
    pub fn mesh(&mut self, m: Msg, now: u64) {
        let Some(sh) = self.shards.as_mut() else {
            return;
        };
        match m {
            Msg::Ask { from, seq, wtxid } => sh.ask(from as usize, seq, wtxid),
            Msg::Verdict { seq, new } => {
                sh.verdict(seq, new);
                self.decide(now);
            }
            Msg::Deliver(tx) => {
                self.counters.mesh_received += 1;
                if self.seen.insert(tx.wtxid) {
                    // Frames from another worker count as one publisher
                    // per worker in the queues' shares.
                    let publisher = u64::MAX - tx.source as u64;
                    self.fanout(publisher, &tx.frame, tx.wtxid, tx.txid, tx.at, now, None);
                }
            }
            Msg::Relief => self.wake_paused(),
        }
    }

    /// Delivers the transactions at the front of `pending` whose verdict
    /// is in, in arrival order, and sends each new one to the other
    /// workers.
    fn decide(&mut self, now: u64) {
        while let Some((new, len)) = self.shards.as_ref().and_then(Shards::front) {
            if new && !self.fits(len, now) {
                // Taken when a queue drains (`written`) or its subscriber
                // goes; the publishers wait meanwhile (`held_back`).
                break;
            }
            let Some(p) = self.shards.as_mut().and_then(Shards::pop) else {
                break;
            };
            if !new {
                self.counters.duplicates += 1;
                continue;
            }
            self.seen.insert(p.tx.wtxid);
            self.counters.relayed += 1;
            let tx = p.tx;
            self.fanout(
                p.publisher,
                &tx.frame,
                tx.wtxid,
                tx.txid,
                tx.at,
                now,
                p.from,
            );
            let Some(sh) = self.shards.as_mut() else {
                return;
            };
            let tx = Arc::new(tx);
            let me = sh.me;
            for to in (0..sh.n).filter(|&w| w != me) {
                sh.post(to, Msg::Deliver(tx.clone()));
                self.counters.mesh_sent += 1;
            }
        }
        self.unhold();
    }

    /// Wakes the publishers that waited for the other workers once this
    /// worker no longer holds too much for them.
    fn unhold(&mut self) {
        if let Some(sh) = self.shards.as_mut() {
            if sh.held && !sh.held_back() {
                sh.held = false;
                self.wake_paused();
            }
        }
    }

    /// Tells the other workers whether this one's subscriber queues are
    /// over half full (their publishers wait while one is).
    fn recheck_pressure(&mut self) {
        if let Some(sh) = self.shards.as_mut() {
            sh.press(self.subs.iter().flatten().any(Subscriber::holds_back));
        }
    }

    /// Where the P2P side listens (bound), for the `version` it sends.
    pub fn set_p2p_addr(&mut self, a: std::net::SocketAddr) {
        self.p2p.listen = Some(a);
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.cfg
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.counters.subscribers as usize
    }

    fn connected(&mut self) {
        let c = &mut self.counters;
        c.peak_connections = c.peak_connections.max(c.publishers + c.subscribers);
    }

    /// A new publisher, or `None` (counted) when the cap is reached: the
    /// caller closes the connection.
    pub fn publish(&mut self) -> Option<PubId> {
        if self.counters.publishers as usize >= self.cfg.max_publishers {
            self.counters.refused_publishers += 1;
            return None;
        }
        self.counters.publishers += 1;
        self.connected();
        self.next_publisher += 1;
        Some(PubId(self.next_publisher))
    }

    /// A publisher went away.
    pub fn unpublish(&mut self, id: PubId) {
        self.counters.publishers -= 1;
        self.paused.retain(|(p, _)| *p != id.0);
    }

    /// A new subscriber, or `None` (counted) when the cap is reached. It
    /// holds no queue memory until frames come.
    pub fn subscribe(&mut self, now: u64) -> Option<SubId> {
        if self.counters.subscribers as usize >= self.cfg.max_subscribers {
            self.counters.refused_subscribers += 1;
            return None;
        }
        self.counters.subscribers += 1;
        self.connected();
        let s = Subscriber {
            ring: Ring::new(self.cfg.queue_bytes),
            stamps: VecDeque::new(),
            shares: Vec::new(),
            queued: 0,
            written: 0,
            waker: None,
            closed: false,
            over_since: None,
            lagging: false,
            empty_since: now,
        };
        if let Some(i) = self.subs.iter().position(Option::is_none) {
            self.subs[i] = Some(s);
            return Some(SubId(i));
        }
        self.subs.push(Some(s));
        Some(SubId(self.subs.len() - 1))
    }

    /// A subscriber went away; `hung_up` if it closed, reset or sent
    /// something (counted).
    pub fn unsubscribe(&mut self, id: SubId, hung_up: bool) {
        if let Some(slot) = self.subs.get_mut(id.0) {
            if slot.take().is_some() {
                self.counters.subscribers -= 1;
                self.counters.hung_up_subscribers += u64::from(hung_up);
            }
        }
        self.recheck_pressure();
        self.wake_paused();
    }

    /// Whether publisher `p` may read more at `now`, without waiting; the
    /// slow-subscriber policy is applied on the way (see
    /// [`Relay::poll_room`]).
    pub fn room(&mut self, p: PubId, now: u64) -> bool {
        let mut room = self.judge(Some(p.0), now);
        if let Some(sh) = self.shards.as_mut() {
            if room && sh.held_back() {
                sh.held = true;
                room = false;
            }
        }
        self.counters.paused += u64::from(!room);
        room
    }

    /// Applies the slow-subscriber policy at `now` to the queues over
    /// half full; then whether publisher `p` (if any) may read more.
    fn judge(&mut self, p: Option<u64>, now: u64) -> bool {
        let grace = self.cfg.slow_after.as_nanos() as u64;
        let half = self.cfg.queue_bytes / 2;
        let (policy, c) = (self.cfg.slow, &mut self.counters);
        let (mut room, mut judged) = (true, false);
        for s in self.subs.iter_mut().flatten().filter(|s| s.holds_back()) {
            if let Some((since, mark)) = s.over_since {
                if sprint::metrics::nanos_between(since, now) >= grace {
                    if s.written - mark >= half as u64 {
                        // It keeps up, only not with everyone at once.
                        s.over_since = Some((now, s.written));
                    } else {
                        s.slow(policy, c);
                        judged = true;
                        continue;
                    }
                }
            }
            if p.is_some_and(|p| s.over_share(p, half)) {
                room = false;
            }
        }
        if judged {
            self.recheck_pressure();
            // A delivery from another worker may wait for this queue.
            if self.shards.is_some() {
                self.wake_paused();
            }
        }
        room
    }

    /// Whether another worker's frame of `len` bytes fits every queue
    /// that takes frames now (the slow-subscriber policy applied first);
    /// if not, `waker` is woken when one drains or goes. Taking it would
    /// otherwise find a full queue and let its subscriber go, where a
    /// publisher on this worker would have waited.
    pub fn poll_fits(&mut self, len: usize, waker: &Waker, now: u64) -> bool {
        if self.fits(len, now) {
            return true;
        }
        self.paused.push((u64::MAX, waker.clone()));
        false
    }

    /// Whether a frame of `len` bytes fits every queue that takes frames
    /// now, the slow-subscriber policy applied first if not. A frame
    /// larger than a whole queue never fits: the policy takes it.
    fn fits(&mut self, len: usize, now: u64) -> bool {
        let fits = |subs: &[Option<Subscriber>]| {
            subs.iter()
                .flatten()
                .all(|s| s.closed || s.lagging || s.ring.free() >= len)
        };
        if len > self.cfg.queue_bytes || fits(&self.subs) {
            return true;
        }
        self.judge(None, now);
        fits(&self.subs)
    }

    /// Whether publisher `p` may read more at `now`. Not while a
    /// subscriber's queue is over half full and `p` holds its share of it:
    /// `waker` is woken when a queue drains, and meanwhile the publisher's
    /// data waits in its socket, so TCP slows it down. When the relay
    /// itself is behind, every queue fills and drains in turn and nothing
    /// is dropped; a queue that stays over half full for `slow_after`
    /// without sending half a queue meanwhile is a slow subscriber, and
    /// the policy applies to it here (so call this again by then).
    pub fn poll_room(&mut self, p: PubId, waker: &Waker, now: u64) -> bool {
        if self.room(p, now) {
            return true;
        }
        match self.paused.iter_mut().find(|(q, _)| *q == p.0) {
            Some((_, w)) if w.will_wake(waker) => {}
            Some((_, w)) => *w = waker.clone(),
            None => self.paused.push((p.0, waker.clone())),
        }
        false
    }

    /// Wakes the waiting publishers, to look again.
    fn wake_paused(&mut self) {
        for (_, w) in self.paused.drain(..) {
            w.wake();
        }
    }

    /// Takes what the buffer `buf` holds of publisher `p`'s stream: every
    /// whole frame is relayed; returns what was consumed, or the first
    /// malformed frame (counted; the caller closes the connection).
    pub fn take(&mut self, p: PubId, buf: &[u8], now: u64) -> Result<Taken, Malformed> {
        let mut t = Taken {
            used: 0,
            frames: 0,
            pending: 0,
        };
        loop {
            match wire::parse(&buf[t.used..], self.cfg.magic, self.cfg.max_payload) {
                Ok(Parsed::Need(n)) => {
                    if t.used < buf.len() {
                        t.pending = n;
                    }
                    return Ok(t);
                }
                Ok(Parsed::Tx { payload, len, hash }) => {
                    self.counters.frames += 1;
                    let frame = &buf[t.used..t.used + len];
                    if let Err(e) = self.relay(p, frame, payload, hash, now, None, None) {
                        self.count(&e);
                        return Err(e);
                    }
                    t.used += len;
                    t.frames += 1;
                }
                Err(e) => {
                    self.count(&e);
                    return Err(e);
                }
            }
        }
    }

    fn count(&mut self, e: &Malformed) {
        let c = &mut self.counters;
        match e {
            Malformed::BadMagic(_) => c.bad_magic += 1,
            Malformed::Oversize { .. } => c.oversize += 1,
            Malformed::BadChecksum => c.bad_checksum += 1,
            Malformed::Command(_) => c.bad_command += 1,
            Malformed::Undecodable(_) => c.undecodable += 1,
        }
    }

    /// `hash` is the payload's double SHA-256 (the checksum's). The
    /// payload is the transaction's full serialisation, witness included,
    /// so `hash` is its wtxid (BIP 141; the txid when there is no
    /// witness): the duplicate key. A txid key would let a copy with a
    /// malleated witness, sent first, censor the honest transaction.
    ///
    /// With a P2P side, a new transaction is also kept and announced to
    /// the peers but `from` (its source, if a peer): that needs its txid,
    /// given when the caller decoded it already, else decoded here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn relay(
        &mut self,
        p: PubId,
        frame: &[u8],
        payload: &[u8],
        hash: [u8; 32],
        now: u64,
        from: Option<crate::p2p::PeerId>,
        mut txid: Option<[u8; 32]>,
    ) -> Result<(), Malformed> {
        if txid.is_none() && (self.cfg.decode || self.p2p.on()) {
            let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(payload)
                .map_err(|e| Malformed::Undecodable(e.to_string()))?;
            // Only the canonical serialisation's hash is the wtxid. The
            // bitcoin crate also decodes a transaction without inputs from
            // the segwit form with no witness (found by the fuzzer), which
            // Bitcoin Core refuses as a superfluous witness record; its
            // hash would be a second key for the same transaction.
            if tx.total_size() != payload.len() {
                return Err(Malformed::Undecodable(format!(
                    "not the canonical serialisation ({} bytes, canonically {})",
                    payload.len(),
                    tx.total_size()
                )));
            }
            if self.p2p.on() {
                use bitcoin::hashes::Hash;
                txid = Some(tx.compute_txid().to_byte_array());
            }
        }
        let Some(sh) = self.shards.as_mut() else {
            if !self.seen.insert(hash) {
                self.counters.duplicates += 1;
                return Ok(());
            }
            self.counters.relayed += 1;
            self.fanout(p.0, frame, hash, txid, now, now, from);
            return Ok(());
        };
        // On several workers: delivered here before, a duplicate at once;
        // else its owner decides (`shard.rs`).
        if self.seen.contains(&hash) {
            self.counters.duplicates += 1;
            return Ok(());
        }
        let tx = Tx {
            frame: frame.into(),
            wtxid: hash,
            txid,
            at: now,
            source: sh.me,
        };
        let asks = crate::shard::owner(&hash, sh.n) != sh.me;
        sh.admit(Pending {
            tx,
            publisher: p.0,
            from,
            verdict: None,
        });
        self.counters.mesh_questions += u64::from(asks);
        self.decide(now);
        Ok(())
    }

    /// Queues a new transaction's frame (which arrived at `at`) to every
    /// subscriber and, with a P2P side, keeps and announces it to the
    /// peers but `from`.
    #[allow(clippy::too_many_arguments)]
    fn fanout(
        &mut self,
        p: u64,
        frame: &[u8],
        hash: [u8; 32],
        txid: Option<[u8; 32]>,
        at: u64,
        now: u64,
        from: Option<crate::p2p::PeerId>,
    ) {
        let half = self.cfg.queue_bytes / 2;
        let mut pressed = false;
        for s in self.subs.iter_mut().flatten() {
            if s.closed {
                continue;
            }
            if s.lagging || s.ring.free() < frame.len() {
                s.slow(self.cfg.slow, &mut self.counters);
                if s.lagging {
                    self.counters.skipped += 1;
                }
                continue;
            }
            s.ring.push(frame);
            if s.ring.len() > half && s.over_since.is_none() {
                s.over_since = Some((now, s.written));
                pressed = true;
            }
            s.queued += frame.len() as u64;
            s.stamps.push_back(Stamp {
                end: s.queued,
                at,
                len: frame.len() as u32,
                publisher: p,
            });
            match s.shares.iter_mut().find(|(q, _)| *q == p) {
                Some((_, b)) => *b += frame.len(),
                None => s.shares.push((p, frame.len())),
            }
            self.counters.deliveries += 1;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
        if let (true, Some(sh)) = (pressed, self.shards.as_mut()) {
            sh.press(true);
        }
        if let (Some(txid), true) = (txid, self.p2p.on()) {
            let payload = &frame[wire::HEADER..];
            self.p2p
                .offer(txid, hash, payload, from, at, &mut self.counters.p2p);
        }
    }

    /// A subscriber's writer asks what to write next: the queued bytes
    /// are copied into `out` (a buffer lent from the pool if it has none);
    /// when nothing is queued, the buffer goes back to the pool and
    /// `waker` is registered.
    pub fn next(&mut self, id: SubId, out: &mut Option<Box<[u8]>>, waker: &Waker) -> Next {
        let Some(Some(s)) = self.subs.get_mut(id.0) else {
            return Next::Closed;
        };
        if s.closed {
            return Next::Closed;
        }
        if s.ring.len() == 0 {
            match &s.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => s.waker = Some(waker.clone()),
            }
            if let Some(b) = out.take() {
                self.pool.give_back(b);
            }
            return Next::Wait;
        }
        if out.is_none() {
            // Counted only when the pool has nothing spare (rare: it keeps
            // what it grew to until a trim).
            let busy = if self.pool.has_spare() {
                0
            } else {
                // Those with bytes queued now, and at least the first few
                // connected (eight at most, 512 KiB): a peak of writers
                // at once that the warm-up did not see then allocates
                // nothing.
                let (mut busy, mut live) = (0, 0);
                for s in self.subs.iter().flatten().filter(|s| !s.closed) {
                    live += 1;
                    busy += usize::from(s.ring.len() > 0);
                }
                busy.max(live.min(8))
            };
            *out = Some(self.pool.lend(busy));
        }
        let (Some(Some(s)), Some(buf)) = (self.subs.get_mut(id.0), out.as_mut()) else {
            unreachable!("the subscriber was found and a buffer lent above")
        };
        Next::Write(s.ring.peek(buf))
    }

    /// A write buffer lent by [`Relay::next`] comes back.
    pub fn give_back(&mut self, buf: Box<[u8]>) {
        self.pool.give_back(buf);
    }

    /// A subscriber's writer wrote `n` bytes at `now`.
    pub fn written(&mut self, id: SubId, n: usize, now: u64) {
        let Some(Some(s)) = self.subs.get_mut(id.0) else {
            return;
        };
        let was_over = s.over_since.is_some();
        s.ring.consume(n);
        s.written += n as u64;
        if s.ring.len() == 0 {
            s.empty_since = now;
        }
        if s.ring.len() <= self.cfg.queue_bytes / 2 {
            s.over_since = None;
            s.lagging = false;
        }
        let relieved = was_over && s.over_since.is_none();
        while let Some(&st) = s.stamps.front() {
            if st.end > s.written {
                break;
            }
            s.stamps.pop_front();
            if let Some(i) = s.shares.iter().position(|(q, _)| *q == st.publisher) {
                s.shares[i].1 -= st.len as usize;
                if s.shares[i].1 == 0 {
                    s.shares.swap_remove(i);
                }
            }
            if let Some(h) = &self.latency {
                h.record_ns(sprint::metrics::nanos_between(st.at, now));
            }
        }
        if self.shards.is_some() {
            // A transaction of this worker's may wait for the room.
            self.decide(now);
        }
        if was_over || (self.shards.is_some() && !self.paused.is_empty()) {
            if relieved {
                self.recheck_pressure();
            }
            self.wake_paused();
        }
    }

    /// Gives back the memory of queues empty since `trim_after` before
    /// `now`, and of write buffers unused for a whole `trim_after`; call
    /// it every `trim_after` or more often. Also updates
    /// `counters.queue_memory`.
    pub fn trim(&mut self, now: u64) {
        let after = self.cfg.trim_after.as_nanos() as u64;
        let mut bytes = 0;
        for s in self.subs.iter_mut().flatten() {
            if s.ring.len() == 0 && sprint::metrics::nanos_between(s.empty_since, now) >= after {
                s.ring.release();
                s.stamps = VecDeque::new();
                s.shares = Vec::new();
            }
            bytes += s.memory();
        }
        // The pool counts its unused spares from one trim to the next:
        // trimmed once a `trim_after`, however often this is called (the
        // housekeeping calls it at most a second apart, and a spare unused
        // for one second freed and made again was an allocation in the
        // steady state).
        if sprint::metrics::nanos_between(self.pool_trimmed, now) >= after {
            self.pool.trim();
            self.pool_trimmed = now;
        }
        self.counters.queue_memory = (bytes + self.pool.bytes()) as u64;
        if self.shards.is_some() {
            // The publishers that would judge a slow subscriber may all be
            // on other workers, waiting for this one's pressure to clear.
            self.judge(None, now);
        }
        if self.p2p.on() {
            self.p2p.expire(std::time::Instant::now());
            self.counters.p2p.stored = self.p2p.store.len() as u64;
            self.counters.p2p.stored_bytes = self.p2p.store.bytes() as u64;
        }
    }
}
