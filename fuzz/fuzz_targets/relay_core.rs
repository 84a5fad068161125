//! The relay's state machine driven by fuzz input through its public
//! calls only (`Relay::new`, `publish`, `unpublish`, `subscribe`,
//! `unsubscribe`, `take`, `next`, `give_back`, `written`, `room`, `trim`),
//! the way the server drives it. Checked:
//! - nothing panics;
//! - each subscriber's byte stream is whole frames, each one a frame a
//!   publisher sent, in the order sent, after it subscribed;
//! - the counters add up: every frame read is relayed, a duplicate or
//!   undecodable, and every frame queued to a subscriber is written to
//!   it or dropped with it (checked while nobody was dropped as slow);
//! - a subscriber that is not closed has nothing left once drained.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sprint_relay::core::{Next, PubId, SubId};
use sprint_relay::wire::{self, Parsed};
use sprint_relay::{Relay, RelayConfig, SlowPolicy};
use std::task::Waker;
use std::time::Duration;

#[derive(Debug, Arbitrary)]
struct Setup {
    decode: bool,
    skip: bool,
    max_payload: u8,
    seen: u8,
    queue_bytes: u16,
    slow_after_ns: u16,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Subscribe,
    Unsubscribe(u8),
    /// Bytes from a publisher: raw, or (most useful) frames made of the
    /// payloads given, one of which may be a duplicate of an earlier one.
    Raw(Vec<u8>),
    Frames(Vec<Vec<u8>>),
    Resend(u8),
    /// A subscriber's writer: asks for at most `max` bytes, writes `n`
    /// of those it got.
    Write {
        sub: u8,
        max: u16,
        n: u16,
    },
    Room,
    Tick(u16),
    Trim,
}

/// What the harness knows of one subscriber.
struct Sub {
    id: SubId,
    /// Index into `Model::sent` of the first frame it may get.
    from: usize,
    /// Bytes written to it, not yet a whole frame.
    partial: Vec<u8>,
    /// Whole frames written, and frames started (a frame is queued
    /// whole, so a started one counts as a delivery).
    frames: u64,
    closed: bool,
}

struct Model {
    relay: Relay,
    /// The publisher now connected (a new one after a malformed frame).
    publisher: PubId,
    magic: [u8; 4],
    max: usize,
    /// Every whole `tx` frame a publisher's bytes held, in order.
    sent: Vec<Vec<u8>>,
    /// The publisher's bytes not yet taken.
    pending: Vec<u8>,
    subs: Vec<Sub>,
    /// Deliveries accounted for: frames started on a live subscriber, and
    /// frames queued to one that went away.
    delivered: u64,
    now: u64,
}

impl Model {
    fn publish(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        // The frames the relay will read, found independently of it: up
        // to the first malformed one, where the server closes.
        let mut at = 0;
        let mut frames = Vec::new();
        let refused = loop {
            match wire::parse(&self.pending[at..], self.magic, self.max) {
                Ok(Parsed::Tx { len, .. }) => {
                    frames.push(self.pending[at..at + len].to_vec());
                    at += len;
                }
                Ok(Parsed::Need(_)) => break false,
                Err(_) => break true,
            }
        };
        let before = self.relay.counters;
        let taken = self.relay.take(self.publisher, &self.pending, self.now);
        let after = self.relay.counters;
        match taken {
            Ok(t) => {
                let used = t.used;
                assert_eq!(t.frames, frames.len());
                assert!(!refused, "take accepted a buffer the parser refuses");
                assert_eq!(
                    used, at,
                    "take consumed {used} bytes, whole frames end at {at}"
                );
                assert_eq!(after.frames - before.frames, frames.len() as u64);
                self.pending.drain(..used);
            }
            Err(_) => {
                // The connection is closed; a new publisher comes.
                assert!(after.frames - before.frames <= frames.len() as u64);
                self.pending.clear();
                self.relay.unpublish(self.publisher);
                self.publisher = self
                    .relay
                    .publish()
                    .expect("the only publisher left, under any cap");
            }
        }
        self.sent.extend(frames);
    }

    fn write(&mut self, k: usize, max: usize, n: usize) {
        let waker = Waker::noop();
        let s = &mut self.subs[k];
        let mut out = None;
        let next = self.relay.next(s.id, &mut out, waker);
        let out = match out {
            Some(b) => b,
            None => Box::default(),
        };
        match next {
            Next::Write(got) => {
                assert!(got > 0 && got <= out.len());
                let n = n.min(got).min(max);
                self.relay.written(s.id, n, self.now);
                take_stream(
                    s,
                    &self.sent,
                    &out[..n],
                    self.magic,
                    self.max,
                    &mut self.delivered,
                );
            }
            Next::Wait => {}
            Next::Closed => s.closed = true,
        }
        if !out.is_empty() {
            self.relay.give_back(out);
        }
    }

    /// Writes everything queued for subscriber `k`.
    fn drain(&mut self, k: usize) {
        for _ in 0..1_000_000 {
            let mut lent = None;
            let next = self.relay.next(self.subs[k].id, &mut lent, Waker::noop());
            let out = lent.unwrap_or_default();
            match next {
                Next::Wait => return,
                Next::Closed => {
                    self.subs[k].closed = true;
                    return;
                }
                Next::Write(got) => {
                    self.relay.written(self.subs[k].id, got, self.now);
                    let s = &mut self.subs[k];
                    take_stream(
                        s,
                        &self.sent,
                        &out[..got],
                        self.magic,
                        self.max,
                        &mut self.delivered,
                    );
                    self.relay.give_back(out);
                }
            }
        }
        panic!("a queue did not drain");
    }

