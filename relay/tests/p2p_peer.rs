//! The relay's peer logic without sockets: bytes in through
//! `Relay::peer_input`, bytes out through `Relay::peer_next`, decoded
//! here with the relay's own parser (the independent peer is
//! `p2p_python.rs`). Handshake both ways, wtxid negotiation, inv →
//! getdata → tx, announcements batched and filtered, getdata and
//! notfound, ping, timeouts, misbehaviour by kind, and the join with the
//! publisher/subscriber path.

use bitcoin::hashes::Hash;
use sprint_relay::core::Next;
use sprint_relay::p2p::msg::{self, inv, Inv, Message, NetAddr, Version};
use sprint_relay::p2p::{Gone, P2pConfig, PeerId};
use sprint_relay::wire::{self, HEADER};
use sprint_relay::{Relay, RelayConfig};
use std::task::Waker;
use std::time::{Duration, Instant};

const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];

fn relay() -> Relay {
    let cfg = RelayConfig {
        magic: MAGIC,
        p2p: P2pConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..P2pConfig::default()
        },
        ..RelayConfig::default()
    };
    Relay::new(cfg, None)
}

/// Real transactions (the bitcoin crate's test vectors): name, bytes.
fn vectors() -> Vec<(String, Vec<u8>)> {
    include_str!("data/transactions.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let hex = f[2];
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (f[0].to_string(), bytes)
        })
        .collect()
}

fn ids(raw: &[u8]) -> ([u8; 32], [u8; 32]) {
    let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(raw).unwrap();
    (
        tx.compute_txid().to_byte_array(),
        tx.compute_wtxid().to_byte_array(),
    )
}

fn framed(m: &Message<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    msg::encode(&mut v, MAGIC, m);
    v
}

fn inv_frame(command: &str, entries: &[Inv]) -> Vec<u8> {
    let mut v = Vec::new();
    msg::encode_inv(&mut v, MAGIC, command, entries.iter().copied());
    v
}

fn send(r: &mut Relay, id: PeerId, bytes: &[u8]) -> Result<(), Gone> {
    let input = r.peer_input(id, bytes, 0)?;
    assert_eq!(input.used, bytes.len(), "whole messages are consumed");
    Ok(())
}

/// The messages queued to a peer: command, payload.
fn out(r: &mut Relay, id: PeerId) -> Vec<(String, Vec<u8>)> {
    let mut spare = Vec::new();
    let mut all = Vec::new();
    while r.peer_next(id, &mut spare, Waker::noop()) == Some(true) {
        let mut at = 0;
        while at < spare.len() {
            let h = msg::header(&spare[at..], MAGIC, 400_000).unwrap().unwrap();
            let payload = spare[at + HEADER..at + HEADER + h.len].to_vec();
            assert_eq!(h.checksum, wire::checksum(&payload));
            all.push((h.command.to_string(), payload));
            at += HEADER + h.len;
        }
        spare.clear();
    }
    all
}

fn commands(m: &[(String, Vec<u8>)]) -> Vec<&str> {
    m.iter().map(|(c, _)| c.as_str()).collect()
}

fn their_version(nonce: u64) -> Version {
    Version {
        version: 70_016,
        services: 9,
        timestamp: 0,
        receiver: NetAddr::default(),
        sender: NetAddr::default(),
        nonce,
        user_agent: "/test/".into(),
        start_height: 5,
        relay: true,
    }
}

fn entries(payload: &[u8]) -> Vec<Inv> {
    let Message::Inv(l) = msg::decode(msg::Command(*b"inv\0\0\0\0\0\0\0\0\0"), payload).unwrap()
    else {
        unreachable!()
    };
    l.iter().collect()
}

/// An inbound peer through the handshake; `wtxid` if it negotiates it.
fn ready_peer(r: &mut Relay, wtxid: bool) -> PeerId {
    let id = r.peer_open("127.0.0.1:1".parse().unwrap(), true).unwrap();
    send(r, id, &framed(&Message::Version(their_version(12_345)))).unwrap();
    if wtxid {
        send(r, id, &framed(&Message::WtxidRelay)).unwrap();
    }
    send(r, id, &framed(&Message::Verack)).unwrap();
    out(r, id);
    id
}

