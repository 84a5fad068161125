//! The relay on N workers: each worker owns the connections the kernel
//! gave its listeners (SO_REUSEPORT), and the workers agree on which
//! transactions are new through [`sprint::mesh`], Sprint's rings between
//! workers. Nothing else is shared: a peer's or a subscriber's traffic
//! never leaves its worker except as a mesh message.
//!
//! Who decides. Each wtxid belongs to one worker's shard (its first eight
//! bytes modulo N). That worker's `owned` set is the one place where "new
//! or duplicate" is decided, once per transaction, whichever worker it
//! arrived on.
//!
//! How a transaction travels, arriving on worker A (owner S):
//! 1. A keeps it, in arrival order, in `pending` and asks S (`Ask`); if
//!    A is S it decides at once. A transaction A has delivered before is
//!    a duplicate at once, without asking.
//! 2. S answers `Verdict`: new or not.
//! 3. A takes verdicts in arrival order (a new transaction once it fits
//!    its subscriber queues, as one from another worker): it is delivered
//!    to A's own subscribers and peers and sent once to every other
//!    worker (`Deliver`, one shared copy), which deliver it to theirs.
//!
//! So the transaction's bytes cross one core boundary (A to each other
//! worker), its 32-byte key two (the question and the answer), and every
//! subscriber and peer gets a source's transactions in the order the
//! source sent them: a worker delivers A's transactions in the order A
//! sends them, and A sends them in arrival order. Answering at A rather
//! than forwarding from S is what keeps that order: two transactions of
//! one source owned by different workers would otherwise race.
//!
//! Backpressure. A worker takes another's transaction only once it fits
//! every subscriber queue that takes it (the ring fills meanwhile, and
//! its sender waits). A's publishers wait (as for a full local queue)
//! while A holds more than [`LIMIT`] transactions waiting for a verdict
//! or messages (or [`LIMIT_BYTES`] bytes) waiting for room in a ring, and
//! while another worker's
//! subscriber queue is over half full (`pressure`, one flag per worker,
//! cleared with a `Relief` message to every worker). Within a worker,
//! a publisher waits only while it holds its share of a full queue
//! (`core.rs`); across workers the signal is per worker, not per
//! publisher: a flood on one worker slows the publishers of the others
//! too, and nothing is dropped for it.

use crate::queue::Seen;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;

/// Transactions waiting for a verdict, or messages waiting for room, at
/// which a worker's publishers wait.
pub const LIMIT: usize = 4_096;

/// Bytes of transactions waiting for room in the rings to the other
/// workers at which a worker's publishers wait.
pub const LIMIT_BYTES: usize = 8 << 20;

/// A transaction on its way to the other workers: its frame as it came
/// (header and payload), its ids and its arrival time.
#[derive(Debug)]
pub struct Tx {
    pub(crate) frame: Box<[u8]>,
    pub(crate) wtxid: [u8; 32],
    pub(crate) txid: Option<[u8; 32]>,
    /// `sprint::metrics::now_raw()` on arrival (the TSC where it is
    /// invariant, so comparable between cores).
    pub(crate) at: u64,
    /// The worker it arrived on.
    pub(crate) source: usize,
}

/// What workers tell each other.
#[derive(Debug)]
pub enum Msg {
    /// Is this wtxid new? Worker `from` asks, for its `seq`-th pending
    /// transaction.
    Ask {
        /// The asking worker.
        from: u32,
        /// The asker's sequence number for it.
        seq: u64,
        /// The wtxid.
        wtxid: [u8; 32],
    },
    /// The owner's answer to the `seq`-th question.
    Verdict {
        /// The asker's sequence number.
        seq: u64,
        /// Whether it is new.
        new: bool,
    },
    /// A new transaction, for the receiver's subscribers and peers.
    Deliver(Arc<Tx>),
    /// The sender's subscriber queues are no longer over half full.
    Relief,
}

/// What the workers share: one pressure flag each.
#[derive(Debug)]
pub struct Shared {
    pressure: Vec<AtomicBool>,
}

impl Shared {
    /// For `n` workers.
    pub fn new(n: usize) -> Arc<Shared> {
        Arc::new(Shared {
            pressure: (0..n).map(|_| AtomicBool::new(false)).collect(),
        })
    }
}

/// The worker whose shard holds `wtxid`, of `n`.
pub fn owner(wtxid: &[u8; 32], n: usize) -> usize {
    let mut b = [0u8; 8];
    b.copy_from_slice(&wtxid[..8]);
    (u64::from_le_bytes(b) % n as u64) as usize
}

/// A transaction waiting for its verdict.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) tx: Tx,
    pub(crate) publisher: u64,
    pub(crate) from: Option<crate::p2p::PeerId>,
    pub(crate) verdict: Option<bool>,
}

