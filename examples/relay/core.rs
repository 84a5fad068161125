//! The relay's logic, runtime-free: checking and deduplicating frames and
//! fanning them out into the subscribers' bounded queues. One relay lives
//! on one thread (a thread-per-core server), so it is plain `&mut` state.

use crate::wire::{self, Malformed, Parsed};
use bitcoin::hashes::Hash;
use std::collections::{HashSet, VecDeque};
use std::task::Waker;

/// What to do with a subscriber whose queue has no room for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowPolicy {
    /// Disconnect it (counted).
    Drop,
    /// Skip the frame for it (counted) and keep it.
    Skip,
}

impl std::str::FromStr for SlowPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drop" => Ok(SlowPolicy::Drop),
            "skip" => Ok(SlowPolicy::Skip),
            _ => Err(format!(
                "slow-subscriber policy must be drop or skip, not {s:?}"
            )),
        }
    }
}

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Decode each transaction with the `bitcoin` crate (its txid is the
    /// duplicate key); off, the key is the payload's double SHA-256 and
    /// nothing is allocated per message.
    pub decode: bool,
    /// The network's magic.
    pub magic: [u8; 4],
    /// The largest payload accepted.
    pub max_payload: usize,
    /// Transactions remembered for duplicate detection (oldest forgotten
    /// first).
    pub seen: usize,
    /// Bytes each subscriber's queue holds.
    pub queue_bytes: usize,
    /// What a slow subscriber gets.
    pub slow: SlowPolicy,
    /// How long a subscriber's queue may stay over half full before the
    /// subscriber counts as slow. Meanwhile publishers wait (the relay
    /// may itself be behind: then every queue drains in turn, and nothing
    /// is dropped). A full queue counts as slow at once.
    pub slow_after: std::time::Duration,
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
            slow_after: std::time::Duration::from_millis(500),
        }
    }
}

/// What the relay counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Frames read from publishers.
    pub frames: u64,
    /// New transactions relayed.
    pub relayed: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Frames queued to subscribers.
    pub deliveries: u64,
    /// Frames skipped for a slow subscriber (skip policy).
    pub skipped: u64,
    /// Subscribers disconnected for being slow (drop policy).
    pub dropped_subscribers: u64,
    /// Times a publisher found no room because a subscriber's queue was
    /// over half full (backpressure: its data stays in TCP meanwhile).
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
}

/// A bounded set of transaction ids: inserting past capacity forgets the
/// oldest. Sized once, so it does not allocate while it runs.
#[derive(Debug)]
struct Seen {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    cap: usize,
}

impl Seen {
    fn new(cap: usize) -> Seen {
        let cap = cap.max(1);
        let mut set = HashSet::with_capacity(cap + 1);
        let mut order = VecDeque::with_capacity(cap + 1);
        // Filled once and emptied, so that every page of both is touched
        // now and the steady state takes no page fault on them.
        for i in 0..=cap as u64 {
            let mut id = [0xffu8; 32];
            id[..8].copy_from_slice(&i.to_le_bytes());
            set.insert(id);
            order.push_back(id);
        }
        set.clear();
        order.clear();
        Seen { set, order, cap }
    }

    /// True if `id` is new.
    fn insert(&mut self, id: [u8; 32]) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// A byte ring of fixed size.
#[derive(Debug)]
struct Ring {
    buf: Box<[u8]>,
    head: usize,
    len: usize,
}

/// Touches every page of `buf`, so that the steady state takes no page
/// fault on it (zeroed allocations are mapped lazily).
pub fn prefault(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(4096) {
        // SAFETY: `i` is inside `buf`; a volatile write the compiler
        // cannot drop as redundant.
        unsafe { std::ptr::write_volatile(buf.as_mut_ptr().add(i), 0) };
    }
}

impl Ring {
    fn new(n: usize) -> Ring {
        let mut buf = vec![0; n.max(1)].into_boxed_slice();
        prefault(&mut buf);
        Ring {
            buf,
            head: 0,
            len: 0,
        }
    }

    fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    fn push(&mut self, data: &[u8]) {
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap;
        let first = data.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        self.len += data.len();
    }