#[test]
fn inbound_handshake_answers_version_with_the_relays_and_negotiates() {
    let mut r = relay();
    let id = r.peer_open("127.0.0.1:1".parse().unwrap(), true).unwrap();
    assert!(out(&mut r, id).is_empty(), "an inbound peer speaks first");
    send(&mut r, id, &framed(&Message::Version(their_version(1)))).unwrap();
    let got = out(&mut r, id);
    assert_eq!(
        commands(&got),
        ["version", "wtxidrelay", "sendaddrv2", "verack"]
    );
    let Message::Version(v) = msg::decode(msg::Command(*b"version\0\0\0\0\0"), &got[0].1).unwrap()
    else {
        unreachable!()
    };
    assert_eq!((v.version, v.start_height, v.relay), (70_016, 0, true));
    assert_eq!(v.services, msg::NODE_WITNESS);
    assert_eq!(
        v.user_agent,
        concat!("/sprint-relay:", env!("CARGO_PKG_VERSION"), "/")
    );
    send(&mut r, id, &framed(&Message::WtxidRelay)).unwrap();
    send(&mut r, id, &framed(&Message::SendAddrV2)).unwrap();
    assert_eq!(r.counters.p2p.handshakes, 0);
    send(&mut r, id, &framed(&Message::Verack)).unwrap();
    assert_eq!(r.counters.p2p.handshakes, 1);
    // Negotiation is over: a late wtxidrelay is out of order.
    send(&mut r, id, &framed(&Message::WtxidRelay)).unwrap();
    assert_eq!(r.counters.p2p.out_of_order, 1);
}

#[test]
fn outbound_peers_get_the_version_first_and_a_self_connection_is_caught() {
    let mut r = relay();
    let out_id = r.peer_open("127.0.0.1:2".parse().unwrap(), false).unwrap();
    let first = out(&mut r, out_id);
    assert_eq!(commands(&first), ["version"]);
    // The relay connected to itself: its own version arrives inbound.
    let in_id = r.peer_open("127.0.0.1:3".parse().unwrap(), true).unwrap();
    let mut ours = Vec::new();
    wire::encode_into(&mut ours, MAGIC, "version", &first[0].1);
    assert_eq!(send(&mut r, in_id, &ours), Err(Gone::SelfConnection));
    assert_eq!(r.counters.p2p.self_connections, 1);
    // An honest answer completes the outbound handshake (no wtxidrelay
    // for a 70015 peer).
    let mut old = their_version(99);
    old.version = 70_015;
    send(&mut r, out_id, &framed(&Message::Version(old))).unwrap();
    assert_eq!(commands(&out(&mut r, out_id)), ["sendaddrv2", "verack"]);
    send(&mut r, out_id, &framed(&Message::Verack)).unwrap();
    assert_eq!(r.counters.p2p.handshakes, 1);
    let mut ancient = their_version(98);
    ancient.version = 209;
    let third = r.peer_open("127.0.0.1:4".parse().unwrap(), true).unwrap();
    let v = framed(&Message::Version(ancient));
    assert_eq!(send(&mut r, third, &v), Err(Gone::Obsolete));
}

