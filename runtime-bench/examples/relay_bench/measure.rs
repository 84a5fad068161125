//! What a load run measures, apart from how it makes the load: every
//! frame a subscriber reads is checked byte for byte against the one sent
//! and counted once (duplicates, corruption and losses are counted too);
//! its latency, from the time it was *due* (not sent, so a stall cannot
//! hide queued messages), goes into an HDR histogram, overall and per
//! second of the run; and the generator watches itself: how late it sent
//! (its send lag), its CPU and its idle share. Only messages after the
//! warm-up count. [`Measure`] holds the running tallies; [`LoadResult`]
//! is what a run reports.

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
    pub corrupted: u64,
    pub missing: u64,
    /// Subscribers the relay closed (its slow-subscriber policy): what
    /// they did not receive counts as not delivered.
    pub closed_subscribers: usize,
    /// The generator's own CPU over the run, in cores.
    pub generator_cpu: f64,
    /// Share of its (busy) loop's time spent in turns that found nothing
    /// to send or read: its slack.
    pub generator_idle: f64,
    /// How late the generator sent, p99 µs (its own slack).
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

/// The tallies of one run: `total` messages, the first `warm` of them a
/// warm-up, sent at `rate` to `subs` subscribers.
pub struct Measure {
    warm: u64,
    total: u64,
    rate: u64,
    seq_base: u64,
    /// Per message, a bit per subscriber (modulo 16) that received it.
    seen: Vec<u16>,
    /// Latency from the due time, ns.
    hist: Histogram<u64>,
    /// The generator's send lag behind the due time, ns.
    lag: Histogram<u64>,
    /// Latency by the second of the measured window its message was due.
    by_second: Vec<Histogram<u64>>,
    duplicates: u64,
    corrupted: u64,
    /// Deliveries of measured messages.
    delivered: u64,
    /// Deliveries of any message.
    received: u64,
    /// Per subscriber: frames received, and whether the relay closed it.
    got: Vec<u64>,
    closed: Vec<bool>,
    /// Time in loop turns that found nothing to send or read: the
    /// generator's slack (a busy loop's idle share). Counting turns
    /// instead overstated it: an idle turn is far shorter than a busy one.
    idle_time: Duration,
}

impl Measure {
    /// Empty tallies for `total` messages (`warm` of them warm-up) over
    /// `seconds` at `rate`, starting at sequence number `seq_base`.
    pub fn new(subs: usize, warm: u64, total: u64, rate: u64, seconds: f64, seq_base: u64) -> Self {
        let seconds_measured = seconds.ceil().max(1.0) as usize;
        Measure {
            warm,
            total,
            rate,
            seq_base,
            seen: vec![0u16; total as usize],
            hist: Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
            lag: Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
            by_second: (0..seconds_measured)
                .map(|_| Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2).unwrap())
                .collect(),
            duplicates: 0,
            corrupted: 0,
            delivered: 0,
            received: 0,
            got: vec![0u64; subs],
            closed: vec![false; subs],
            idle_time: Duration::ZERO,
        }
    }

    /// Message `seq` went out `late` after it was due (counted after the
    /// warm-up).
    pub fn sent(&mut self, seq: u64, late: Duration) {
        if seq >= self.warm {
            self.lag.record(late.as_nanos().max(1) as u64).ok();
        }
    }

    /// A turn of the generator's loop that found nothing to do took `d`.
    pub fn idle_turn(&mut self, d: Duration) {
        self.idle_time += d;
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

    /// Whether every subscriber still open has received every message.
    pub fn all_received(&self) -> bool {
        (0..self.got.len()).all(|i| self.closed[i] || self.got[i] >= self.total)
    }

    /// Counts the whole frames at the front of subscriber `i`'s `buf`,
    /// read at `t`, against `frames` (what was sent, by sequence number,
    /// each due at `due_at(seq)`), and removes them from `buf`.
    pub fn read(
        &mut self,
        i: usize,
        buf: &mut Vec<u8>,
        t: Instant,
        frames: &[Vec<u8>],
        due_at: impl Fn(u64) -> Instant,
    ) {
        let mut used = 0;
        while buf.len() - used >= wire::HEADER {
            let len = u32::from_le_bytes(buf[used + 16..used + 20].try_into().unwrap()) as usize;
            if buf.len() - used < wire::HEADER + len {
                break;
            }
            let f = &buf[used..used + wire::HEADER + len];
            match sprint_relay::sample::seq_of_frame(f).and_then(|s| s.checked_sub(self.seq_base)) {
                Some(seq) if seq < self.total && frames[seq as usize] == f => {
                    let s = &mut self.seen[seq as usize];
                    if *s & (1 << (i % 16)) != 0 {
                        self.duplicates += 1;
                    } else {
                        *s |= 1 << (i % 16);
                        self.received += 1;
                        self.got[i] += 1;
                        if seq >= self.warm {
                            self.delivered += 1;
                            let l = t.saturating_duration_since(due_at(seq));
                            self.hist.record(l.as_nanos().max(1) as u64).ok();
                            let sec = ((seq - self.warm) / self.rate.max(1)) as usize;
                            if let Some(h) = self.by_second.get_mut(sec) {
                                h.record(l.as_nanos().max(1) as u64).ok();
                            }
                        }
                    }
                }
                _ => self.corrupted += 1,
            }
            used += wire::HEADER + len;
        }
        buf.drain(..used);
    }

    /// The result of a run that began at `start` with this process at
    /// `cpu0` CPU seconds; `measured` messages were after the warm-up.
    pub fn result(self, measured: u64, cpu0: f64, start: Instant) -> LoadResult {
        let subs = self.got.len();
        let cpu = cpu_seconds_self() - cpu0;
        let wall = (Instant::now() - start).as_secs_f64();
        let window = measured as f64 / self.rate as f64;
        let expected = self.total * subs as u64;
        let missing = expected - self.received;
        let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1e3;
        let mut cdf = Vec::new();
        for v in self.hist.iter_quantiles(1) {
            cdf.push((v.value_iterated_to() as f64 / 1e3, v.quantile_iterated_to()));
        }
        LoadResult {
            offered_rate: self.rate,
            messages: measured,
            subscribers: subs,
            delivered_per_s: self.delivered as f64 / window,
            delivered_fraction: self.delivered as f64 / (measured * subs as u64) as f64,
            p50_us: q(&self.hist, 0.5),
            p95_us: q(&self.hist, 0.95),
            p99_us: q(&self.hist, 0.99),
            p999_us: q(&self.hist, 0.999),
            max_us: self.hist.max() as f64 / 1e3,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            missing,
            closed_subscribers: self.closed.iter().filter(|c| **c).count(),
            generator_cpu: cpu / wall,
            generator_idle: self.idle_time.as_secs_f64() / wall,
            send_lag_p99_us: q(&self.lag, 0.99),
            cdf,
            p99_by_second_us: self.by_second.iter().map(|h| q(h, 0.99)).collect(),
        }
    }
}
