//! The relay's P2P side on any bytes: the message parser, and the peer
//! logic driven through its public calls (`peer_open`, `peer_input`,
//! `peer_next`, `peer_tick`, `peer_close`, with a publisher and a
//! subscriber beside it). Checked:
//! - nothing panics, on any header, payload or interleaving;
//! - a decoded message (other than `version`, which may carry fields
//!   after its own, and `tx`) written back reads as itself;
//! - everything the relay sends a peer is whole messages with the
//!   network's magic and right checksums, each within its limit;
//! - input is consumed in order and never past what was given.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sprint_relay::p2p::msg::{self, Message};
use sprint_relay::p2p::{P2pConfig, PeerId};
use sprint_relay::wire::{self, HEADER};
use sprint_relay::{Relay, RelayConfig};
use std::task::Waker;
use std::time::{Duration, Instant};

const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];

#[derive(Debug, Arbitrary)]
enum Op {
    Open { inbound: bool },
    Close(u8),
    /// Raw bytes from a peer.
    Raw(u8, Vec<u8>),
    /// A well-framed message of any command and payload from a peer.
    Framed(u8, u8, Vec<u8>),
    Drain(u8),
    Tick(u8, u16),
}

/// Commands, so that framed input reaches every handler.
const COMMANDS: [&str; 17] = [
    "version", "verack", "wtxidrelay", "sendaddrv2", "sendheaders", "sendcmpct", "feefilter",
    "ping", "pong", "inv", "getdata", "notfound", "tx", "addr", "headers", "getaddr", "addrv2",
];

fn parse_alone(data: &[u8]) {
    let Ok(Some(h)) = msg::header(data, MAGIC, 4_000) else {
        return;
    };
    assert!(h.len <= msg::MAX_PAYLOAD);
    let Some(payload) = data.get(HEADER..HEADER + h.len) else {
        return;
    };
    if !h.decoded {
        return;
    }
    if let Ok(m) = msg::decode(h.command, payload) {
        if matches!(m, Message::Version(_) | Message::Tx(_)) {
            return;
        }
        let mut out = Vec::new();
        msg::encode(&mut out, MAGIC, &m);
        let back = msg::header(&out, MAGIC, 4_000).unwrap().unwrap();
        assert_eq!(msg::decode(back.command, &out[HEADER..]).unwrap(), m);
        assert_eq!(&out[HEADER..], payload);
    }
}

/// Checks what the relay queued to a peer: whole, checked messages.
fn check_output(bytes: &[u8]) {
    let mut at = 0;
    while at < bytes.len() {
        let h = msg::header(&bytes[at..], MAGIC, 400_000)
            .expect("the relay wrote a bad header")
            .expect("the relay wrote a partial header");
        assert!(h.decoded, "the relay wrote {:?}", h.command);
        let payload = &bytes[at + HEADER..at + HEADER + h.len];
        assert_eq!(wire::checksum(payload), h.checksum);
        msg::decode(h.command, payload).expect("the relay wrote a malformed payload");
        at += HEADER + h.len;
    }
}

fuzz_target!(|data: &[u8]| {
    parse_alone(data);
    let mut u = Unstructured::new(data);
    let cfg = RelayConfig {
        magic: MAGIC,
        seen: 64,
        p2p: P2pConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            max_peers: 4,
            max_inflight: 8,
            known: 16,
            queue_bytes: 4_096,
            store_bytes: 8_192,
            ..P2pConfig::default()
        },
        ..RelayConfig::default()
    };
    let mut r = Relay::new(cfg, None);
    let start = Instant::now();
    let mut peers: Vec<(PeerId, Vec<u8>)> = Vec::new();
    let mut spare = Vec::new();
    // An exhausted `Unstructured` still makes values (the first variant):
    // stop when the input is used up, and after a bounded number of ops.
    for _ in 0..512 {
        if u.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        let pick = |i: u8, n: usize| (n > 0).then(|| i as usize % n);
        match op {
            Op::Open { inbound } => {
                if let Some(id) = r.peer_open("127.0.0.1:9".parse().unwrap(), inbound) {
                    peers.push((id, Vec::new()));
                }
            }
            Op::Close(i) => {
                if let Some(i) = pick(i, peers.len()) {
                    r.peer_close(peers.swap_remove(i).0);
                }
            }
            Op::Raw(i, bytes) | Op::Framed(i, _, bytes) if pick(i, peers.len()).is_none() => {
                let _ = bytes;
            }
            Op::Raw(i, bytes) => {
                let i = i as usize % peers.len();
                peers[i].1.extend_from_slice(&bytes);
                feed(&mut r, &mut peers, i);
            }
            Op::Framed(i, c, payload) => {
                let i = i as usize % peers.len();
                let c = COMMANDS[c as usize % COMMANDS.len()];
                wire::encode_into(&mut peers[i].1, MAGIC, c, &payload);
                feed(&mut r, &mut peers, i);
            }
            Op::Drain(i) => {
                if let Some(i) = pick(i, peers.len()) {
                    while r.peer_next(peers[i].0, &mut spare, Waker::noop()) == Some(true) {
                        check_output(&spare);
                        spare.clear();
                    }
                }
            }
            Op::Tick(i, secs) => {
                if let Some(i) = pick(i, peers.len()) {
                    let t = start + Duration::from_secs(secs.into());
                    if !r.peer_tick(peers[i].0, t) {
                        r.peer_close(peers.swap_remove(i).0);
                    }
                }
            }
        }
    }
});

/// Feeds peer `i` what it has buffered; closes it when it is let go.
fn feed(r: &mut Relay, peers: &mut Vec<(PeerId, Vec<u8>)>, i: usize) {
    let (id, buf) = &mut peers[i];
    match r.peer_input(*id, buf, 0) {
        Ok(input) => {
            assert!(input.used <= buf.len());
            buf.drain(..input.used);
            if input.need > 0 {
                assert!(input.need > buf.len() && input.need <= HEADER + 4_000_000);
            }
        }
        Err(_) => {
            let (id, _) = peers.swap_remove(i);
            r.peer_close(id);
        }
    }
}
