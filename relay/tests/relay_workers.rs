//! The relay on 1, 2 and 4 Sprint workers (4 on this 2-CPU machine is
//! allowed: it is about correctness). The kernel spreads publishers and
//! subscribers over the workers' listeners (SO_REUSEPORT); whichever
//! worker each lands on:
//! - every subscriber gets every new transaction exactly once;
//! - each publisher's transactions in the order it sent them;
//! - a transaction sent by two publishers (on the same worker or not) is
//!   relayed once and counted once as a duplicate;
//! - each new transaction crosses to each other worker once (one mesh
//!   message per other worker, each received once), and only a question
//!   and its answer go to its owner: no third hop.

use sprint_relay::wire;
use sprint_relay::RelayConfig;
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;

mod common;
use common::{read_frames, tx, Rt, Running};

/// Publisher `p`'s `i`-th own transaction.
fn id(p: u64, i: u64) -> u64 {
    p * 100_000 + i
}

fn across(n: usize) {
    let relay = Running::start(Rt::Workers(n), RelayConfig::default());
    let mut subs: Vec<TcpStream> = (0..8).map(|_| relay.subscribe()).collect();
    relay.wait_for_subscribers(8);
    // Three publishers: the first two send 300 transactions each of their
    // own; the third sends 200 of its own with a copy of each of the
    // first's first 100 after its own i-th, so some copies arrive first
    // and some second.
    let mut order: HashMap<[u8; 32], (u64, u64)> = HashMap::new();
    let mut plans: Vec<Vec<u64>> = vec![Vec::new(); 3];
    for p in 0..2 {
        plans[p as usize] = (0..300).map(|i| id(p, i)).collect();
    }
    for i in 0..200 {
        plans[2].push(id(2, i));
        if i < 100 {
            plans[2].push(id(0, i));
        }
    }
    let mut streams = Vec::new();
    let mut bytes: Vec<Vec<u8>> = Vec::new();
    for (p, plan) in plans.iter().enumerate() {
        let mut b = Vec::new();
        for &k in plan {
            let (payload, wtxid) = tx(k, 40);
            if k / 100_000 == p as u64 {
                order.insert(wtxid, (p as u64, k % 100_000));
            }
            b.extend_from_slice(&wire::tx_frame(&payload));
        }
        bytes.push(b);
        streams.push(relay.publish());
    }
    // Interleaved, in pieces that split frames, so that the publishers'
    // transactions race.
    let piece = 1_000;
    let longest = bytes.iter().map(Vec::len).max().unwrap();
    for at in (0..longest).step_by(piece) {
        for (s, b) in streams.iter_mut().zip(&bytes) {
            if at < b.len() {
                s.write_all(&b[at..(at + piece).min(b.len())]).unwrap();
            }
        }
    }
    let distinct = order.len();
    assert_eq!(distinct, 800);
    for (k, s) in subs.iter_mut().enumerate() {
        let got = read_frames(s, distinct);
        let mut last: HashMap<u64, u64> = HashMap::new();
        let mut once: HashMap<[u8; 32], usize> = HashMap::new();
        for w in &got {
            *once.entry(*w).or_default() += 1;
            let (p, i) = *order.get(w).expect("a transaction that was sent");
            // The copies the third publisher sent may come from it first:
            // only the first publisher's transactions past them, and the
            // others' own, are in a single source's order.
            if p == 0 && i < 100 {
                continue;
            }
            if let Some(prev) = last.insert(p, i) {
                assert!(
                    prev < i,
                    "{n} workers, subscriber {k}: publisher {p}'s {i} after its {prev}"
                );
            }
        }
        assert_eq!(once.len(), distinct, "{n} workers, subscriber {k}");
        assert!(once.values().all(|c| *c == 1), "{n} workers: each once");
    }
    let per_worker = relay.per_worker();
    let c = relay.wait_until("every frame read and the copies counted", |c| {
        c.frames == 900 && c.relayed + c.duplicates == 900
    });
    assert_eq!((c.relayed, c.duplicates), (800, 100), "{c:?}");
    assert_eq!(c.deliveries, 8 * 800, "{c:?}");
    let f = relay.finish();
    let c = f.counters;
    let others = (n - 1) as u64;
    assert_eq!(c.mesh_sent, c.relayed * others, "{n} workers: {c:?}");
    assert_eq!(c.mesh_received, c.mesh_sent, "{n} workers: {c:?}");
    assert!(c.mesh_questions <= c.frames, "{n} workers: {c:?}");
    if n == 1 {
        assert_eq!(c.mesh_questions, 0);
    }
    assert!(f.latency.unwrap().count >= 8 * 800);
    eprintln!(
        "{n} workers: (publishers, subscribers) per worker {:?}",
        per_worker
            .iter()
            .map(|c| (c.publishers, c.subscribers))
            .collect::<Vec<_>>()
    );
}

#[test]
fn on_one_worker() {
    across(1);
}

#[test]
fn on_two_workers() {
    across(2);
}

#[test]
fn on_four_workers() {
    across(4);
}

/// A relay asked for more workers than its runtime has says so.
#[test]
fn more_workers_than_the_runtime_has_is_refused() {
    let rt = sprint::Builder::new()
        .level(sprint::Level::Basic)
        .read_env(false)
        .workers(1)
        .build()
        .unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let addrs = sprint_relay::server::Addrs {
        publishers: any,
        subscribers: any,
    };
    let cfg = RelayConfig {
        workers: 2,
        ..RelayConfig::default()
    };
    let e = sprint_relay::server::run_sprint(
        &rt,
        cfg,
        addrs,
        |_| {},
        sprint_relay::server::Control::new(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("2 workers"), "{e}");
}