#[test]
fn inv_getdata_tx_by_wtxid_and_by_txid_with_filters_and_notfound() {
    let mut r = relay();
    let a = ready_peer(&mut r, true);
    let b = ready_peer(&mut r, false);
    let txs = vectors();
    let (name, raw) = &txs[1];
    assert_eq!(name, "p2wsh");
    let (txid, wtxid) = ids(raw);
    assert_ne!(txid, wtxid);
    // A announces by wtxid; the relay asks for it by wtxid.
    let ann = [Inv {
        kind: inv::WTX,
        hash: wtxid,
    }];
    send(&mut r, a, &inv_frame("inv", &ann)).unwrap();
    let asked = out(&mut r, a);
    assert_eq!(commands(&asked), ["getdata"]);
    assert_eq!(entries(&asked[0].1), ann);
    // A txid announcement from a wtxid-relay peer is ignored (BIP 339).
    let by_txid = [Inv {
        kind: inv::TX,
        hash: txid,
    }];
    send(&mut r, a, &inv_frame("inv", &by_txid)).unwrap();
    assert!(out(&mut r, a).is_empty());
    send(&mut r, a, &framed(&Message::Tx(raw))).unwrap();
    assert_eq!(
        (r.counters.p2p.tx_received, r.counters.p2p.unsolicited),
        (1, 0)
    );
    // B (no wtxidrelay) hears of it by txid; A, its source, not at all.
    let told = out(&mut r, b);
    assert_eq!(commands(&told), ["inv"]);
    assert_eq!(entries(&told[0].1), by_txid);
    assert!(out(&mut r, a).is_empty());
    // B asks: plain MSG_TX gets it without the witness, MSG_WITNESS_TX
    // with it; something never seen gets notfound.
    let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(raw).unwrap();
    let mut bare = tx.clone();
    bare.input.iter_mut().for_each(|i| i.witness.clear());
    let want = [
        Inv {
            kind: inv::TX,
            hash: txid,
        },
        Inv {
            kind: inv::WITNESS_TX,
            hash: txid,
        },
        Inv {
            kind: inv::WTX,
            hash: [7; 32],
        },
    ];
    send(&mut r, b, &inv_frame("getdata", &want)).unwrap();
    let got = out(&mut r, b);
    assert_eq!(commands(&got), ["tx", "tx", "notfound"]);
    assert_eq!(got[0].1, bitcoin::consensus::serialize(&bare));
    assert_eq!(&got[1].1, raw);
    assert_eq!(entries(&got[2].1), want[2..]);
    // Announced again by B: already seen, not asked for.
    send(&mut r, b, &inv_frame("inv", &by_txid)).unwrap();
    assert!(out(&mut r, b).is_empty());
    assert_eq!(r.counters.p2p.requested, 1);
}

#[test]
fn announcements_are_batched_per_turn_and_honour_feefilter() {
    let mut r = relay();
    let (a, b, c) = (
        ready_peer(&mut r, true),
        ready_peer(&mut r, true),
        ready_peer(&mut r, false),
    );
    send(
        &mut r,
        c,
        &framed(&Message::FeeFilter(21_000_000 * 100_000_000)),
    )
    .unwrap();
    let txs = vectors();
    for (_, raw) in &txs {
        send(&mut r, a, &framed(&Message::Tx(raw))).unwrap();
    }
    assert_eq!(r.counters.p2p.unsolicited, txs.len() as u64);
    let told = out(&mut r, b);
    assert_eq!(commands(&told), ["inv"], "one inv for the whole turn");
    let wtxids: Vec<Inv> = txs
        .iter()
        .map(|(_, raw)| Inv {
            kind: inv::WTX,
            hash: ids(raw).1,
        })
        .collect();
    assert_eq!(entries(&told[0].1), wtxids);
    assert!(out(&mut r, c).is_empty(), "its feefilter wants none");
    // The same transactions again: duplicates, announced to no one.
    send(&mut r, b, &framed(&Message::Tx(&txs[0].1))).unwrap();
    assert!(out(&mut r, a).is_empty() && out(&mut r, b).is_empty());
    assert_eq!(r.counters.duplicates, 1);
}