    /// Copies up to `out.len()` queued bytes into `out` (without consuming).
    fn peek(&self, out: &mut [u8]) -> usize {
        let n = self.len.min(out.len());
        let cap = self.buf.len();
        let first = n.min(cap - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        n
    }

    fn consume(&mut self, n: usize) {
        self.head = (self.head + n) % self.buf.len();
        self.len -= n;
    }
}

/// One subscriber's queue.
#[derive(Debug)]
struct Subscriber {
    ring: Ring,
    /// Per queued frame: the queue position where it ends, and when its
    /// frame arrived (for the latency histogram).
    stamps: VecDeque<(u64, u64)>,
    /// Bytes ever queued, and ever written.
    queued: u64,
    written: u64,
    waker: Option<Waker>,
    closed: bool,
    /// Since when the queue is over half full (the relay's clock).
    over_since: Option<u64>,
    /// Over half full for longer than `slow_after`, under the skip
    /// policy: frames are skipped for it until it drains.
    lagging: bool,
}

impl Subscriber {
    /// Whether publishers wait for it.
    fn holds_back(&self) -> bool {
        !self.closed && !self.lagging && self.over_since.is_some()
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
}

/// Identifies a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubId(usize);

/// What a subscriber's writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write these many bytes (copied into the buffer given).
    Write(usize),
    /// Nothing queued: wait (the waker is registered).
    Wait,
    /// Dropped for being slow, or the relay closed: stop.
    Closed,
}

/// The relay's state.
#[derive(Debug)]
pub struct Relay {
    cfg: RelayConfig,
    seen: Seen,
    subs: Vec<Option<Subscriber>>,
    /// What was counted.
    pub counters: Counters,
    latency: Option<sprint::metrics::Histogram>,
    /// Publishers waiting for room (see [`Relay::poll_room`]).
    paused: Vec<Waker>,
}

impl Relay {
    /// A relay; `latency` (a Sprint named histogram) records each
    /// delivery's time from the frame's arrival to its write.
    pub fn new(cfg: RelayConfig, latency: Option<sprint::metrics::Histogram>) -> Relay {
        Relay {
            seen: Seen::new(cfg.seen),
            cfg,
            subs: Vec::new(),
            counters: Counters::default(),
            latency,
            // Room for a publisher each without growing in the steady state.
            paused: Vec::with_capacity(64),
        }
    }

    /// Whether a subscriber's queue holds publishers back.
    fn backlogged(&self) -> bool {
        self.subs.iter().flatten().any(Subscriber::holds_back)
    }

    /// Whether a publisher may read more at `now` (see
    /// [`Relay::poll_room`]), without waiting.
    pub fn room(&mut self, now: u64) -> bool {
        let grace = self.cfg.slow_after.as_nanos() as u64;
        let (policy, c) = (self.cfg.slow, &mut self.counters);
        for s in self.subs.iter_mut().flatten().filter(|s| s.holds_back()) {
            if s.over_since
                .is_some_and(|t| sprint::metrics::nanos_between(t, now) >= grace)
            {
                s.slow(policy, c);
            }
        }
        let room = !self.backlogged();
        self.counters.paused += u64::from(!room);
        room
    }

    /// Whether a publisher may read more at `now`. Not while a
    /// subscriber's queue is over half full: `waker` is woken once it has
    /// drained, and meanwhile the publishers' data waits in their sockets,
    /// so TCP slows them down. When the relay itself is behind, every
    /// queue fills and drains in turn and nothing is dropped; a queue that
    /// stays over half full for `slow_after` is a slow subscriber, and the
    /// policy applies to it here (so call this again by then).
    pub fn poll_room(&mut self, waker: &Waker, now: u64) -> bool {
        if self.room(now) {
            return true;
        }
        if !self.paused.iter().any(|w| w.will_wake(waker)) {
            self.paused.push(waker.clone());
        }
        false
    }

