//! What the relay's integration tests share: a relay on Sprint or tokio
//! in this process, and clients that read frames.

#![allow(dead_code)] // each test binary uses part of it

use bitcoin::hashes::Hash;
use bitcoin::Transaction;
use sprint_relay::server::{self, Addrs, Finished};
use sprint_relay::wire::{self, Parsed};
use sprint_relay::RelayConfig;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// A valid transaction, distinct per `i`, with an output script of
/// `script` bytes.
pub fn tx(i: u64, script: usize) -> (Vec<u8>, [u8; 32]) {
    sprint_relay::sample::transaction(i, script)
}

#[derive(Clone, Copy, Debug)]
pub enum Rt {
    /// One Sprint worker at Standard.
    Sprint,
    /// tokio's current-thread runtime.
    #[cfg(feature = "tokio")]
    Tokio,
}

pub struct Running {
    pub addrs: Addrs,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Finished>,
}

impl Running {
    pub fn start(rt: Rt, cfg: RelayConfig) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let addrs = Addrs {
            publishers: any,
            subscribers: any,
        };
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || match rt {
            Rt::Sprint => {
                let rt = sprint::Builder::new()
                    .level(sprint::Level::Standard)
                    .read_env(false)
                    .workers(1)
                    .configure(|c| c.rt_policy = sprint::config::RtPolicy::None)
                    .build()
                    .unwrap();
                server::run_sprint(&rt, cfg, addrs, move |a| tx.send(a).unwrap(), s2).unwrap()
            }
            #[cfg(feature = "tokio")]
            Rt::Tokio => server::run_tokio(cfg, addrs, move |a| tx.send(a).unwrap(), s2).unwrap(),
        });
        let addrs = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Running {
            addrs,
            stop,
            thread,
        }
    }

    pub fn subscribe(&self) -> TcpStream {
        let s = TcpStream::connect(self.addrs.subscribers).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    pub fn publish(&self) -> TcpStream {
        TcpStream::connect(self.addrs.publishers).unwrap()
    }

    pub fn finish(self) -> Finished {
        self.stop.store(true, Ordering::Release);
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
