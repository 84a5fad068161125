//! With decoding off, the relay on Sprint allocates nothing per relayed
//! message once connections are set up: a counting global allocator sees
//! no allocation while 5 000 transactions go to two subscribers. (The
//! clients here use only buffers made before the measured part.)

use sprint::memory::counting::{self, Counting};
use sprint_relay::server::{self, Addrs};
use sprint_relay::wire::{self, Parsed};
use sprint_relay::RelayConfig;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A frame whose payload is `i` and padding (not a transaction: decoding
/// is off, so the relay keys duplicates by the payload's hash).
fn frame(i: u64) -> Vec<u8> {
    let mut payload = [0u8; 100];
    payload[..8].copy_from_slice(&i.to_le_bytes());
    wire::tx_frame(&payload)
}

/// Reads frames until the one numbered `last` (frames arrive in order);
/// no allocation.
fn read_until(s: &mut TcpStream, last: u64, buf: &mut [u8]) {
    let mut have = 0;
    loop {
        let k = s.read(&mut buf[have..]).expect("subscriber read");
        assert!(k > 0, "the relay closed a subscriber");
        have += k;
        let mut used = 0;
        let mut seen_last = false;
        while let Ok(Parsed::Tx { len, payload, .. }) =
            wire::parse(&buf[used..have], wire::MAINNET, 4096)
        {
            let i = u64::from_le_bytes(payload[..8].try_into().unwrap());
            seen_last |= i == last;
            used += len;
        }
        buf.copy_within(used..have, 0);
        have -= used;
        if seen_last {
            assert_eq!(have, 0, "bytes past the last frame");
            return;
        }
    }
}

// No libtest harness in this binary (`harness = false`): the counter is
// process-wide, and libtest's main thread allocates beside a running test
// (its records of running tests, its warning about one past 60 s).
fn main() {
    for level in [
        sprint::Level::Standard,
        sprint::Level::Enterprise,
        sprint::Level::Turbo,
    ] {
        the_relay_allocates_nothing_per_message_with_decoding_off(level);
    }
    println!("test the_relay_allocates_nothing_per_message_with_decoding_off ... ok");
}

/// Bytes of every frame `frame` makes.
const FRAME: usize = wire::HEADER + 100;

/// Frames in each measured window, and windows.
const WINDOW: u64 = 100_000;
const WINDOWS: u64 = 3;
/// Frames written before the subscribers are read (within the relay's
/// queue and the sockets' buffers).
const CHUNK: usize = 2_000;

fn the_relay_allocates_nothing_per_message_with_decoding_off(level: sprint::Level) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let s2 = stop.clone();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = std::thread::spawn(move || {
        let rt = sprint::Builder::new()
            .level(level)
            .read_env(false)
            .workers(1)
            .configure(|c| {
                c.rt_policy = sprint::config::RtPolicy::None;
                c.metrics = false;
                // A poll preempted past the stall threshold on a loaded
                // machine logs a line (an allocation): the cold path.
                c.stall_threshold_us = 10_000_000;
            })
            .build()
            .unwrap();
        let cfg = RelayConfig {
            decode: false,
            seen: 20_000,
            queue_bytes: 1 << 20,
            // Queues and buffers grow in the warm-up and are kept while
            // busy; given back only after this long idle, which the pause
            // between warm-up and window (seconds on a loaded machine)
            // must not reach.
            trim_after: Duration::from_secs(600),
            ..RelayConfig::default()
        };
        let addrs = Addrs {
            publishers: any,
            subscribers: any,
        };
        server::run_sprint(&rt, cfg, addrs, move |a| tx.send(a).unwrap(), s2).unwrap()
    });
    let addrs: Addrs = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let mut subs: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(addrs.subscribers).unwrap())
        .collect();
    for s in &subs {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    let mut publisher = TcpStream::connect(addrs.publishers).unwrap();
    let mut bufs = [vec![0u8; 1 << 20], vec![0u8; 1 << 20]];
    // A subscriber gets the frames sent after the relay took its
    // connection: send one frame at a time until each has had one.
    let mut next = 0u64;
    let mut synced = [false, false];
    while synced != [true, true] {
        assert!(next < 1_000, "the relay never served both subscribers");
        publisher.write_all(&frame(next)).unwrap();
        for (k, s) in subs.iter_mut().enumerate() {
            if !synced[k] {
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut b = [0u8; 4096];
                let mut got = match s.read(&mut b) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                    Err(e) => panic!("subscriber read: {e}"),
                };
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                // Whole frames only (all are one size), so that the reads
                // below start at a frame.
                while got % FRAME != 0 {
                    got += s.read(&mut b[got..]).expect("subscriber read");
                }
                synced[k] = got > 0;
            }
        }
        next += 1;
    }
    // Warm-up: every buffer and queue of the path is in use once, with a
    // burst larger than any of the window's (queues grow on demand, up to
    // what a burst leaves in them past the sockets' buffers).
    let warm_end = next + 2 * CHUNK as u64;
    let warm: Vec<u8> = (next..warm_end).flat_map(frame).collect();
    publisher.write_all(&warm).unwrap();
    for (s, b) in subs.iter_mut().zip(bufs.iter_mut()) {
        read_until(s, warm_end - 1, b);
    }
    next = warm_end;
    // Measured windows, built beforehand: written a chunk at a time, each
    // chunk read back from both subscribers.
    let mut counts = Vec::new();
    for _ in 0..WINDOWS {
        let window: Vec<u8> = (next..next + WINDOW).flat_map(frame).collect();
        let size = window.len() / WINDOW as usize;
        let before = counting::allocations();
        for (c, chunk) in window.chunks(CHUNK * size).enumerate() {
            publisher.write_all(chunk).unwrap();
            let last = next + ((c + 1) * CHUNK) as u64 - 1;
            for (s, b) in subs.iter_mut().zip(bufs.iter_mut()) {
                read_until(s, last, b);
            }
        }
        counts.push(counting::allocations() - before);
        next += WINDOW;
    }
    stop.store(true, Ordering::Release);
    let finished = server.join().unwrap();
    assert_eq!(finished.counters.relayed, next, "{:?}", finished.counters);
    assert_eq!(
        counts,
        vec![0; WINDOWS as usize],
        "{level}: global allocations in each window of {WINDOW} messages to 2 subscribers"
    );
}
