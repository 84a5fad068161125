//! The relay, on Sprint and on tokio (and monoio and glommio, with their
//! features) through the same seam: every new
//! transaction reaches every subscriber once; duplicates are dropped;
//! each kind of malformed input is counted and closes only its own
//! connection; a slow subscriber is dropped or skipped by the policy while
//! the others get everything.

use bitcoin::hashes::Hash;
use bitcoin::Transaction;
use sprint_relay::wire::{self, Parsed};
use sprint_relay::{RelayConfig, SlowPolicy};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

mod common;
use common::{read_frames, tx, Rt, Running};

fn fan_out(rt: Rt, decode: bool) {
    let relay = Running::start(
        rt,
        RelayConfig {
            decode,
            ..RelayConfig::default()
        },
    );
    let mut subs: Vec<TcpStream> = (0..3).map(|_| relay.subscribe()).collect();
    relay.wait_for_subscribers(3);
    // Two publishers: 200 transactions each, the last 50 of the second
    // repeating the first's.
    let mut expected = Vec::new();
    let mut streams = Vec::new();
    for p in 0..2u64 {
        let mut s = relay.publish();
        let mut bytes = Vec::new();
        for i in 0..200u64 {
            let id = if p == 1 && i >= 150 {
                i - 150
            } else {
                p * 1_000 + i
            };
            let (payload, txid) = tx(id, 40);
            if !(p == 1 && i >= 150) {
                expected.push(txid);
            }
            bytes.extend_from_slice(&wire::tx_frame(&payload));
        }
        s.write_all(&bytes).unwrap();
        streams.push(s);
        // One publisher at a time, so that the duplicates come second.
        let read = 200 * (p + 1);
        relay.wait_until(&format!("{read} frames read"), |c| c.frames == read);
    }
    for s in subs.iter_mut() {
        let got = read_frames(s, expected.len());
        let mut counts: HashMap<[u8; 32], usize> = HashMap::new();
        for id in &got {
            *counts.entry(*id).or_default() += 1;
        }
        assert_eq!(counts.len(), expected.len(), "{rt:?}");
        assert!(counts.values().all(|c| *c == 1), "each once ({rt:?})");
        assert!(expected.iter().all(|id| counts.contains_key(id)));
    }
    let f = relay.finish();
    assert_eq!(f.counters.frames, 400, "{:?}", f.counters);
    assert_eq!(f.counters.relayed, 350);
    assert_eq!(f.counters.duplicates, 50);
    assert_eq!(f.counters.deliveries, 3 * 350);
    // Sprint's histogram records the relay's latency; the others have
    // none.
    if matches!(rt, Rt::Sprint) {
        assert!(f.latency.unwrap().count >= 3 * 350);
    } else {
        assert!(f.latency.is_none());
    }
}

#[test]
fn every_new_transaction_reaches_every_subscriber_once_on_sprint() {
    fan_out(Rt::Sprint, true);
}

#[cfg(feature = "tokio")]
#[test]
fn every_new_transaction_reaches_every_subscriber_once_on_tokio() {
    fan_out(Rt::Tokio, true);
}

#[cfg(feature = "monoio")]
#[test]
fn every_new_transaction_reaches_every_subscriber_once_on_monoio() {
    fan_out(Rt::Monoio, true);
}

#[cfg(feature = "glommio")]
#[test]
fn every_new_transaction_reaches_every_subscriber_once_on_glommio() {
    fan_out(Rt::Glommio, true);
}

#[test]
fn without_decoding_duplicates_are_found_by_the_payload_hash() {
    fan_out(Rt::Sprint, false);
}

fn malformed(rt: Rt) {
    let relay = Running::start(rt, RelayConfig::default());
    let mut sub = relay.subscribe();
    relay.wait_for_subscribers(1);
    let good = relay.publish();
    let (payload, _) = tx(1, 40);
    let ok = wire::tx_frame(&payload);
    let mut bad_magic = ok.clone();
    bad_magic[0] ^= 0xff;
    let mut bad_sum = ok.clone();
    bad_sum[20] ^= 0xff;
    let mut oversize = ok.clone();
    oversize[16..20].copy_from_slice(&(10_000_000u32).to_le_bytes());
    let undecodable = wire::tx_frame(&[0xde, 0xad, 0xbe, 0xef]);
    let mut command = Vec::new();
    wire::encode_into(&mut command, wire::MAINNET, "inv", &payload);
    let cases = [bad_magic, bad_sum, oversize, undecodable, command];
    let mut good = good;
    for (k, case) in cases.iter().enumerate() {
        let mut bad = relay.publish();
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        bad.write_all(case).unwrap();
        // The relay closes the offending connection...
        let mut b = [0u8; 1];
        let n = bad.read(&mut b);
        assert!(matches!(n, Ok(0) | Err(_)), "case {k}: {n:?}");
        // ...and keeps serving everyone else.
        let (p, id) = tx(100 + k as u64, 40);
        good.write_all(&wire::tx_frame(&p)).unwrap();
        assert_eq!(read_frames(&mut sub, 1), vec![id], "case {k} ({rt:?})");
    }
    let c = relay.finish().counters;
    assert_eq!(
        (
            c.bad_magic,
            c.bad_checksum,
            c.oversize,
            c.undecodable,
            c.bad_command
        ),
        (1, 1, 1, 1, 1),
        "{c:?}"
    );
    assert_eq!(c.relayed, 5);
}

