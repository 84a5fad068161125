//! What a load run measures, apart from how it makes the load.
//!
//! Delivery: every frame a subscriber reads is counted once, by its
//! sequence number; a second copy is a duplicate, a frame that comes
//! before one sent after it by the same publisher is *reordered* (the
//! relay gives no order between publishers, but keeps each one's), and
//! what never came is missing. Integrity: every frame's header (magic,
//! command, length, checksum) and sequence number are compared with the
//! frame sent, and the whole frame byte for byte for a sample (each
//! subscriber a deterministic 1 in 64, and the run's first and last:
//! [`crate::frames`]); a frame that fails either check is *corrupted*.
//! Not checked: the payload bytes of the frames outside the sample (a
//! relay that flipped a byte there, and only there, would pass).
//!
//! Latency, from the time each frame was *due* (not sent, so a stall
//! cannot hide queued messages) to its arrival at the subscriber's socket
//! (the kernel's timestamp of the read that brought it:
//! [`crate::arrival`]), goes into an HDR histogram per second of the
//! measured window (merged for the overall figures). Only messages after
//! the warm-up count.
//!
//! The generator watches itself: how late it sent (its send lag), its CPU,
//! and its *busy* share: its time sending and reading, against its
//! thread's CPU time over the whole loop (the rest it spent polling). On
//! a loaded machine the time the generator waited for its CPU counts on
//! neither side: the kernel's count of those waits is read after any turn
//! long enough to hold one and taken off that turn's work (in wall-clock
//! time the share rose with the machine's load). Over half busy, the generator is
//! near its own limit and a run's figures may be partly its own (the
//! report marks the run generator-bound). [`Measure`] holds the running tallies; [`LoadResult`]
//! is what a run reports.

use crate::frames::Frames;
use hdrhistogram::Histogram;
use serde::Serialize;
use sprint_relay::wire;
use std::time::{Duration, Instant};

/// What one load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub offered_rate: u64,
    pub messages: u64,
    pub subscribers: usize,
    /// Deliveries received in the measured window, per second.
    pub delivered_per_s: f64,
    /// Share of the deliveries expected that arrived.
    pub delivered_fraction: f64,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub duplicates: u64,
    /// Frames whose header or sequence number (every frame), or bytes
    /// (the sample checked byte for byte), differ from the frame sent.
    pub corrupted: u64,
    /// Frames that came to a subscriber after a later one from the same
    /// publisher.
    pub reordered: u64,
    pub missing: u64,
    /// Frames checked byte for byte, over every subscriber.
    pub checked_bytewise: u64,
    /// Share of the subscribers' reads the kernel dated (latency ends at
    /// the arrival it gave; the rest at the read).
    pub reads_timestamped: f64,
    /// Subscribers the relay closed (its slow-subscriber policy): what
    /// they did not receive counts as not delivered.
    pub closed_subscribers: usize,
    /// The generator's own CPU over the run, in cores.
    pub generator_cpu: f64,
    /// Share of its busy-polling loop's CPU time spent sending and
    /// reading (the rest it polled). Over 0.5, the run is
    /// generator-bound. Time the thread spent waiting for its CPU (a
    /// loaded machine) counts on neither side.
    pub generator_busy: f64,
    /// The wall-clock share of the loop's turns that had something to
    /// send or read, polls and waits for the CPU included (as
    /// relay_bench measured it before: 1 - its `generator_idle`).
    pub generator_busy_wall: f64,
    /// How late the generator sent, p99 µs.
    pub send_lag_p99_us: f64,
    /// Latency samples, for the CDF plot: (µs, fraction below).
    pub cdf: Vec<(f64, f64)>,
    /// p99 latency of the transactions due in each second of the
    /// measured window, µs: where in a run the tail came from.
    pub p99_by_second_us: Vec<f64>,
}

/// This process's CPU time (user + system), in seconds.
pub fn cpu_seconds_self() -> f64 {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(r.ru_utime) + t(r.ru_stime)
}

/// When each message is due: open-loop, message `seq` at
/// `start + seq / rate`, brought forward to the start of its tick (a
/// multiple of `tick` after the start) when `tick` is not zero. Every
/// message due within a tick then goes out together, at most one write
/// per publisher per tick, and its latency runs from the tick's start:
/// the time it was meant to be sent.
#[derive(Clone, Copy)]
pub struct Pacing {
    pub start: Instant,
    ns_per: f64,
    tick_ns: u64,
}

