//! The frames a run sends, built before it, and which of them a
//! subscriber checks byte for byte.
//!
//! Transaction `seq` (counted from the run's first, 0) goes to publisher
//! `seq % pubs`. Each publisher's frames are laid end to end in one
//! buffer, in the order it sends them, so sending everything due is one
//! `write` per publisher straight from that buffer: no copy, no per-frame
//! allocation. The same buffers are what a subscriber compares against.
//!
//! Checking every delivered frame byte for byte against the one sent was
//! most of the generator's work per frame (16 subscribers see every
//! frame). So every frame's header (magic, command, length, checksum)
//! and sequence number are checked, and the whole frame only for a
//! sample: [`Frames::checks`] picks, for each subscriber, a deterministic
//! 1 in [`SAMPLE`] of the sequence numbers (a different 1 in 64 for each
//! of the first 64 subscribers, so 16 subscribers between them check a
//! quarter of the transactions), plus the run's first and last frame.

use sprint_relay::wire;

/// A subscriber checks 1 in this many frames byte for byte.
pub const SAMPLE: u64 = 64;

/// The frames of one run.
pub struct Frames {
    pubs: usize,
    total: u64,
    /// Per publisher, its frames back to back.
    streams: Vec<Vec<u8>>,
    /// Per publisher, where each of its frames ends in its stream.
    ends: Vec<Vec<usize>>,
}

/// A framed transaction carrying `seq` (its first input's outpoint).
fn frame(seq: u64) -> Vec<u8> {
    wire::tx_frame(&sprint_relay::sample::transaction(seq, 22).0)
}

impl Frames {
    /// `total` transactions numbered from `seq_base`, spread over `pubs`
    /// publishers.
    pub fn build(seq_base: u64, total: u64, pubs: usize) -> Frames {
        let pubs = pubs.max(1);
        let mut streams = vec![Vec::new(); pubs];
        let mut ends = vec![Vec::new(); pubs];
        for seq in 0..total {
            let p = (seq % pubs as u64) as usize;
            streams[p].extend_from_slice(&frame(seq_base + seq));
            ends[p].push(streams[p].len());
        }
        Frames {
            pubs,
            total,
            streams,
            ends,
        }
    }

    /// The publisher that sends transaction `seq`.
    pub fn publisher_of(&self, seq: u64) -> usize {
        (seq % self.pubs as u64) as usize
    }

    /// Publisher `p`'s frames, back to back.
    pub fn stream(&self, p: usize) -> &[u8] {
        &self.streams[p]
    }

    /// Where, in publisher `p`'s stream, its frames among transactions
    /// `0..next` end: everything due when `next` is the first not yet due.
    pub fn end_before(&self, p: usize, next: u64) -> usize {
        let pubs = self.pubs as u64;
        let p64 = p as u64;
        // Publisher p's frames below `next`: p, p + pubs, ...
        let count = if next > p64 {
            (next - p64).div_ceil(pubs) as usize
        } else {
            0
        };
        match count {
            0 => 0,
            n => self.ends[p][n - 1],
        }
    }

    /// Transaction `seq`'s frame, as sent (`seq < total`).
    pub fn get(&self, seq: u64) -> &[u8] {
        let p = self.publisher_of(seq);
        let k = (seq / self.pubs as u64) as usize;
        let start = if k == 0 { 0 } else { self.ends[p][k - 1] };
        &self.streams[p][start..self.ends[p][k]]
    }

    /// Whether subscriber `sub` checks transaction `seq` byte for byte:
    /// the run's first and last, and 1 in [`SAMPLE`] of the rest, chosen
    /// by a hash of `seq` (so the sample does not follow the publishers'
    /// round-robin) equal to the subscriber's number modulo [`SAMPLE`].
    pub fn checks(&self, seq: u64, sub: usize) -> bool {
        let h = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
        seq == 0 || seq + 1 == self.total || h == sub as u64 % SAMPLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_found_by_sequence_and_publisher_streams_hold_them_in_order() {
        let f = Frames::build(100, 10, 4);
        for seq in 0..10 {
            assert_eq!(f.get(seq), frame(100 + seq).as_slice());
            assert_eq!(
                sprint_relay::sample::seq_of_frame(f.get(seq)),
                Some(100 + seq)
            );
        }
        // Publisher 1 sends 1, 5, 9.
        let mut want = frame(101);
        want.extend_from_slice(&frame(105));
        assert_eq!(&f.stream(1)[..f.end_before(1, 6)], want.as_slice());
        assert_eq!(f.end_before(1, 1), 0, "nothing of publisher 1 due yet");
        assert_eq!(f.end_before(1, 2), frame(101).len());
        assert_eq!(f.end_before(1, 10), f.stream(1).len());
    }

    #[test]
    fn sixteen_subscribers_check_a_quarter_of_the_frames_and_each_about_one_in_64() {
        let total = 64_000;
        let f = Frames::build(0, 1, 4);
        let f = Frames { total, ..f };
        let mut any = 0;
        let mut per_sub = [0u64; 16];
        for seq in 1..total - 1 {
            let mut hit = false;
            for (sub, n) in per_sub.iter_mut().enumerate() {
                if f.checks(seq, sub) {
                    *n += 1;
                    hit = true;
                }
            }
            any += hit as u64;
        }
        for n in per_sub {
            assert!((800..1200).contains(&n), "{n} of {total}");
        }
        assert!((14_000..18_000).contains(&any), "{any} of {total}");
        assert!((0..16).all(|s| f.checks(0, s) && f.checks(total - 1, s)));
    }
}
