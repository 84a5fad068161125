//! What the P2P side remembers: a bounded set of hashes (each peer's
//! known inventory, and the txids seen), and the store of recent
//! transactions `getdata` is answered from.
//!
//! Both forget the oldest first. The store is bounded twice, by bytes and
//! by age (as Bitcoin Core's relay memory keeps an announced transaction
//! for 15 minutes): a peer asking for a transaction announced long ago,
//! or pushed out by newer ones, gets `notfound`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A set of 32-byte hashes that forgets its oldest past `cap`. Grows with
/// use, up to `cap` (an idle peer holds nothing).
#[derive(Debug)]
pub(crate) struct Known {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    cap: usize,
}

impl Known {
    pub(crate) fn new(cap: usize) -> Known {
        Known {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub(crate) fn contains(&self, h: &[u8; 32]) -> bool {
        self.set.contains(h)
    }

    /// Whether either id is in the set (no hashing while it is empty).
    pub(crate) fn knows(&self, txid: &[u8; 32], wtxid: &[u8; 32]) -> bool {
        !self.set.is_empty() && (self.set.contains(txid) || self.set.contains(wtxid))
    }

    /// True if `h` is new.
    pub(crate) fn insert(&mut self, h: [u8; 32]) -> bool {
        if !self.set.insert(h) {
            return false;
        }
        self.order.push_back(h);
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// A transaction kept to answer `getdata`.
#[derive(Debug)]
pub(crate) struct Stored {
    /// Its serialisation, witness included.
    pub(crate) raw: Box<[u8]>,
    /// Its wtxid.
    pub(crate) wtxid: [u8; 32],
    /// Whether it has witness data (then a plain `MSG_TX` request gets it
    /// without).
    pub(crate) segwit: bool,
    /// When it arrived (`sprint::metrics::now_raw()`), to time serving it.
    pub(crate) at: u64,
}

/// Recent transactions by txid and by wtxid, bounded by bytes and age.
#[derive(Debug)]
pub(crate) struct TxStore {
    by_txid: HashMap<[u8; 32], Stored>,
    by_wtxid: HashMap<[u8; 32], [u8; 32]>,
    /// Txids oldest first, with when they came.
    order: VecDeque<([u8; 32], Instant)>,
    bytes: usize,
    max_bytes: usize,
    max_age: Duration,
}

impl TxStore {
    pub(crate) fn new(max_bytes: usize, max_age: Duration) -> TxStore {
        TxStore {
            by_txid: HashMap::new(),
            by_wtxid: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_age,
        }
    }

    /// Keeps a transaction (once; a second copy is ignored), then forgets
    /// what is past the bounds.
    pub(crate) fn insert(&mut self, txid: [u8; 32], s: Stored, now: Instant) {
        if s.raw.len() > self.max_bytes || self.by_txid.contains_key(&txid) {
            return;
        }
        self.bytes += s.raw.len();
        self.by_wtxid.insert(s.wtxid, txid);
        self.by_txid.insert(txid, s);
        self.order.push_back((txid, now));
        self.expire(now);
    }

    /// Forgets the oldest until within bytes and age.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some(&(txid, at)) = self.order.front() {
            if self.bytes <= self.max_bytes && now.saturating_duration_since(at) < self.max_age {
                break;
            }
            self.order.pop_front();
            if let Some(s) = self.by_txid.remove(&txid) {
                self.bytes -= s.raw.len();
                self.by_wtxid.remove(&s.wtxid);
            }
        }
    }

    pub(crate) fn by_txid(&self, txid: &[u8; 32]) -> Option<&Stored> {
        self.by_txid.get(txid)
    }

    pub(crate) fn by_wtxid(&self, wtxid: &[u8; 32]) -> Option<&Stored> {
        self.by_wtxid.get(wtxid).and_then(|t| self.by_txid.get(t))
    }

    /// Bytes held (the transactions' serialisations).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Transactions held.
    pub(crate) fn len(&self) -> usize {
        self.by_txid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(n: u8, len: usize) -> ([u8; 32], Stored) {
        let s = Stored {
            raw: vec![n; len].into_boxed_slice(),
            wtxid: [n ^ 0xff; 32],
            segwit: false,
            at: 0,
        };
        ([n; 32], s)
    }

    #[test]
    fn the_store_forgets_the_oldest_past_its_bytes_and_its_age() {
        let t0 = Instant::now();
        let mut s = TxStore::new(250, Duration::from_secs(60));
        for n in 0..3 {
            let (id, st) = stored(n, 100);
            s.insert(id, st, t0);
        }
        assert_eq!((s.len(), s.bytes()), (2, 200), "the first went for bytes");
        assert!(s.by_txid(&[0; 32]).is_none());
        assert_eq!(s.by_wtxid(&[0xfe; 32]).map(|x| x.raw[0]), Some(1));
        s.expire(t0 + Duration::from_secs(61));
        assert_eq!((s.len(), s.bytes()), (0, 0), "all went for age");
        assert!(s.by_wtxid(&[0xfe; 32]).is_none());
    }

    #[test]
    fn known_forgets_the_oldest_past_its_cap() {
        let mut k = Known::new(2);
        assert!(k.insert([1; 32]));
        assert!(!k.insert([1; 32]));
        k.insert([2; 32]);
        k.insert([3; 32]);
        assert!(!k.contains(&[1; 32]));
        assert!(k.contains(&[2; 32]) && k.contains(&[3; 32]));
    }
}
