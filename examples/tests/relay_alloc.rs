//! With decoding off, the relay on Sprint allocates nothing per relayed
//! message once connections are set up: a counting global allocator sees
//! no allocation while 5 000 transactions go to two subscribers. (The
//! clients here use only buffers made before the measured part.)

use relay::server::{self, Addrs};
use relay::wire::{self, Parsed};
use relay::RelayConfig;
use sprint::memory::counting::{self, Counting};
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

/// Reads exactly `n` frames with the buffer given; no allocation.
fn read_frames(s: &mut TcpStream, n: usize, buf: &mut [u8]) {
    let (mut have, mut got) = (0, 0);
    while got < n {
        let k = s.read(&mut buf[have..]).expect("subscriber read");
        assert!(k > 0, "the relay closed a subscriber");
        have += k;
        let mut used = 0;
        while let Ok(Parsed::Tx { len, .. }) = wire::parse(&buf[used..have], wire::MAINNET, 4096) {
            used += len;
            got += 1;
        }
        buf.copy_within(used..have, 0);
        have -= used;
    }
}

// No libtest harness in this binary (`harness = false`): the counter is
// process-wide, and libtest's main thread allocates beside a running test
// (its records of running tests, its warning about one past 60 s).
fn main() {
    the_relay_allocates_nothing_per_message_with_decoding_off();
    println!("test the_relay_allocates_nothing_per_message_with_decoding_off ... ok");
}

fn the_relay_allocates_nothing_per_message_with_decoding_off() {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let s2 = stop.clone();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = std::thread::spawn(move || {
        let rt = sprint::Builder::new()
            .level(sprint::Level::Enterprise)
            .read_env(false)
            .workers(1)
            .configure(|c| {
                c.rt_policy = sprint::config::RtPolicy::None;
                c.metrics = false;
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
    std::thread::sleep(Duration::from_millis(300));
    let mut publisher = TcpStream::connect(addrs.publishers).unwrap();
    // The warm-up is the same burst as the window: the subscribers'
    // queues (not the kernel's 256 KiB send buffers) hold most of it, and
    // reach the size they keep.
    let warm: Vec<u8> = (0..5_000).flat_map(frame).collect();
    let measured: Vec<u8> = (5_000..10_000).flat_map(frame).collect();
    let mut bufs = [vec![0u8; 1 << 20], vec![0u8; 1 << 20]];
    // Warm-up: every buffer and queue of the path is in use once.
    publisher.write_all(&warm).unwrap();
    for (s, b) in subs.iter_mut().zip(bufs.iter_mut()) {
        read_frames(s, 5_000, b);
    }
    let before = counting::allocations();
    publisher.write_all(&measured).unwrap();
    for (s, b) in subs.iter_mut().zip(bufs.iter_mut()) {
        read_frames(s, 5_000, b);
    }
    let during = counting::allocations() - before;
    stop.store(true, Ordering::Release);
    let finished = server.join().unwrap();
    assert_eq!(finished.counters.relayed, 10_000, "{:?}", finished.counters);
    assert_eq!(
        during, 0,
        "{during} global allocations while 5 000 messages were relayed to 2 subscribers"
    );
}