impl Pacing {
    /// Pacing at `rate` in ticks of `tick`, from a start 10 ms from now.
    pub fn new(rate: u64, tick: Duration) -> Pacing {
        Pacing {
            start: Instant::now() + Duration::from_millis(10),
            ns_per: 1e9 / rate.max(1) as f64,
            tick_ns: tick.as_nanos() as u64,
        }
    }

    /// When message `seq` is due.
    pub fn due_at(&self, seq: u64) -> Instant {
        self.start + Duration::from_nanos(self.due_ns(seq))
    }

    /// When message `seq` is due, ns after the start.
    fn due_ns(&self, seq: u64) -> u64 {
        let t = (seq as f64 * self.ns_per) as u64;
        match self.tick_ns {
            0 => t,
            tick => t - t % tick,
        }
    }
}

/// The tallies of one run: the `frames` sent, the first `warm` of them a
/// warm-up, at `rate` to `subs` subscribers.
pub struct Measure {
    warm: u64,
    total: u64,
    rate: u64,
    seq_base: u64,
    pubs: usize,
    /// Per message, a bit per subscriber (modulo 16) that received it.
    seen: Vec<u16>,
    /// Latency from the due time, ns, by the second of the measured
    /// window its message was due.
    by_second: Vec<Histogram<u64>>,
    /// The generator's send lag behind the due time, ns.
    lag: Histogram<u64>,
    duplicates: u64,
    corrupted: u64,
    reordered: u64,
    checked_bytewise: u64,
    /// Reads, and those the kernel dated.
    reads: u64,
    reads_stamped: u64,
    /// Deliveries of measured messages.
    delivered: u64,
    /// Deliveries of any message.
    received: u64,
    /// Per subscriber: frames received, and whether the relay closed it.
    got: Vec<u64>,
    closed: Vec<bool>,
    /// Per subscriber and publisher, the highest sequence number received
    /// plus one (0: none yet).
    last: Vec<u64>,
    /// The generator's time sending and reading, less its waits for the
    /// CPU; and the wall-clock time of the loop turns that had something
    /// to send or read and of those that found nothing (which also counts
    /// the time the thread waited for its CPU, taken by something else,
    /// in whichever turn it fell). Counting turns instead would mislead:
    /// an idle turn is far shorter than a busy one.
    busy_cpu: Duration,
    busy_wall: Duration,
    idle_wall: Duration,
}

impl Measure {
    /// Empty tallies for `total` messages from `pubs` publishers (`warm`
    /// of them warm-up) over `seconds` at `rate`, numbered from
    /// `seq_base`.
    pub fn new(
        subs: usize,
        pubs: usize,
        warm: u64,
        total: u64,
        rate: u64,
        seconds: f64,
        seq_base: u64,
    ) -> Self {
        let seconds_measured = seconds.ceil().max(1.0) as usize;
        let hist = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        Measure {
            warm,
            total,
            rate: rate.max(1),
            seq_base,
            pubs: pubs.max(1),
            seen: vec![0u16; total as usize],
            by_second: (0..seconds_measured).map(|_| hist()).collect(),
            lag: hist(),
            duplicates: 0,
            corrupted: 0,
            reordered: 0,
            checked_bytewise: 0,
            reads: 0,
            reads_stamped: 0,
            delivered: 0,
            received: 0,
            got: vec![0u64; subs],
            closed: vec![false; subs],
            last: vec![0u64; subs * pubs.max(1)],
            busy_cpu: Duration::ZERO,
            busy_wall: Duration::ZERO,
            idle_wall: Duration::ZERO,
        }
    }

    /// Message `seq` went out `late` after it was due (counted after the
    /// warm-up).
    pub fn sent(&mut self, seq: u64, late: Duration) {
        if seq >= self.warm {
            self.lag.record(late.as_nanos().max(1) as u64).ok();
        }
    }

    /// A turn of the generator's loop took `wall`; `worked` if it had
    /// something to send or read.
    pub fn turn(&mut self, wall: Duration, worked: bool) {
        if worked {
            self.busy_wall += wall;
        } else {
            self.idle_wall += wall;
        }
    }

    /// A turn's sending and reading took `d` (its waits for the CPU
    /// taken off).
    pub fn worked(&mut self, d: Duration) {
        self.busy_cpu += d;
    }

    /// Whether the relay closed subscriber `i`.
    pub fn is_closed(&self, i: usize) -> bool {
        self.closed[i]
    }

    /// The relay closed subscriber `i` (its slow-subscriber policy): the
    /// rest of its frames are not delivered.
    pub fn close(&mut self, i: usize) {
        self.closed[i] = true;
    }