#[test]
fn malformed_input_is_counted_and_closes_only_its_connection_on_sprint() {
    malformed(Rt::Sprint);
}

#[cfg(feature = "tokio")]
#[test]
fn malformed_input_is_counted_and_closes_only_its_connection_on_tokio() {
    malformed(Rt::Tokio);
}

#[cfg(feature = "monoio")]
#[test]
fn malformed_input_is_counted_and_closes_only_its_connection_on_monoio() {
    malformed(Rt::Monoio);
}

#[cfg(feature = "glommio")]
#[test]
fn malformed_input_is_counted_and_closes_only_its_connection_on_glommio() {
    malformed(Rt::Glommio);
}

/// A subscriber that never reads, with a small receive buffer.
fn sluggish(addr: SocketAddr) -> socket2::Socket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    s
}

fn slow(rt: Rt, policy: SlowPolicy) {
    let relay = Running::start(
        rt,
        RelayConfig {
            slow: policy,
            queue_bytes: 256 << 10,
            ..RelayConfig::default()
        },
    );
    let mut fast = relay.subscribe();
    let lazy = sluggish(relay.addrs.subscribers);
    relay.wait_for_subscribers(2);
    let mut p = relay.publish();
    // 1,000 transactions of about 10 KB: far more than the lazy one's
    // socket buffers and queue hold.
    let n = 1_000;
    let writer = std::thread::spawn(move || {
        for i in 0..n {
            let (payload, _) = tx(i, 10_000);
            p.write_all(&wire::tx_frame(&payload)).unwrap();
        }
        p
    });
    let got = read_frames(&mut fast, n as usize);
    assert_eq!(got.len(), n as usize);
    let _p = writer.join().unwrap();
    let c = relay.finish().counters;
    assert_eq!(c.relayed, n);
    match policy {
        SlowPolicy::Drop => {
            assert_eq!(c.dropped_subscribers, 1, "{c:?}");
            assert_eq!(c.skipped, 0);
        }
        SlowPolicy::Skip => {
            assert_eq!(c.dropped_subscribers, 0, "{c:?}");
            assert!(c.skipped > 0, "{c:?}");
        }
    }
    // Everything queued for the lazy one is bounded by its queue: what it
    // got plus what was dropped or skipped is all the rest.
    assert!(c.deliveries < 2 * n, "{c:?}");
    drop(lazy);
}

/// When every subscriber is behind, the relay is what is slow: publishers
/// wait (their data stays in TCP) and no subscriber is dropped, under the
/// drop policy, however much more is published than the queues hold.
fn relay_behind(rt: Rt) {
    let relay = Running::start(
        rt,
        RelayConfig {
            queue_bytes: 256 << 10,
            // The readers are not slow, only late and then limited by
            // their 4 KiB receive windows: draining what the kernel took
            // in during the pause (megabytes of send buffer) before a
            // queue gets under half took over 5 s on a loaded machine.
            slow_after: Duration::from_secs(60),
            ..RelayConfig::default()
        },
    );
    // Small receive buffers, so that the queues, not the kernel, hold
    // what the subscribers have not read.
    let subs: Vec<TcpStream> = (0..2)
        .map(|_| {
            let s: TcpStream = sluggish(relay.addrs.subscribers).into();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s
        })
        .collect();
    relay.wait_for_subscribers(2);
    let mut p = relay.publish();
    // 2,000 transactions of about 30 KB: 60 MB, more than the queues and
    // the kernel's socket buffers on the way hold (the relay's receive
    // buffer alone may grow to 32 MB).
    let n = 2_000;
    let frames: Vec<u8> = (0..n)
        .flat_map(|i| wire::tx_frame(&tx(i, 30_000).0))
        .collect();
    let sent = frames.clone();
    let writer = std::thread::spawn(move || {
        p.write_all(&sent).unwrap();
        p
    });
    // Nobody reads until the socket buffers and both queues have filled,
    // together, so far that the relay holds its publisher back. Then
    // each reads everything, on a thread of its own.
    relay.wait_until("the publisher held back (paused > 0)", |c| c.paused > 0);
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut s| {
            let want = frames.len();
            std::thread::spawn(move || {
                let mut got = Vec::with_capacity(want);
                let mut chunk = vec![0u8; 16 << 10];
                while got.len() < want {
                    let k = s.read(&mut chunk).expect("subscriber read");
                    assert!(
                        k > 0,
                        "the relay closed a subscriber after {} bytes",
                        got.len()
                    );
                    got.extend_from_slice(&chunk[..k]);
                }
                got
            })
        })
        .collect();
    for r in readers {
        assert!(
            r.join().unwrap() == frames,
            "every transaction, once, in order"
        );
    }
    let _p = writer.join().unwrap();
    let c = relay.finish().counters;
    assert_eq!(c.relayed, n);
    assert_eq!(c.dropped_subscribers, 0, "{c:?}");
    assert_eq!(c.skipped, 0, "{c:?}");
    assert!(c.paused > 0, "the publisher waited: {c:?}");
}

