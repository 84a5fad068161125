//! The relay's memory that grows with traffic, not with connections: a
//! subscriber's byte ring, which grows on demand up to its limit, keeps
//! its capacity while busy and is released after it has stayed empty a
//! while; a pool of write buffers lent to the subscribers that have
//! something to send; and the bounded set of transactions seen.
//!
//! A connection that never carries traffic holds none of it. A busy one
//! reaches its working size once and then neither allocates nor faults:
//! the steady state of the hot path is allocation-free, as before, and
//! only a connection idle for `trim_after` gives its memory back.

use std::collections::{HashSet, VecDeque};

/// The smallest step a ring grows by.
const RING_CHUNK: usize = 64 << 10;

/// A byte ring that grows on demand up to `limit` bytes.
#[derive(Debug)]
pub(crate) struct Ring {
    buf: Box<[u8]>,
    head: usize,
    len: usize,
    limit: usize,
}

impl Ring {
    /// An empty ring that holds no memory yet.
    pub(crate) fn new(limit: usize) -> Ring {
        Ring {
            buf: Box::default(),
            head: 0,
            len: 0,
            limit: limit.max(1),
        }
    }

    /// Bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes it may still take, up to its limit (not its capacity now).
    pub(crate) fn free(&self) -> usize {
        self.limit - self.len
    }

    /// Bytes of memory it holds.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Gives its memory back if it is empty.
    pub(crate) fn release(&mut self) {
        if self.len == 0 {
            self.buf = Box::default();
            self.head = 0;
        }
    }

    /// Makes room for `more` bytes: a new buffer of the next size (doubling,
    /// at least one chunk, at most the limit) with the queued bytes moved
    /// to its start.
    fn grow(&mut self, more: usize) {
        let want = self.len + more;
        let mut size = self.buf.len().max(RING_CHUNK);
        while size < want {
            size *= 2;
        }
        let size = size.min(self.limit).max(want);
        let mut buf = vec![0u8; size].into_boxed_slice();
        let n = self.peek(&mut buf);
        debug_assert_eq!(n, self.len);
        self.buf = buf;
        self.head = 0;
    }

    /// Appends `data`; the caller checked [`Ring::free`].
    pub(crate) fn push(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= self.free());
        if self.buf.len() - self.len < data.len() {
            self.grow(data.len());
        }
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap;
        let first = data.len().min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        self.len += data.len();
    }

    /// Copies up to `out.len()` queued bytes into `out` (without consuming).
    pub(crate) fn peek(&self, out: &mut [u8]) -> usize {
        let n = self.len.min(out.len());
        if n == 0 {
            return 0;
        }
        let cap = self.buf.len();
        let first = n.min(cap - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        n
    }

    /// Drops the first `n` queued bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            0
        } else {
            (self.head + n) % self.buf.len()
        };
    }
}

/// Write buffers lent to subscribers while they have something to send,
/// so that an idle subscriber holds none. Buffers not needed over a whole
/// trim period are freed.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    spare: Vec<Box<[u8]>>,
    /// The fewest spares since the last trim: that many went unused.
    low: usize,
    /// Buffers lent and not given back.
    lent: usize,
    /// Buffers made and not freed by a trim: `spare` has room for them
    /// all, so a buffer given back never makes it grow.
    made: usize,
}

/// Bytes in one write buffer: what a subscriber sends in one operation.
pub const WRITE_BUF: usize = 64 << 10;

impl Pool {
    /// A buffer for one subscriber's write. `busy` is how many
    /// subscribers may write at once now (this one included): when the
    /// pool is empty it grows by what they all lack, not one buffer at a
    /// time, so that a later moment when more of them write together (in
    /// the steady state of a relay that warmed up) allocates nothing.
    pub(crate) fn lend(&mut self, busy: usize) -> Box<[u8]> {
        if self.spare.is_empty() {
            let want = busy.saturating_sub(self.lent).max(1);
            self.made += want;
            self.spare.reserve(self.made);
            for _ in 0..want {
                self.spare.push(vec![0u8; WRITE_BUF].into_boxed_slice());
            }
        }
        let b = self.spare.pop().unwrap_or_else(|| {
            self.made += 1;
            vec![0u8; WRITE_BUF].into_boxed_slice()
        });
        self.low = self.low.min(self.spare.len());
        self.lent += 1;
        b
    }

