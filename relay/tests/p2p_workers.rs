//! The relay's P2P side on 1, 2 and 4 Sprint workers: eight peers connect
//! (the kernel spreads them over the workers' listeners), one of them
//! sends 300 transactions, and every other peer is announced each exactly
//! once, in the order the source sent them, and can fetch each from the
//! worker it is on. Two sources on different connections sending the
//! same transactions do not make any peer hear one twice.

use sprint_relay::p2p::msg::{self, inv, Message, NetAddr, Network, Version};
use sprint_relay::p2p::P2pConfig;
use sprint_relay::wire::HEADER;
use sprint_relay::RelayConfig;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

mod common;
use common::{tx, Rt, Running};

const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];

/// A blocking peer that completed the handshake (with wtxidrelay).
struct Peer {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    fn connect(to: SocketAddr, nonce: u64) -> Peer {
        let s = TcpStream::connect(to).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut p = Peer { s, buf: Vec::new() };
        let v = Version {
            version: msg::PROTOCOL_VERSION,
            services: msg::NODE_WITNESS,
            timestamp: 0,
            receiver: NetAddr::of(to, 0),
            sender: NetAddr::default(),
            nonce,
            user_agent: "/p2p_workers:0/".into(),
            start_height: 0,
            relay: true,
        };
        p.send(&Message::Version(v));
        p.send(&Message::WtxidRelay);
        let mut verack = false;
        while !verack {
            match p.next() {
                (c, _) if c == "version" => p.send(&Message::Verack),
                (c, _) if c == "verack" => verack = true,
                _ => {}
            }
        }
        p
    }

    fn send(&mut self, m: &Message<'_>) {
        let mut out = Vec::new();
        msg::encode(&mut out, MAGIC, m);
        self.s.write_all(&out).unwrap();
    }

    /// The next message: its command's name and its payload.
    fn next(&mut self) -> (String, Vec<u8>) {
        let (c, p) = self.next_raw();
        (String::from_utf8_lossy(c.name()).into_owned(), p)
    }

    fn next_raw(&mut self) -> (msg::Command, Vec<u8>) {
        loop {
            if let Some(h) = msg::header(&self.buf, MAGIC, 4_000_000).unwrap() {
                if self.buf.len() >= HEADER + h.len {
                    let payload = self.buf[HEADER..HEADER + h.len].to_vec();
                    self.buf.drain(..HEADER + h.len);
                    return (h.command, payload);
                }
            }
            let mut chunk = [0u8; 65_536];
            let n = self.s.read(&mut chunk).expect("a peer's read");
            assert!(n > 0, "the relay closed a peer");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The wtxids announced to it, in order, until it has `n` (answering
    /// pings meanwhile).
    fn announced(&mut self, n: usize) -> Vec<[u8; 32]> {
        let mut got = Vec::new();
        while got.len() < n {
            let (c, payload) = self.next_raw();
            let Ok(m) = msg::decode(c, &payload) else {
                continue;
            };
            match m {
                Message::Inv(list) => {
                    got.extend(list.iter().filter(|e| e.kind == inv::WTX).map(|e| e.hash))
                }
                Message::Ping(k) => self.send(&Message::Pong(k)),
                _ => {}
            }
        }
        got
    }
}

fn peers_on(n: usize) {
    let cfg = RelayConfig {
        magic: Network::Regtest.magic(),
        p2p: P2pConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..P2pConfig::default()
        },
        ..RelayConfig::default()
    };
    let relay = Running::start(Rt::Workers(n), cfg);
    let at = relay.p2p_addr().unwrap();
    let mut source = Peer::connect(at, 1);
    let mut second = Peer::connect(at, 2);
    let mut peers: Vec<Peer> = (0..6).map(|i| Peer::connect(at, 10 + i)).collect();
    relay.wait_until("8 handshakes", |c| c.p2p.handshakes == 8);
    // 300 transactions from the source; the second source sends the first
    // 50 again, after them.
    let mut order = HashMap::new();
    let mut raw = Vec::new();
    for i in 0..300u64 {
        let (payload, wtxid) = tx(7_000 + i, 40);
        order.insert(wtxid, i);
        raw.push(payload);
    }
    for r in &raw {
        source.send(&Message::Tx(r));
    }
    relay.wait_until("300 transactions relayed", |c| c.relayed == 300);
    for r in &raw[..50] {
        second.send(&Message::Tx(r));
    }
    relay.wait_until("the copies counted", |c| c.duplicates == 50);
    // The second source hears of the 250 it did not send (the first 50
    // may have been announced to it before it sent them: it sent them
    // after they were relayed, so it hears of all 300).
    for (k, p) in peers.iter_mut().chain([&mut second]).enumerate() {
        let got = p.announced(300);
        let idx: Vec<u64> = got.iter().map(|w| order[w]).collect();
        assert_eq!(
            idx,
            (0..300).collect::<Vec<_>>(),
            "{n} workers, peer {k}: each once, in order"
        );
        // Served from its own worker's store.
        let want = [msg::Inv {
            kind: inv::WTX,
            hash: got[299],
        }];
        let mut out = Vec::new();
        msg::encode_inv(&mut out, MAGIC, "getdata", want.into_iter());
        p.s.write_all(&out).unwrap();
        loop {
            let (c, payload) = p.next();
            if c == "tx" {
                assert_eq!(payload, raw[299]);
                break;
            }
        }
    }
    // No second announcement of any of them: 7 peers, 300 each.
    let c = relay.finish().counters;
    assert_eq!((c.relayed, c.duplicates), (300, 50), "{c:?}");
    assert_eq!(c.p2p.announced, 7 * 300, "{c:?}");
    assert_eq!(c.mesh_sent, 300 * (n as u64 - 1), "{c:?}");
    drop(source);
}

#[test]
fn peers_on_one_worker() {
    peers_on(1);
}

#[test]
fn peers_on_two_workers() {
    peers_on(2);
}

#[test]
fn peers_on_four_workers() {
    peers_on(4);
}