/// One worker's side of the sharded relay.
#[derive(Debug)]
pub(crate) struct Shards {
    pub(crate) me: usize,
    pub(crate) n: usize,
    /// The authoritative set for this worker's shard.
    owned: Seen,
    pub(crate) pending: VecDeque<Pending>,
    /// Bytes of the transactions in `pending`.
    pending_bytes: usize,
    /// The sequence number of `pending`'s front.
    head: u64,
    /// Messages for each worker, in order, until the pump sends them.
    outbox: Vec<VecDeque<Msg>>,
    queued: usize,
    /// Bytes of the transactions among them.
    queued_bytes: usize,
    pump: Option<Waker>,
    shared: Arc<Shared>,
    /// This worker's own pressure flag as last stored.
    pressed: bool,
    /// A publisher waited for [`Shards::held_back`]: wake the waiting
    /// ones when it clears.
    pub(crate) held: bool,
}

impl Shards {
    pub(crate) fn new(me: usize, shared: Arc<Shared>, seen: usize) -> Shards {
        let n = shared.pressure.len();
        Shards {
            me,
            n,
            owned: Seen::new(seen),
            pending: VecDeque::new(),
            pending_bytes: 0,
            head: 0,
            outbox: (0..n).map(|_| VecDeque::new()).collect(),
            queued: 0,
            queued_bytes: 0,
            pump: None,
            shared,
            pressed: false,
            held: false,
        }
    }

    /// Queues `m` for worker `to` and wakes the pump.
    pub(crate) fn post(&mut self, to: usize, m: Msg) {
        if let Msg::Deliver(tx) = &m {
            self.queued_bytes += tx.frame.len();
        }
        self.outbox[to].push_back(m);
        self.queued += 1;
        if let Some(w) = self.pump.take() {
            w.wake();
        }
    }

    /// The next message to send, or `None` with `waker` registered.
    pub(crate) fn next_out(&mut self, waker: &Waker) -> Option<(usize, Msg)> {
        for (to, q) in self.outbox.iter_mut().enumerate() {
            if let Some(m) = q.pop_front() {
                self.queued -= 1;
                if let Msg::Deliver(tx) = &m {
                    self.queued_bytes -= tx.frame.len();
                }
                return Some((to, m));
            }
        }
        match &self.pump {
            Some(w) if w.will_wake(waker) => {}
            _ => self.pump = Some(waker.clone()),
        }
        None
    }

    /// Queues a transaction that arrived here and asks its owner (or
    /// decides, if that is this worker).
    pub(crate) fn admit(&mut self, p: Pending) {
        let seq = self.head + self.pending.len() as u64;
        let to = owner(&p.tx.wtxid, self.n);
        let wtxid = p.tx.wtxid;
        self.pending_bytes += p.tx.frame.len();
        self.pending.push_back(p);
        if to == self.me {
            let new = self.owned.insert(wtxid);
            if let Some(last) = self.pending.back_mut() {
                last.verdict = Some(new);
            }
        } else {
            let from = self.me as u32;
            self.post(to, Msg::Ask { from, seq, wtxid });
        }
    }

    /// Another worker asks: decide, and answer it.
    pub(crate) fn ask(&mut self, from: usize, seq: u64, wtxid: [u8; 32]) {
        let new = self.owned.insert(wtxid);
        self.post(from, Msg::Verdict { seq, new });
    }

    /// An answer to one of this worker's questions.
    pub(crate) fn verdict(&mut self, seq: u64, new: bool) {
        let i = seq.wrapping_sub(self.head) as usize;
        if let Some(p) = self.pending.get_mut(i) {
            p.verdict = Some(new);
        }
    }

    /// The front transaction's verdict and size, if its verdict is in.
    pub(crate) fn front(&self) -> Option<(bool, usize)> {
        let p = self.pending.front()?;
        Some((p.verdict?, p.tx.frame.len()))
    }

    /// Takes the front transaction (whose verdict is in).
    pub(crate) fn pop(&mut self) -> Option<Pending> {
        let p = self.pending.pop_front()?;
        self.head += 1;
        self.pending_bytes -= p.tx.frame.len();
        Some(p)
    }

    /// Whether this worker holds too much for the others (its publishers
    /// wait), or another worker is under pressure.
    pub(crate) fn held_back(&self) -> bool {
        if self.pending.len() >= LIMIT
            || self.pending_bytes >= LIMIT_BYTES
            || self.queued >= LIMIT
            || self.queued_bytes >= LIMIT_BYTES
        {
            return true;
        }
        self.shared
            .pressure
            .iter()
            .enumerate()
            .any(|(i, f)| i != self.me && f.load(Ordering::Relaxed))
    }

    /// Records whether this worker's subscriber queues are over half
    /// full; on relief, tells every other worker.
    pub(crate) fn press(&mut self, on: bool) {
        if on == self.pressed {
            return;
        }
        self.pressed = on;
        self.shared.pressure[self.me].store(on, Ordering::Relaxed);
        if !on {
            let me = self.me;
            for to in (0..self.n).filter(|&i| i != me) {
                self.post(to, Msg::Relief);
            }
        }
    }
}
