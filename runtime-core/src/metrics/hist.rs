//! A log-linear latency histogram recorded without locks and merged on
//! read.
//!
//! Why not hdrhistogram on the hot path: its `record` takes `&mut self`,
//! so a histogram written by a worker cannot be read by a scrape on
//! another thread without a lock, and its concurrent recorder hands the
//! histogram over on the recording thread, which a parked or stalled
//! worker never does. Here each bucket is an `AtomicU64`: the owning
//! worker records with a plain load and store (it is the only writer),
//! other writers with `fetch_add`, and any thread reads. The layout is
//! HDR's: 16 linear sub-buckets per power of two, so a quantile is within
//! 1/16 (6.25 %) of the exact value; values below 16 ns are exact. The
//! benchmark `histogram/record` measures both (see the closing note).

use crate::loom::sync::atomic::{AtomicU64, Ordering::Relaxed};
use serde::Serialize;

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// The largest power of two with buckets of its own: 2^40 ns, about 18
/// minutes. Larger values land in the last bucket (and `max` is exact).
const TOP_EXP: u32 = 40;
/// Buckets in all.
pub const BUCKETS: usize = SUB + (TOP_EXP - SUB_BITS + 1) as usize * SUB;

/// The bucket of `v`: values below 32 have one each; above, each power
/// of two 2^e has 16 of width 2^(e−4). Branch-free but for the clamp.
#[inline]
pub fn index(v: u64) -> usize {
    let e = 63 - (v | SUB as u64).leading_zeros();
    if e > TOP_EXP {
        return BUCKETS - 1;
    }
    let shift = e - SUB_BITS;
    ((shift as usize) << SUB_BITS) + (v >> shift) as usize
}

/// The smallest and largest value bucket `i` holds (inclusive).
pub fn bounds(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, i as u64);
    }
    let e = ((i - SUB) / SUB) as u32 + SUB_BITS;
    let sub = ((i - SUB) % SUB) as u64;
    let width = 1u64 << (e - SUB_BITS);
    let lo = (SUB as u64 + sub) << (e - SUB_BITS);
    (lo, lo + width - 1)
}

/// One histogram of nanosecond values.
#[derive(Debug)]
pub struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> AtomicHistogram {
        AtomicHistogram::new()
    }
}

impl AtomicHistogram {
    /// An empty histogram.
    pub fn new() -> AtomicHistogram {
        AtomicHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    /// Records `v` from the histogram's only writer thread: loads and
    /// stores, no read-modify-write. Two threads calling this at once may
    /// lose a sample; use [`AtomicHistogram::record`] where there may be
    /// more than one writer.
    #[inline]
    pub fn record_single_writer(&self, v: u64) {
        // SAFETY: `index` returns at most `BUCKETS - 1` and `new` made
        // `BUCKETS` buckets (the hot path skips the bounds check).
        let b = unsafe { self.buckets.get_unchecked(index(v)) };
        b.store(b.load(Relaxed) + 1, Relaxed);
        self.sum
            .store(self.sum.load(Relaxed).wrapping_add(v), Relaxed);
        if v > self.max.load(Relaxed) {
            self.max.store(v, Relaxed);
        }
    }

    /// Records `v` from any thread.
    #[inline]
    pub fn record(&self, v: u64) {
        self.buckets[index(v)].fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
        // A new maximum is rare: look before the compare-and-swap loop.
        if v > self.max.load(Relaxed) {
            self.max.fetch_max(v, Relaxed);
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::empty();
        self.add_to(&mut s);
        s
    }

    /// Adds the counts now into `s` (merging on read).
    pub fn add_to(&self, s: &mut Snapshot) {
        for (acc, b) in s.buckets.iter_mut().zip(self.buckets.iter()) {
            *acc += b.load(Relaxed);
        }
        s.sum = s.sum.wrapping_add(self.sum.load(Relaxed));
        s.max = s.max.max(self.max.load(Relaxed));
    }
}

/// A histogram's counts at one moment; snapshots of many histograms merge
/// by adding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Count per bucket.
    pub buckets: Vec<u64>,
    /// Sum of the values, ns.
    pub sum: u64,
    /// The largest value, ns.
    pub max: u64,
}

/// What `Stats` shows of a histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Mean, ns.
    pub mean_ns: f64,
    /// Quantiles, ns (each the largest value its bucket holds, at most
    /// `max_ns`).
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Exact maximum, ns.
    pub max_ns: u64,
}

