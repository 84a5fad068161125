//! One publisher floods the relay with the largest transactions it takes
//! (400 kB) while an honest publisher sends small ones and an honest
//! subscriber reads at a bounded rate (2 MB/s). The flood is paced to
//! what the subscriber takes (its data waits in TCP), nothing is
//! amplified, and the subscriber is neither dropped nor skipped: it gets
//! every frame of both publishers, under either slow-subscriber policy,
//! on Sprint and on tokio. Bounded: 20 MB of flood, about 10 s each.

mod common;

use common::{tx, Rt, Running};
use sprint_relay::sample::seq_of_frame;
use sprint_relay::wire::{self, HEADER};
use sprint_relay::{RelayConfig, SlowPolicy};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The flood: 50 transactions of 400 kB (the relay's `max_payload`).
const FLOOD_FRAMES: u64 = 50;
/// The flooder's frames carry these sequence numbers; the honest ones
/// start at `HONEST`.
const HONEST: u64 = 1_000_000;
/// The honest publisher's small transactions, one every 20 ms.
const HONEST_FRAMES: u64 = 500;
/// The honest subscriber's reading rate.
const READ_RATE: f64 = 2e6;

/// A flood transaction of at most 400,000 bytes.
fn big(seq: u64) -> Vec<u8> {
    let (payload, _) = tx(seq, 399_900);
    assert!(payload.len() <= 400_000, "{}", payload.len());
    wire::tx_frame(&payload)
}

/// Reads at `READ_RATE` until it has every frame in `want` (by sequence
/// number); frames are parsed by their headers (the relay checked them).
/// Fails if the relay closes it or the deadline passes.
fn paced_reader(
    s: &mut TcpStream,
    mut want: HashSet<u64>,
    deadline: Instant,
) -> Result<usize, String> {
    let start = Instant::now();
    let mut total = 0usize;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut frames = 0;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while !want.is_empty() {
        if Instant::now() >= deadline {
            return Err(format!("{} frames missing after {frames}", want.len()));
        }
        // The pacing is the load itself: never faster than READ_RATE.
        let due = start + Duration::from_secs_f64(total as f64 / READ_RATE);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let k = match s.read(&mut chunk) {
            Ok(0) => {
                return Err(format!(
                    "the relay closed the honest subscriber after {frames} frames"
                ))
            }
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => return Err(format!("honest subscriber: {e} after {frames} frames")),
        };
        total += k;
        buf.extend_from_slice(&chunk[..k]);
        let mut at = 0;
        while buf.len() - at >= HEADER {
            let len = u32::from_le_bytes(buf[at + 16..at + 20].try_into().unwrap()) as usize;
            if buf.len() - at < HEADER + len {
                break;
            }
            let frame = &buf[at..at + HEADER + len];
            assert_eq!(frame[..4], wire::MAINNET);
            let seq = seq_of_frame(frame).unwrap();
            assert!(want.remove(&seq), "frame {seq} twice or unknown");
            frames += 1;
            at += HEADER + len;
        }
        buf.drain(..at);
    }
    Ok(frames)
}

fn flood(rt: Rt, policy: SlowPolicy, queue_bytes: usize) {
    let relay = Running::start(
        rt,
        RelayConfig {
            slow: policy,
            queue_bytes,
            ..RelayConfig::default()
        },
    );
    let mut sub = relay.subscribe();
    // Registered once a probe from the honest publisher arrives.
    let mut honest = relay.publish();
    let (probe, _) = tx(HONEST - 1, 40);
    honest.write_all(&wire::tx_frame(&probe)).unwrap();
    let mut want: HashSet<u64> = (0..FLOOD_FRAMES).collect();
    want.extend(HONEST - 1..HONEST + HONEST_FRAMES);

    let mut flooder = relay.publish();
    let flooding = std::thread::spawn(move || {
        for i in 0..FLOOD_FRAMES {
            flooder.write_all(&big(i)).unwrap();
        }
        flooder
    });
    let sending = std::thread::spawn(move || {
        for i in 0..HONEST_FRAMES {
            let (payload, _) = tx(HONEST + i, 40);
            honest.write_all(&wire::tx_frame(&payload)).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        honest
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let read = paced_reader(&mut sub, want, deadline);
    if let Err(e) = read {
        // The threads may be blocked on a relay that stopped reading.
        let c = relay.finish().counters;
        panic!("{rt:?} {policy:?} queue {queue_bytes}: {e}: {c:?}");
    }
    let frames = read.unwrap();
    let _flooder = flooding.join().unwrap();
    let _honest = sending.join().unwrap();
    let c = relay.finish().counters;
    let all = FLOOD_FRAMES + HONEST_FRAMES + 1;
    assert_eq!(frames as u64, all, "{rt:?} {policy:?}: {c:?}");
    assert_eq!(
        (c.dropped_subscribers, c.skipped),
        (0, 0),
        "{rt:?} {policy:?}: {c:?}"
    );
    assert_eq!((c.relayed, c.deliveries), (all, all), "{c:?}");
    assert!(c.paused > 0, "the flood was never held back: {c:?}");
    eprintln!(
        "{rt:?} {policy:?} queue {queue_bytes}: {frames} frames, paused {}",
        c.paused
    );
}

#[test]
fn a_flood_of_large_transactions_is_paced_and_the_honest_get_everything_on_sprint_drop() {
    flood(
        Rt::Sprint,
        SlowPolicy::Drop,
        RelayConfig::default().queue_bytes,
    );
}

#[test]
fn a_flood_of_large_transactions_is_paced_and_the_honest_get_everything_on_sprint_skip() {
    flood(Rt::Sprint, SlowPolicy::Skip, 4 << 20);
}

#[test]
fn a_flood_of_large_transactions_is_paced_and_the_honest_get_everything_on_two_workers() {
    flood(
        Rt::Workers(2),
        SlowPolicy::Drop,
        RelayConfig::default().queue_bytes,
    );
}

#[cfg(feature = "tokio")]
#[test]
fn a_flood_of_large_transactions_is_paced_and_the_honest_get_everything_on_tokio_drop() {
    flood(Rt::Tokio, SlowPolicy::Drop, 4 << 20);
}

#[cfg(feature = "tokio")]
#[test]
fn a_flood_of_large_transactions_is_paced_and_the_honest_get_everything_on_tokio_skip() {
    flood(
        Rt::Tokio,
        SlowPolicy::Skip,
        RelayConfig::default().queue_bytes,
    );
}
