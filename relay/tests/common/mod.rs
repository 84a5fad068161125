//! What the relay's integration tests share: a relay on Sprint, tokio,
//! monoio or glommio in this process, and clients that read frames.

#![allow(dead_code)] // each test binary uses part of it

use bitcoin::hashes::Hash;
use bitcoin::Transaction;
use sprint_relay::server::{self, Addrs, Control, Finished};
use sprint_relay::wire::{self, Parsed};
use sprint_relay::{Counters, RelayConfig};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A valid transaction, distinct per `i`, with an output script of
/// `script` bytes.
pub fn tx(i: u64, script: usize) -> (Vec<u8>, [u8; 32]) {
    sprint_relay::sample::transaction(i, script)
}

#[derive(Clone, Copy, Debug)]
pub enum Rt {
    /// One Sprint worker at Standard.
    Sprint,
    /// This many Sprint workers at Standard, the relay on all of them
    /// (the config's `workers` is set to it).
    Workers(usize),
    /// tokio's current-thread runtime.
    #[cfg(feature = "tokio")]
    Tokio,
    /// monoio's legacy (epoll) driver.
    #[cfg(feature = "monoio")]
    Monoio,
    /// A glommio executor, unpinned.
    #[cfg(feature = "glommio")]
    Glommio,
}

pub struct Running {
    pub addrs: Addrs,
    control: Control,
    thread: std::thread::JoinHandle<Finished>,
}

impl Running {
    pub fn start(rt: Rt, cfg: RelayConfig) -> Running {
        let control = Control::new();
        let (tx, rx) = mpsc::channel();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let addrs = Addrs {
            publishers: any,
            subscribers: any,
        };
        let c2 = control.clone();
        let thread = std::thread::spawn(move || match rt {
            Rt::Sprint | Rt::Workers(_) => {
                let n = match rt {
                    Rt::Workers(n) => n,
                    _ => 1,
                };
                let rt = sprint::Builder::new()
                    .level(sprint::Level::Standard)
                    .read_env(false)
                    .workers(n)
                    .configure(|c| c.rt_policy = sprint::config::RtPolicy::None)
                    .build()
                    .unwrap();
                let cfg = RelayConfig { workers: n, ..cfg };
                server::run_sprint(&rt, cfg, addrs, move |a| tx.send(a).unwrap(), c2).unwrap()
            }
            #[cfg(feature = "tokio")]
            Rt::Tokio => server::run_tokio(cfg, addrs, move |a| tx.send(a).unwrap(), c2).unwrap(),
            #[cfg(feature = "monoio")]
            Rt::Monoio => server::run_monoio(cfg, addrs, move |a| tx.send(a).unwrap(), c2).unwrap(),
            #[cfg(feature = "glommio")]
            Rt::Glommio => {
                server::run_glommio(cfg, addrs, move |a| tx.send(a).unwrap(), c2, None).unwrap()
            }
        });
        let addrs = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Running {
            addrs,
            control,
            thread,
        }
    }

    /// Each worker's counters (one entry off Sprint).
    pub fn per_worker(&self) -> Vec<Counters> {
        self.control.per_worker()
    }

    /// Where the relay listens for P2P peers (if it does).
    pub fn p2p_addr(&self) -> Option<SocketAddr> {
        self.control.p2p_addr()
    }

    pub fn subscribe(&self) -> TcpStream {
        let s = TcpStream::connect(self.addrs.subscribers).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    pub fn publish(&self) -> TcpStream {
        TcpStream::connect(self.addrs.publishers).unwrap()
    }

    /// Waits until the relay's counters satisfy `done` (they are copied
    /// every 10 ms) and returns them; fails the test, naming `what` it
    /// waited for, if they do not within 10 s.
    pub fn wait_until(&self, what: &str, done: impl Fn(&Counters) -> bool) -> Counters {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = self.control.counters();
            if done(&c) {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "waited 10 s for {what}; the relay's counters: {c:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the relay has registered `n` subscribers.
    pub fn wait_for_subscribers(&self, n: u64) {
        self.wait_until(&format!("{n} subscribers registered"), |c| {
            c.subscribers == n
        });
    }

    pub fn finish(self) -> Finished {
        self.control.stop();
        self.thread.join().unwrap()
    }
}

/// Reads `n` frames; returns their wtxids (decoded; the txid for a
/// transaction without witness) in order.
pub fn read_frames(s: &mut TcpStream, n: usize) -> Vec<[u8; 32]> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    while out.len() < n {
        let k = s.read(&mut chunk).expect("subscriber read");
        assert!(
            k > 0,
            "the relay closed a subscriber after {} frames",
            out.len()
        );
        buf.extend_from_slice(&chunk[..k]);
        loop {
            match wire::parse(&buf, wire::MAINNET, 4_000_000).expect("a well-formed frame") {
                Parsed::Need(_) => break,
                Parsed::Tx { payload, len, .. } => {
                    let t: Transaction = bitcoin::consensus::deserialize(payload).unwrap();
                    out.push(t.compute_wtxid().to_byte_array());
                    buf.drain(..len);
                }
            }
        }
    }
    out
}