    /// A read that brought bytes; `stamped` if the kernel said when they
    /// arrived.
    pub fn stamped(&mut self, stamped: bool) {
        self.reads += 1;
        self.reads_stamped += stamped as u64;
    }

    /// A subscriber's buffer filled without a whole frame (a corrupted
    /// length): counted as one corrupted frame, the bytes dropped.
    pub fn unframed(&mut self) {
        self.corrupted += 1;
    }

    /// Whether every subscriber still open has received every message.
    pub fn all_received(&self) -> bool {
        (0..self.got.len()).all(|i| self.closed[i] || self.got[i] >= self.total)
    }

    /// Counts the whole frames at the front of `buf`, read by subscriber
    /// `i` at `t`, against `frames` (what was sent, due as `pace` says),
    /// in one pass, and returns how many bytes they took (a partial frame
    /// at the end is left for the next read).
    pub fn read(
        &mut self,
        i: usize,
        buf: &[u8],
        t: Instant,
        frames: &Frames,
        pace: &Pacing,
    ) -> usize {
        let t_ns = t.saturating_duration_since(pace.start).as_nanos() as u64;
        let bit = 1u16 << (i % 16);
        let mut used = 0;
        while buf.len() - used >= wire::HEADER {
            let len = u32::from_le_bytes(buf[used + 16..used + 20].try_into().unwrap()) as usize;
            if buf.len() - used < wire::HEADER + len {
                break;
            }
            let f = &buf[used..used + wire::HEADER + len];
            used += wire::HEADER + len;
            let seq = match sprint_relay::sample::seq_of_frame(f)
                .and_then(|s| s.checked_sub(self.seq_base))
            {
                Some(seq) if seq < self.total => seq,
                _ => {
                    self.corrupted += 1;
                    continue;
                }
            };
            let sent = frames.get(seq);
            let intact = if frames.checks(seq, i) {
                self.checked_bytewise += 1;
                f == sent
            } else {
                f.len() == sent.len() && f[..wire::HEADER] == sent[..wire::HEADER]
            };
            if !intact {
                self.corrupted += 1;
                continue;
            }
            let s = &mut self.seen[seq as usize];
            if *s & bit != 0 {
                self.duplicates += 1;
                continue;
            }
            *s |= bit;
            self.received += 1;
            self.got[i] += 1;
            let last = &mut self.last[i * self.pubs + frames.publisher_of(seq)];
            if seq < *last {
                self.reordered += 1;
            } else {
                *last = seq + 1;
            }
            if seq >= self.warm {
                self.delivered += 1;
                let l = t_ns.saturating_sub(pace.due_ns(seq)).max(1);
                let sec = ((seq - self.warm) / self.rate) as usize;
                let n = self.by_second.len();
                self.by_second[sec.min(n - 1)].record(l).ok();
            }
        }
        used
    }