impl Snapshot {
    /// No samples.
    pub fn empty() -> Snapshot {
        Snapshot {
            buckets: vec![0; BUCKETS],
            sum: 0,
            max: 0,
        }
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Snapshot) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum = self.sum.wrapping_add(other.sum);
        self.max = self.max.max(other.max);
    }

    /// The samples recorded since `earlier` (a snapshot of the same
    /// histogram taken before this one).
    pub fn minus(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            sum: self.sum.saturating_sub(earlier.sum),
            // The maximum of the difference is not known: the largest
            // bucket's end stands for it.
            max: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .enumerate()
                .rev()
                .find(|(_, (a, b))| a > b)
                .map_or(0, |(i, _)| bounds(i).1.min(self.max)),
        }
    }

    /// Samples.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The value at quantile `q` (0 to 1): the largest value of the bucket
    /// that holds the sample of rank ⌈q·count⌉, at most the maximum; 0
    /// without samples.
    pub fn quantile(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bounds(i).1.min(self.max);
            }
        }
        self.max
    }

    /// Samples of at most `le` ns (whole buckets only: `le` should be a
    /// bucket's upper bound, as the export's are).
    pub fn count_at_most(&self, le: u64) -> u64 {
        self.buckets
            .iter()
            .enumerate()
            .take_while(|(i, _)| bounds(*i).1 <= le)
            .map(|(_, c)| c)
            .sum()
    }

    /// The summary `Stats` shows.
    pub fn summary(&self) -> Summary {
        let count = self.count();
        Summary {
            count,
            mean_ns: if count == 0 {
                0.0
            } else {
                self.sum as f64 / count as f64
            },
            p50_ns: self.quantile(0.50),
            p95_ns: self.quantile(0.95),
            p99_ns: self.quantile(0.99),
            p999_ns: self.quantile(0.999),
            max_ns: self.max,
        }
    }
}

/// The export's bucket bounds, ns: from 511 ns (below 1 µs) to 11.8 s
/// (above 10 s), each the last value of an internal bucket (so the export's
/// counts are exact) and each at most twice the one before (27 bounds).
pub fn export_bounds() -> impl Iterator<Item = u64> {
    let mut next = Some(511u64);
    std::iter::from_fn(move || {
        let b = next?;
        next = (b < 10_000_000_000).then(|| {
            // The largest bucket end at most 2b.
            let i = index(2 * b);
            let (lo, hi) = bounds(i);
            if hi <= 2 * b {
                hi
            } else {
                lo - 1
            }
        });
        Some(b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_that_holds_it() {
        for v in (0..100_000u64)
            .chain((0..64).map(|k| 1u64 << k))
            .chain([u64::MAX])
        {
            let i = index(v);
            let (lo, hi) = bounds(i);
            if v < (1u64 << (TOP_EXP + 1)) {
                assert!(lo <= v && v <= hi, "{v} in bucket {i} [{lo}, {hi}]");
                assert!(hi - lo <= v / 16, "bucket {i} of {v} is too wide");
            } else {
                assert_eq!(i, BUCKETS - 1);
            }
        }
        for i in 1..BUCKETS {
            assert_eq!(bounds(i - 1).1 + 1, bounds(i).0, "contiguous at {i}");
        }
    }

    #[test]
    fn export_bounds_are_bucket_ends_growing_by_two() {
        let b: Vec<u64> = export_bounds().collect();
        assert!(b[0] <= 1_000 && *b.last().unwrap() >= 10_000_000_000);
        for w in b.windows(2) {
            assert!(w[1] <= 2 * w[0] && w[1] > w[0], "{w:?}");
        }
        for le in b {
            assert_eq!(bounds(index(le)).1, le, "{le} ends a bucket");
        }
    }
}

/// The histogram's cross-thread use under the model checker: a reader
/// beside the single writer never sees a count go down and, once the
/// writer is done, sees every sample; two writers through `record` lose
/// nothing.
#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// A snapshot loads every bucket: each load is a branch to loom.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.max_branches = 100_000;
        b.check(f);
    }

    #[test]
    fn loom_histogram_single_writer_and_a_reader() {
        model(|| {
            let h = Arc::new(AtomicHistogram::new());
            let w = h.clone();
            let writer = loom::thread::spawn(move || {
                w.record_single_writer(100);
                w.record_single_writer(5_000);
            });
            let first = h.snapshot().count();
            let second = h.snapshot().count();
            assert!(first <= second && second <= 2);
            writer.join().unwrap();
            let s = h.snapshot();
            assert_eq!(s.count(), 2);
            assert_eq!(s.sum, 5_100);
            assert_eq!(s.max, 5_000);
        });
    }

    #[test]
    fn loom_histogram_two_writers_lose_nothing() {
        model(|| {
            let h = Arc::new(AtomicHistogram::new());
            let a = h.clone();
            let t = loom::thread::spawn(move || a.record(7));
            h.record(9);
            t.join().unwrap();
            let s = h.snapshot();
            assert_eq!(s.count(), 2);
            assert_eq!(s.sum, 16);
            assert_eq!(s.max, 9);
        });
    }
}
