//! The relay against an independent implementation of the protocol:
//! python-bitcoinlib's message classes driving a scripted peer
//! (`tests/p2p/peer.py`, run with `/usr/bin/python3`; Debian's
//! `python3-bitcoinlib`, installed by `ci/setup.sh`). The relay connects
//! out to the script's listener (`--connect`) and the script connects in
//! three times: handshakes both ways, wtxid negotiation, inv → getdata →
//! tx by wtxid and by txid, getdata with and without the witness,
//! notfound, an unsolicited tx, ping/pong both ways, and a peer that
//! sends garbage and is closed. Real transactions from the bitcoin
//! crate's test vectors, segwit included (`tests/data/transactions.txt`).

mod common;

use common::{Rt, Running};
use sprint_relay::p2p::{Network, P2pConfig};
use sprint_relay::RelayConfig;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PYTHON: &str = "/usr/bin/python3";

/// The script's process, killed if the test fails before it ends.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn against_python(rt: Rt) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut child = Script(
        Command::new(PYTHON)
            .arg(format!("{dir}/tests/p2p/peer.py"))
            .arg(format!("{dir}/tests/data/transactions.txt"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}")),
    );
    let out = child.0.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            if tx.send(l.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let line = |what: &str| {
        lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "the Python peer did not print {what} (is python3-bitcoinlib installed? \
                 bash ci/setup.sh); see its stderr above"
                )
            })
    };
    let listen = line("LISTEN");
    let port: u16 = listen
        .strip_prefix("LISTEN ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not a LISTEN line: {listen:?}"));
    let cfg = RelayConfig {
        magic: Network::Regtest.magic(),
        p2p: P2pConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            connect: vec![([127, 0, 0, 1], port).into()],
            ping_interval: Duration::from_millis(200),
            reconnect_after: Duration::from_millis(100),
            ..P2pConfig::default()
        },
        ..RelayConfig::default()
    };
    let relay = Running::start(rt, cfg);
    let addr = relay.p2p_addr().expect("the relay listens for peers");
    let stdin = child.0.stdin.as_mut().unwrap();
    writeln!(stdin, "RELAY {addr}").unwrap();
    stdin.flush().unwrap();
    let done = line("DONE");
    assert!(done.starts_with("DONE "), "{done:?}");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "the Python peer failed: {status}");
    let c = relay.wait_until("the garbage peer counted and every peer gone", |c| {
        c.p2p.misbehaving >= 1 && c.p2p.peers == 0
    });
    let p = c.p2p;
    assert_eq!(p.handshakes, 3, "{p:?}");
    assert_eq!((p.outbound, p.inbound), (1, 3), "{p:?}");
    assert!(p.bad_magic >= 1, "{p:?}");
    assert_eq!(p.self_connections, 0);
    assert_eq!((p.requested, p.tx_received, p.unsolicited), (1, 2, 1));
    assert_eq!((p.served, p.not_found), (3, 1));
    assert!(p.pongs >= 1, "the relay's ping was answered: {p:?}");
    assert_eq!(c.relayed, 2);
    let f = relay.finish();
    if matches!(rt, Rt::Sprint | Rt::Workers(_)) {
        // Sprint's histograms (process-wide: the other tests of this
        // binary add to them) timed the announcements and the three
        // transactions written on request.
        let last = f.announce_last_peer.expect("timed on Sprint");
        let served = f.tx_served.expect("timed on Sprint");
        assert!(last.count >= 1, "{last:?}");
        assert!(served.count >= 3, "{served:?}");
    } else {
        assert!(f.announce_last_peer.is_none() && f.tx_served.is_none());
    }
}

#[test]
fn a_python_bitcoinlib_peer_on_sprint() {
    against_python(Rt::Sprint);
}

/// The same script against the relay on two and on four workers: the
/// kernel spreads the inbound peers over the workers' listeners, so the
/// source's transaction reaches the others' peers over the mesh.
#[test]
fn a_python_bitcoinlib_peer_on_two_sprint_workers() {
    against_python(Rt::Workers(2));
}

#[test]
fn a_python_bitcoinlib_peer_on_four_sprint_workers() {
    against_python(Rt::Workers(4));
}

#[cfg(feature = "tokio")]
#[test]
fn a_python_bitcoinlib_peer_on_tokio() {
    against_python(Rt::Tokio);
}

#[cfg(feature = "monoio")]
#[test]
fn a_python_bitcoinlib_peer_on_monoio() {
    against_python(Rt::Monoio);
}

#[cfg(feature = "glommio")]
#[test]
fn a_python_bitcoinlib_peer_on_glommio() {
    against_python(Rt::Glommio);
}