    /// The result of a run whose loop began at `start` with this process
    /// at `cpu0` CPU seconds and took `loop_cpu` of the generator thread's
    /// CPU time; `measured` messages were after the warm-up.
    pub fn result(
        self,
        measured: u64,
        cpu0: f64,
        start: Instant,
        loop_cpu: Duration,
    ) -> LoadResult {
        let subs = self.got.len();
        let cpu = cpu_seconds_self() - cpu0;
        let wall = (Instant::now() - start).as_secs_f64();
        let window = measured as f64 / self.rate as f64;
        let expected = self.total * subs as u64;
        let missing = expected - self.received;
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for h in &self.by_second {
            hist.add(h).ok();
        }
        let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1e3;
        let mut cdf = Vec::new();
        for v in hist.iter_quantiles(1) {
            cdf.push((v.value_iterated_to() as f64 / 1e3, v.quantile_iterated_to()));
        }
        let share = |busy: Duration, all: Duration| {
            if all > Duration::ZERO {
                (busy.as_secs_f64() / all.as_secs_f64()).min(1.0)
            } else {
                0.0
            }
        };
        LoadResult {
            offered_rate: self.rate,
            messages: measured,
            subscribers: subs,
            delivered_per_s: self.delivered as f64 / window,
            delivered_fraction: self.delivered as f64 / (measured * subs as u64).max(1) as f64,
            p50_us: q(&hist, 0.5),
            p95_us: q(&hist, 0.95),
            p99_us: q(&hist, 0.99),
            p999_us: q(&hist, 0.999),
            max_us: hist.max() as f64 / 1e3,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            reordered: self.reordered,
            missing,
            checked_bytewise: self.checked_bytewise,
            reads_timestamped: self.reads_stamped as f64 / self.reads.max(1) as f64,
            closed_subscribers: self.closed.iter().filter(|c| **c).count(),
            generator_cpu: cpu / wall,
            generator_busy: share(self.busy_cpu, loop_cpu),
            generator_busy_wall: share(self.busy_wall, self.busy_wall + self.idle_wall),
            send_lag_p99_us: q(&self.lag, 0.99),
            cdf,
            p99_by_second_us: self.by_second.iter().map(|h| q(h, 0.99)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8 transactions from 2 publishers to 2 subscribers, none of them
    /// warm-up.
    fn setup() -> (Frames, Measure, Pacing) {
        (
            Frames::build(0, 8, 2),
            Measure::new(2, 2, 0, 8, 8, 1.0, 0),
            Pacing::new(8, Duration::ZERO),
        )
    }

    fn bytes(frames: &Frames, seqs: &[u64]) -> Vec<u8> {
        seqs.iter().flat_map(|s| frames.get(*s).to_vec()).collect()
    }

    #[test]
    fn a_tick_brings_each_message_forward_to_its_start() {
        // 200k/s: one message every 5 µs; ticks of 50 µs hold 10.
        let p = Pacing::new(200_000, Duration::from_micros(50));
        assert_eq!((p.due_ns(0), p.due_ns(9)), (0, 0));
        assert_eq!(
            (p.due_ns(10), p.due_ns(19), p.due_ns(20)),
            (50_000, 50_000, 100_000)
        );
        // Without ticks, each at its own time.
        let p = Pacing::new(200_000, Duration::ZERO);
        assert_eq!((p.due_ns(9), p.due_ns(10)), (45_000, 50_000));
        // At 10k/s (100 µs apart) each message has a tick of its own.
        let p = Pacing::new(10_000, Duration::from_micros(50));
        assert_eq!((p.due_ns(1), p.due_ns(2)), (100_000, 200_000));
    }

    #[test]
    fn frames_split_across_reads_are_each_counted_once() {
        let (frames, mut m, pace) = setup();
        let all = bytes(&frames, &(0..8).collect::<Vec<_>>());
        let cut = frames.get(0).len() * 3 + 10;
        let used = m.read(0, &all[..cut], Instant::now(), &frames, &pace);
        assert_eq!(used, frames.get(0).len() * 3, "the partial fourth is left");
        let mut rest = all[used..cut].to_vec();
        rest.extend_from_slice(&all[cut..]);
        assert_eq!(m.read(0, &rest, Instant::now(), &frames, &pace), rest.len());
        assert_eq!(m.got[0], 8);
        assert_eq!((m.duplicates, m.corrupted, m.reordered), (0, 0, 0));
        assert!(!m.all_received(), "subscriber 1 has nothing yet");
    }

    #[test]
    fn duplicates_and_reordering_within_a_publisher_are_counted() {
        let (frames, mut m, pace) = setup();
        // Publisher 0 sends 0, 2, 4, 6; publisher 1 sends 1, 3, 5, 7.
        // 1 before 0 is two publishers: not reordered; 4 before 2 is.
        let b = bytes(&frames, &[1, 0, 4, 2, 3, 3]);
        m.read(1, &b, Instant::now(), &frames, &pace);
        assert_eq!(m.got[1], 5);
        assert_eq!(m.duplicates, 1);
        assert_eq!(m.reordered, 1);
    }

    #[test]
    fn a_changed_header_is_corrupt_in_every_frame_and_a_changed_payload_in_the_sample() {
        let (frames, mut m, pace) = setup();
        // The run's first frame is in every subscriber's sample.
        assert!(frames.checks(0, 0));
        let mut f0 = frames.get(0).to_vec();
        let last = f0.len() - 1;
        f0[last] ^= 1;
        m.read(0, &f0, Instant::now(), &frames, &pace);
        assert_eq!((m.corrupted, m.got[0]), (1, 0));
        // A checksum byte changed, in a frame outside the sample.
        let seq = (1..7).find(|s| !frames.checks(*s, 0)).unwrap();
        let mut f = frames.get(seq).to_vec();
        f[20] ^= 1;
        m.read(0, &f, Instant::now(), &frames, &pace);
        assert_eq!(m.corrupted, 2);
        // A payload byte changed outside the sample passes: the limit the
        // module doc states.
        let mut f = frames.get(seq).to_vec();
        let last = f.len() - 1;
        f[last] ^= 1;
        m.read(0, &f, Instant::now(), &frames, &pace);
        assert_eq!((m.corrupted, m.got[0]), (2, 1));
    }
}