    /// Whether a buffer can be lent without allocating.
    pub(crate) fn has_spare(&self) -> bool {
        !self.spare.is_empty()
    }

    pub(crate) fn give_back(&mut self, b: Box<[u8]>) {
        self.lent = self.lent.saturating_sub(1);
        if b.len() == WRITE_BUF {
            self.spare.push(b);
        }
    }

    /// Frees the spares that went unused since the last trim.
    pub(crate) fn trim(&mut self) {
        let unused = self.low.min(self.spare.len());
        self.spare.truncate(self.spare.len() - unused);
        self.made = self.made.saturating_sub(unused);
        self.low = self.spare.len();
    }

    /// Bytes of memory it holds.
    pub(crate) fn bytes(&self) -> usize {
        self.spare.len() * WRITE_BUF
    }
}

/// A bounded set of transaction ids: inserting past capacity forgets the
/// oldest. Sized once, so it does not allocate while it runs.
#[derive(Debug)]
pub(crate) struct Seen {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    cap: usize,
}

impl Seen {
    pub(crate) fn new(cap: usize) -> Seen {
        let cap = cap.max(1);
        // Room for twice what it holds. Removals leave tombstones, and a
        // hash table out of free slots rehashes in place only while it is
        // at most half full; fuller, it allocates a larger table (once in
        // every few hundred thousand inserts at 20,000 ids, seen inside a
        // no-allocation window).
        let mut set = HashSet::with_capacity(2 * cap + 2);
        let mut order = VecDeque::with_capacity(cap + 1);
        // Filled once and emptied, so that every page of both is touched
        // now and the steady state takes no page fault on them.
        for i in 0..=2 * cap as u64 + 1 {
            let mut id = [0xffu8; 32];
            id[..8].copy_from_slice(&i.to_le_bytes());
            set.insert(id);
            if order.len() <= cap {
                order.push_back(id);
            }
        }
        set.clear();
        order.clear();
        Seen { set, order, cap }
    }

    /// Whether `id` is in the set.
    pub(crate) fn contains(&self, id: &[u8; 32]) -> bool {
        self.set.contains(id)
    }

    /// True if `id` is new.
    pub(crate) fn insert(&mut self, id: [u8; 32]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_grows_on_demand_keeps_order_and_releases_when_empty() {
        let mut r = Ring::new(300 << 10);
        assert_eq!(r.capacity(), 0);
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        r.push(&data[..50_000]);
        assert_eq!(r.capacity(), RING_CHUNK);
        let mut out = vec![0u8; 30_000];
        assert_eq!(r.peek(&mut out), 30_000);
        r.consume(30_000);
        // Wraps, then grows past a wrapped state.
        r.push(&data[50_000..100_000]);
        r.push(&data[100_000..200_000]);
        assert!(r.capacity() >= 170_000 && r.capacity() <= 300 << 10);
        let mut all = vec![0u8; 300_000];
        let n = r.peek(&mut all);
        assert_eq!(&all[..n], &data[30_000..]);
        r.release();
        assert!(r.capacity() > 0, "not released while it holds data");
        r.consume(n);
        r.release();
        assert_eq!((r.capacity(), r.len()), (0, 0));
        assert_eq!(r.free(), 300 << 10);
    }

    #[test]
    fn the_pool_frees_only_what_a_whole_period_left_unused() {
        let mut p = Pool::default();
        let (a, b) = (p.lend(1), p.lend(1));
        p.give_back(a);
        p.give_back(b);
        p.trim();
        assert_eq!(p.bytes(), 2 * WRITE_BUF, "both were in use this period");
        let c = p.lend(1);
        p.give_back(c);
        p.trim();
        assert_eq!(p.bytes(), WRITE_BUF, "one went unused");
        p.trim();
        assert_eq!(p.bytes(), 0);
    }
}