    /// Counts what subscriber `k` still has queued (as a delivery that
    /// goes away with it), without writing it.
    fn queued_frames(&mut self, k: usize) -> u64 {
        let s = &self.subs[k];
        let mut lent = None;
        let next = self.relay.next(s.id, &mut lent, Waker::noop());
        let out = lent.unwrap_or_default();
        let Next::Write(got) = next else {
            return 0;
        };
        // The rest of a frame in progress was counted when it started.
        let mut all = s.partial.clone();
        all.extend_from_slice(&out[..got]);
        let (mut at, mut n) = (0, 0);
        while at < all.len() {
            n += u64::from(at >= s.partial.len());
            at += expect_len(&all[at..]);
        }
        assert_eq!(at, all.len(), "a queue holds part of a frame");
        self.relay.give_back(out);
        n
    }
}

/// The length of the frame that starts `b` (its header is whole: the
/// relay only queues whole frames, checked by `take_stream`).
fn expect_len(b: &[u8]) -> usize {
    assert!(b.len() >= wire::HEADER, "less than a header");
    wire::HEADER + u32::from_le_bytes([b[16], b[17], b[18], b[19]]) as usize
}

/// Appends bytes written to subscriber `s`, checking each frame they
/// complete.
fn take_stream(
    s: &mut Sub,
    sent: &[Vec<u8>],
    bytes: &[u8],
    magic: [u8; 4],
    max: usize,
    delivered: &mut u64,
) {
    for &b in bytes {
        if s.partial.is_empty() {
            s.frames += 1;
            *delivered += 1;
        }
        s.partial.push(b);
        if s.partial.len() >= wire::HEADER && s.partial.len() == expect_len(&s.partial) {
            match wire::parse(&s.partial, magic, max) {
                Ok(Parsed::Tx { len, .. }) => assert_eq!(len, s.partial.len()),
                other => panic!("a subscriber got a frame that is not whole: {other:?}"),
            }
            let Some(i) = sent[s.from..].iter().position(|f| *f == s.partial) else {
                panic!("a subscriber got a frame that was not sent after it came, or out of order");
            };
            s.from += i + 1;
            s.partial.clear();
        }
    }
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let setup = Setup::arbitrary(u)?;
    let cfg = RelayConfig {
        decode: setup.decode,
        max_payload: usize::from(setup.max_payload) * 4,
        seen: usize::from(setup.seen % 16),
        queue_bytes: usize::from(setup.queue_bytes % 8192),
        slow: if setup.skip {
            SlowPolicy::Skip
        } else {
            SlowPolicy::Drop
        },
        slow_after: Duration::from_nanos(u64::from(setup.slow_after_ns)),
        ..RelayConfig::default()
    };
    let (cfg_magic, cfg_max) = (cfg.magic, cfg.max_payload);
    let mut relay = Relay::new(cfg, None);
    let publisher = relay.publish().expect("a first publisher is under any cap");
    let mut m = Model {
        magic: cfg_magic,
        max: cfg_max,
        relay,
        publisher,
        sent: Vec::new(),
        pending: Vec::new(),
        subs: Vec::new(),
        delivered: 0,
        now: 0,
    };
    let mut ops = 0;
    while !u.is_empty() && ops < 256 {
        ops += 1;
        match Op::arbitrary(u)? {
            Op::Subscribe if m.subs.len() < 16 => {
                let Some(id) = m.relay.subscribe(m.now) else {
                    continue;
                };
                m.subs.push(Sub {
                    id,
                    from: m.sent.len(),
                    partial: Vec::new(),
                    frames: 0,
                    closed: false,
                });
            }
            Op::Subscribe => {}
            Op::Unsubscribe(k) if !m.subs.is_empty() => {
                let k = usize::from(k) % m.subs.len();
                if !m.subs[k].closed {
                    m.delivered += m.queued_frames(k);
                }
                m.relay.unsubscribe(m.subs[k].id, false);
                m.subs.remove(k);
            }
            Op::Unsubscribe(_) => {}
            Op::Raw(bytes) => m.publish(&bytes),
            Op::Frames(payloads) => {
                let mut bytes = Vec::new();
                for p in payloads.iter().take(8) {
                    wire::encode_into(&mut bytes, m.magic, "tx", p);
                }
                m.publish(&bytes);
            }
            Op::Resend(i) if !m.sent.is_empty() => {
                let f = m.sent[usize::from(i) % m.sent.len()].clone();
                m.publish(&f);
            }
            Op::Resend(_) => {}
            Op::Write { sub, max, n } if !m.subs.is_empty() => {
                let k = usize::from(sub) % m.subs.len();
                m.write(k, usize::from(max).max(1), usize::from(n));
            }
            Op::Write { .. } => {}
            Op::Room => {
                m.relay.room(m.publisher, m.now);
            }
            Op::Tick(dt) => m.now += u64::from(dt),
            Op::Trim => m.relay.trim(m.now),
        }
    }

    // Every subscriber still there drains to nothing.
    for k in 0..m.subs.len() {
        if !m.subs[k].closed {
            m.drain(k);
        }
        if !m.subs[k].closed {
            assert!(
                m.subs[k].partial.is_empty(),
                "a drained subscriber ends mid-frame"
            );
        }
    }
    let c = m.relay.counters;
    assert_eq!(c.frames, c.relayed + c.duplicates + c.undecodable);
    assert!(c.relayed <= m.sent.len() as u64);
    if c.dropped_subscribers == 0 {
        assert_eq!(
            c.deliveries, m.delivered,
            "frames queued and frames accounted for differ"
        );
    } else {
        assert!(c.deliveries >= m.delivered);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