#[test]
fn a_relay_behind_all_its_subscribers_holds_its_publishers_back_on_sprint() {
    relay_behind(Rt::Sprint);
}

#[test]
fn a_relay_behind_all_its_subscribers_holds_its_publishers_back_on_two_workers() {
    relay_behind(Rt::Workers(2));
}

#[cfg(feature = "tokio")]
#[test]
fn a_relay_behind_all_its_subscribers_holds_its_publishers_back_on_tokio() {
    relay_behind(Rt::Tokio);
}

#[test]
fn a_slow_subscriber_is_dropped_and_the_others_get_everything_on_sprint() {
    slow(Rt::Sprint, SlowPolicy::Drop);
}

#[test]
fn a_slow_subscriber_is_dropped_and_the_others_get_everything_on_two_workers() {
    slow(Rt::Workers(2), SlowPolicy::Drop);
}

#[cfg(feature = "tokio")]
#[test]
fn a_slow_subscriber_is_skipped_by_the_skip_policy_on_tokio() {
    slow(Rt::Tokio, SlowPolicy::Skip);
}

#[cfg(feature = "tokio")]
#[test]
fn a_slow_subscriber_is_dropped_on_tokio_too() {
    slow(Rt::Tokio, SlowPolicy::Drop);
}

#[cfg(feature = "monoio")]
#[test]
fn a_slow_subscriber_is_dropped_on_monoio() {
    slow(Rt::Monoio, SlowPolicy::Drop);
}

#[cfg(feature = "glommio")]
#[test]
fn a_slow_subscriber_is_dropped_on_glommio() {
    slow(Rt::Glommio, SlowPolicy::Drop);
}

#[cfg(feature = "monoio")]
#[test]
fn a_relay_behind_all_its_subscribers_holds_its_publishers_back_on_monoio() {
    relay_behind(Rt::Monoio);
}

#[cfg(feature = "glommio")]
#[test]
fn a_relay_behind_all_its_subscribers_holds_its_publishers_back_on_glommio() {
    relay_behind(Rt::Glommio);
}

/// The relay keys duplicates by the payload's double SHA-256, which the
/// frame's checksum needs anyway: it is the bitcoin crate's wtxid with and
/// without witness data (and the txid without it).
#[test]
fn the_duplicate_key_is_the_bitcoin_crates_wtxid_with_and_without_witness() {
    let key_of = |payload: &[u8]| {
        let f = wire::tx_frame(payload);
        match wire::parse(&f, wire::MAINNET, 4_000_000).unwrap() {
            Parsed::Tx { hash, .. } => hash,
            other => panic!("a whole frame, not {other:?}"),
        }
    };
    let (legacy, id) = tx(7, 40);
    let t: Transaction = bitcoin::consensus::deserialize(&legacy).unwrap();
    assert_eq!(key_of(&legacy), t.compute_wtxid().to_byte_array());
    assert_eq!(key_of(&legacy), id, "without witness, wtxid = txid");
    let mut w = t.clone();
    w.input[0].witness = bitcoin::Witness::from_slice(&[vec![1u8; 72], vec![2u8; 33]]);
    let segwit = bitcoin::consensus::serialize(&w);
    assert_eq!(key_of(&segwit), w.compute_wtxid().to_byte_array());
    assert_ne!(key_of(&segwit), id, "the witness is in the key");
}

#[test]
fn a_bad_policy_name_is_a_clear_error() {
    let e = "slowly".parse::<SlowPolicy>().unwrap_err().to_string();
    assert!(e.contains("slowly") && e.contains("drop or skip"), "{e}");
}