#[test]
fn garbage_and_broken_messages_score_by_kind_until_the_peer_goes() {
    let mut r = relay();
    let g = r.peer_open("127.0.0.1:5".parse().unwrap(), true).unwrap();
    assert_eq!(
        send(&mut r, g, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        Err(Gone::Misbehaving)
    );
    assert_eq!(
        (r.counters.p2p.bad_magic, r.counters.p2p.misbehaving),
        (1, 1)
    );
    let p = ready_peer(&mut r, true);
    let mut bad = framed(&Message::Ping(1));
    bad[20] ^= 1;
    send(&mut r, p, &bad).unwrap();
    assert_eq!(r.counters.p2p.bad_checksum, 1);
    // A tx that is not a transaction.
    assert_eq!(
        send(&mut r, p, &framed(&Message::Tx(&[1, 2, 3]))),
        Err(Gone::Misbehaving)
    );
    assert_eq!(r.counters.p2p.undecodable_tx, 1);
    assert_eq!(r.counters.p2p.misbehaving, 2);
    assert!(r.peer_next(p, &mut Vec::new(), Waker::noop()).is_none());
}

#[test]
fn other_commands_are_skipped_as_they_stream_in() {
    let mut r = relay();
    let p = ready_peer(&mut r, false);
    let mut stream = Vec::new();
    wire::encode_into(&mut stream, MAGIC, "headers", &[7; 5000]);
    wire::encode_into(&mut stream, MAGIC, "getaddr", &[]);
    wire::encode_into(&mut stream, MAGIC, "addrv2", &[1; 40]);
    stream.extend(inv_frame(
        "inv",
        &[Inv {
            kind: inv::BLOCK,
            hash: [3; 32],
        }],
    ));
    stream.extend(framed(&Message::Ping(42)));
    // A byte at a time: a skipped payload is never held whole (the
    // largest held is the block inv, which is decoded: 61 bytes).
    let mut held = Vec::new();
    for b in stream {
        held.push(b);
        let input = r.peer_input(p, &held, 0).unwrap();
        held.drain(..input.used);
        assert!(held.len() <= HEADER + 37, "held {} bytes", held.len());
    }
    assert_eq!(r.counters.p2p.ignored, 4);
    let got = out(&mut r, p);
    assert_eq!(commands(&got), ["pong"]);
    assert_eq!(got[0].1, 42u64.to_le_bytes());
    // A skipped message with a bad checksum still counts.
    let mut bad = Vec::new();
    wire::encode_into(&mut bad, MAGIC, "addr", &[0; 31]);
    bad[HEADER] = 1;
    send(&mut r, p, &bad).unwrap();
    assert_eq!(r.counters.p2p.bad_checksum, 1);
}

#[test]
fn timers_close_slow_handshakes_and_dead_peers_and_ping_the_live() {
    let mut r = relay();
    let t = Instant::now();
    let slow = r.peer_open("127.0.0.1:6".parse().unwrap(), true).unwrap();
    assert!(r.peer_tick(slow, t + Duration::from_secs(30)));
    assert!(!r.peer_tick(slow, t + Duration::from_secs(61)));
    assert_eq!(r.counters.p2p.handshake_timeouts, 1);
    let p = ready_peer(&mut r, true);
    let t = Instant::now();
    assert!(r.peer_tick(p, t + Duration::from_secs(119)));
    assert!(out(&mut r, p).is_empty());
    assert!(r.peer_tick(p, t + Duration::from_secs(121)));
    let ping = out(&mut r, p);
    assert_eq!(commands(&ping), ["ping"]);
    let nonce = u64::from_le_bytes(ping[0].1[..].try_into().unwrap());
    send(&mut r, p, &framed(&Message::Pong(nonce ^ 1))).unwrap();
    assert_eq!(r.counters.p2p.pongs, 0, "not its nonce");
    send(&mut r, p, &framed(&Message::Pong(nonce))).unwrap();
    assert_eq!(r.counters.p2p.pongs, 1);
    // Pinged again a ping interval after the pong; unanswered, it goes.
    let t = Instant::now();
    assert!(r.peer_tick(p, t + Duration::from_secs(121)));
    assert!(!r.peer_tick(p, t + Duration::from_secs(121 + 91)));
    assert_eq!(r.counters.p2p.ping_timeouts, 1);
}

#[test]
fn publishers_transactions_reach_peers_and_peers_reach_subscribers() {
    let mut r = relay();
    let p = ready_peer(&mut r, false);
    let sub = r.subscribe(0).unwrap();
    let publisher = r.publish().unwrap();
    let txs = vectors();
    let mut f = Vec::new();
    wire::encode_into(&mut f, MAGIC, "tx", &txs[3].1);
    r.take(publisher, &f, 0).unwrap();
    let told = out(&mut r, p);
    let txid = ids(&txs[3].1).0;
    assert_eq!(
        entries(&told[0].1),
        [Inv {
            kind: inv::TX,
            hash: txid
        }]
    );
    let peer_frame = framed(&Message::Tx(&txs[4].1));
    send(&mut r, p, &peer_frame).unwrap();
    let mut lent = None;
    let Next::Write(n) = r.next(sub, &mut lent, Waker::noop()) else {
        panic!("nothing for the subscriber")
    };
    let buf = lent.unwrap();
    assert_eq!(&buf[..n], [f, peer_frame].concat());
}