    /// Wakes the waiting publishers once the relay has caught up.
    fn resume(&mut self) {
        if !self.paused.is_empty() && !self.backlogged() {
            for w in self.paused.drain(..) {
                w.wake();
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.cfg
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.subs.iter().flatten().filter(|s| !s.closed).count()
    }

    /// A new subscriber.
    pub fn subscribe(&mut self) -> SubId {
        // One stamp per queued frame: a frame is at least a header, so this
        // never grows. Filled
        // once, so its pages are touched now, not in the steady state.
        let cap = self.cfg.queue_bytes / wire::HEADER + 1;
        let mut stamps = VecDeque::with_capacity(cap);
        stamps.resize(cap, (0, 0));
        stamps.clear();
        let s = Subscriber {
            ring: Ring::new(self.cfg.queue_bytes),
            stamps,
            queued: 0,
            written: 0,
            waker: None,
            closed: false,
            over_since: None,
            lagging: false,
        };
        if let Some(i) = self.subs.iter().position(Option::is_none) {
            self.subs[i] = Some(s);
            return SubId(i);
        }
        self.subs.push(Some(s));
        SubId(self.subs.len() - 1)
    }

    /// A subscriber went away.
    pub fn unsubscribe(&mut self, id: SubId) {
        if let Some(slot) = self.subs.get_mut(id.0) {
            *slot = None;
        }
        self.resume();
    }

    /// Takes what the buffer `buf` holds of a publisher's stream: every
    /// whole frame is relayed; returns the bytes consumed, or the first
    /// malformed frame (counted; the caller closes the connection).
    pub fn take(&mut self, buf: &[u8], now: u64) -> Result<usize, Malformed> {
        let mut used = 0;
        loop {
            match wire::parse(&buf[used..], self.cfg.magic, self.cfg.max_payload) {
                Ok(Parsed::Need(_)) => return Ok(used),
                Ok(Parsed::Tx { payload, len, hash }) => {
                    self.counters.frames += 1;
                    let frame = &buf[used..used + len];
                    if let Err(e) = self.relay(frame, payload, hash, now) {
                        self.count(&e);
                        return Err(e);
                    }
                    used += len;
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

    /// `hash` is the payload's double SHA-256 (the checksum's): the txid
    /// itself when the transaction carries no witness data, which spares
    /// hashing the payload a second time (hashing was a sixth of the
    /// relay's CPU at 50 000 transactions/s).
    fn relay(
        &mut self,
        frame: &[u8],
        payload: &[u8],
        hash: [u8; 32],
        now: u64,
    ) -> Result<(), Malformed> {
        let id = if self.cfg.decode {
            let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(payload)
                .map_err(|e| Malformed::Undecodable(e.to_string()))?;
            txid(&tx, hash)
        } else {
            hash
        };
        if !self.seen.insert(id) {
            self.counters.duplicates += 1;
            return Ok(());
        }
        self.counters.relayed += 1;
        let mark = self.cfg.queue_bytes / 2;
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
            if s.ring.len > mark && s.over_since.is_none() {
                s.over_since = Some(now);
            }
            s.queued += frame.len() as u64;
            s.stamps.push_back((s.queued, now));
            self.counters.deliveries += 1;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
        Ok(())
    }

    /// A subscriber's writer asks what to write next, into `out`.
    pub fn next(&mut self, id: SubId, out: &mut [u8], waker: &Waker) -> Next {
        let Some(Some(s)) = self.subs.get_mut(id.0) else {
            return Next::Closed;
        };
        if s.closed {
            return Next::Closed;
        }
        if s.ring.len == 0 {
            match &s.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => s.waker = Some(waker.clone()),
            }
            return Next::Wait;
        }
        Next::Write(s.ring.peek(out))
    }

    /// A subscriber's writer wrote `n` bytes at `now`.
    pub fn written(&mut self, id: SubId, n: usize, now: u64) {
        let Some(Some(s)) = self.subs.get_mut(id.0) else {
            return;
        };
        s.ring.consume(n);
        s.written += n as u64;
        if s.ring.len <= self.cfg.queue_bytes / 2 {
            s.over_since = None;
            s.lagging = false;
        }
        while let Some(&(end, at)) = s.stamps.front() {
            if end > s.written {
                break;
            }
            s.stamps.pop_front();
            if let Some(h) = &self.latency {
                h.record_ns(sprint::metrics::nanos_between(at, now));
            }
        }
        self.resume();
    }
}

/// The txid of `tx`, decoded from a payload whose double SHA-256 is
/// `payload_hash`: without witness data the payload is exactly the
/// serialisation the txid hashes. A transaction without inputs has no
/// witness either, but its payload is in the segwit form (its input
/// count 0 would read as the segwit marker), whose marker and flag the
/// txid does not cover: the fuzzer found that one.
pub fn txid(tx: &bitcoin::Transaction, payload_hash: [u8; 32]) -> [u8; 32] {
    if !tx.input.is_empty() && tx.input.iter().all(|i| i.witness.is_empty()) {
        payload_hash
    } else {
        tx.compute_txid().to_byte_array()
    }
}
