//! How long the peers wait: from a transaction's arrival to its `inv`
//! written to the last of the peers it was announced to
//! (`relay_announce_last_peer`), and to its `tx` written to a peer that
//! asked for it (`relay_tx_served`), as Sprint histograms.
//!
//! Each announcement gets a record (its arrival, how many peers it still
//! waits for) numbered in order; a peer carries the numbers of what it
//! has pending and of what its writer is writing, and counts them off
//! once the write is done (or the peer goes: then it is no longer waited
//! for, and its time is not recorded). Records leave from the front once
//! counted off, so what is kept is what is in flight.
//!
//! On several workers each worker times its own peers: a transaction's
//! time there is to the last of that worker's peers, and the slowest
//! worker's is the relay's.

use std::collections::VecDeque;

/// One announcement's record.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// Arrival, `sprint::metrics::now_raw()`.
    at: u64,
    /// Peers it is still pending or being written to.
    left: u32,
}

/// The records and the histograms they go to.
#[derive(Debug, Default)]
pub(crate) struct Timing {
    records: VecDeque<Record>,
    /// The number of `records`' front.
    base: u64,
    last_peer: Option<sprint::metrics::Histogram>,
    served: Option<sprint::metrics::Histogram>,
}

impl Timing {
    /// Records into these histograms from now on.
    pub(crate) fn set(
        &mut self,
        last_peer: sprint::metrics::Histogram,
        served: sprint::metrics::Histogram,
    ) {
        self.last_peer = Some(last_peer);
        self.served = Some(served);
    }

    /// Whether anything is timed (else the peers carry no numbers).
    pub(crate) fn on(&self) -> bool {
        self.last_peer.is_some()
    }

    /// The number the next announcement will have.
    pub(crate) fn next(&self) -> u64 {
        self.base + self.records.len() as u64
    }

    /// An announcement that arrived at `at`, pending to `peers` peers
    /// (numbered [`Timing::next`] before the call).
    pub(crate) fn announced(&mut self, at: u64, peers: u32) {
        if peers > 0 {
            self.records.push_back(Record { at, left: peers });
        }
    }

    /// Announcement `n` was written to one of its peers at `now` (or,
    /// with `None`, that peer went).
    pub(crate) fn done(&mut self, n: u64, now: Option<u64>) {
        let Some(r) = n
            .checked_sub(self.base)
            .and_then(|i| self.records.get_mut(i as usize))
        else {
            return;
        };
        r.left = r.left.saturating_sub(1);
        if r.left == 0 {
            if let (Some(h), Some(now)) = (&self.last_peer, now) {
                h.record_ns(sprint::metrics::nanos_between(r.at, now));
            }
        }
        while self.records.front().is_some_and(|r| r.left == 0) {
            self.records.pop_front();
            self.base += 1;
        }
    }

    /// A transaction that arrived at `at` was written on request at `now`.
    pub(crate) fn served(&self, at: u64, now: u64) {
        if let Some(h) = &self.served {
            h.record_ns(sprint::metrics::nanos_between(at, now));
        }
    }

    /// Announcements in flight (for the memory bound's tests).
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_timed_by_its_last_peer_and_leaves_in_order() {
        let named = |n| sprint::metrics::histogram(n, "a test's").unwrap();
        let h = named("timing_test_last_peer");
        let mut t = Timing::default();
        t.set(h.clone(), named("timing_test_served"));
        let (a, b) = (t.next(), t.next() + 1);
        t.announced(100, 2);
        t.announced(200, 1);
        t.done(b, Some(300));
        // The second is done but waits behind the first.
        assert_eq!(t.in_flight(), 2);
        assert_eq!(h.snapshot().count(), 1);
        t.done(a, Some(400));
        assert_eq!(h.snapshot().count(), 1, "one of two peers");
        t.done(a, None);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(h.snapshot().count(), 1, "the peer that went is not timed");
        // Numbers already gone are ignored.
        t.done(a, Some(500));
        assert_eq!(t.next(), 2);
    }
}
