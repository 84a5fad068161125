//! The relay under hostile traffic, on Sprint and on tokio (loopback,
//! bounded in count and time): resets before accept, peers that close
//! without a word, connection caps, publishers that send nothing or
//! trickle, and witness-malleated copies.

mod common;

use bitcoin::hashes::Hash;
use common::{read_frames, tx, Rt, Running};
use sprint_relay::wire;
use sprint_relay::RelayConfig;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Publishes transaction `seq` and reads it on every subscriber: once it
/// arrives, each of them is registered. Returns the publisher.
fn probe(relay: &Running, subs: &mut [TcpStream], seq: u64) -> TcpStream {
    let mut p = relay.publish();
    let (payload, id) = tx(seq, 40);
    p.write_all(&wire::tx_frame(&payload)).unwrap();
    for s in subs.iter_mut() {
        assert_eq!(read_frames(s, 1), vec![id], "probe {seq}");
    }
    p
}

/// Connects to `addr` and resets at once (SO_LINGER 0), without waiting
/// for the relay to accept.
fn connect_and_reset(addr: SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_linger(Some(Duration::ZERO)).unwrap();
    s.connect(&addr.into()).unwrap();
}

/// Whether `s` was closed by the relay: its read sees the end or a reset
/// within `within`.
fn closed_by_relay(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn resets(rt: Rt) {
    let relay = Running::start(rt, RelayConfig::default());
    // Reset before the relay accepts: on both ports, in a burst a
    // single-threaded relay cannot keep up with.
    for _ in 0..300 {
        connect_and_reset(relay.addrs.subscribers);
        connect_and_reset(relay.addrs.publishers);
    }
    // Honest connections after them are still served.
    let mut subs = vec![relay.subscribe(), relay.subscribe()];
    let _p = probe(&relay, &mut subs, 1);
    let c = relay.finish().counters;
    assert_eq!(c.relayed, 1, "{c:?}");
}

#[test]
fn resets_before_accept_leave_both_listeners_serving_on_sprint() {
    resets(Rt::Sprint);
}

#[test]
fn resets_before_accept_leave_every_listener_serving_on_two_workers() {
    resets(Rt::Workers(2));
}

#[cfg(feature = "tokio")]
#[test]
fn resets_before_accept_leave_both_listeners_serving_on_tokio() {
    resets(Rt::Tokio);
}

/// Sockets on `port` (IPv4 loopback) in CLOSE_WAIT: the peer closed and
/// the relay has not.
fn close_waits(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = f[1].rsplit(':').next().unwrap();
            u16::from_str_radix(local_port, 16).ok() == Some(port) && f[3] == "08"
        })
        .count()
}

fn hang_ups(rt: Rt) {
    let relay = Running::start(rt, RelayConfig::default());
    let mut honest = vec![relay.subscribe()];
    let port = relay.addrs.subscribers.port();
    // 200 subscribers that connect and close without any traffic.
    let quitters: Vec<TcpStream> = (0..200).map(|_| relay.subscribe()).collect();
    let p = probe(&relay, &mut honest, 1);
    drop(quitters);
    // The relay notices at once (its read side), not at a write that
    // may never come: no descriptor is left in CLOSE_WAIT.
    let deadline = Instant::now() + Duration::from_secs(10);
    while close_waits(port) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} subscribers left in CLOSE_WAIT ({rt:?})",
            close_waits(port)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(p);
    let _p = probe(&relay, &mut honest, 2);
    let c = relay.finish().counters;
    assert_eq!(c.hung_up_subscribers, 200, "{c:?}");
    assert_eq!(c.subscribers, 1, "{c:?}");
    assert_eq!(
        c.deliveries,
        201 + 1,
        "the second only to the honest one: {c:?}"
    );
}

#[test]
fn subscribers_that_close_are_noticed_and_freed_at_once_on_sprint() {
    hang_ups(Rt::Sprint);
}

#[cfg(feature = "tokio")]
#[test]
fn subscribers_that_close_are_noticed_and_freed_at_once_on_tokio() {
    hang_ups(Rt::Tokio);
}

fn caps(rt: Rt) {
    let relay = Running::start(
        rt,
        RelayConfig {
            max_publishers: 1,
            max_subscribers: 1,
            ..RelayConfig::default()
        },
    );
    let mut first = vec![relay.subscribe()];
    let p = probe(&relay, &mut first, 1);
    // Over the caps: closed at once, counted.
    let mut sub = relay.subscribe();
    assert!(closed_by_relay(&mut sub, Duration::from_secs(10)), "{rt:?}");
    let mut publ = relay.publish();
    assert!(
        closed_by_relay(&mut publ, Duration::from_secs(10)),
        "{rt:?}"
    );
    // Under them again once the first publisher leaves.
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seq = 2;
    loop {
        let mut p = relay.publish();
        let (payload, id) = tx(seq, 40);
        if p.write_all(&wire::tx_frame(&payload)).is_ok()
            && !closed_by_relay(&mut p, Duration::from_millis(200))
        {
            assert_eq!(read_frames(&mut first[0], 1), vec![id]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was not given again"
        );
        seq += 1;
    }
    let c = relay.finish().counters;
    assert_eq!(c.refused_subscribers, 1, "{c:?}");
    assert!(c.refused_publishers >= 1, "{c:?}");
}

#[test]
fn connections_over_the_caps_are_refused_and_counted_on_sprint() {
    caps(Rt::Sprint);
}

#[cfg(feature = "tokio")]
#[test]
fn connections_over_the_caps_are_refused_and_counted_on_tokio() {
    caps(Rt::Tokio);
}

fn deadlines(rt: Rt) {
    let relay = Running::start(
        rt,
        RelayConfig {
            publisher_idle: Duration::from_secs(1),
            frame_grace: Duration::from_secs(1),
            min_frame_rate: 1_000,
            ..RelayConfig::default()
        },
    );
    let mut sub = vec![relay.subscribe()];
    let _ = probe(&relay, &mut sub, 1);
    // Sends nothing at all.
    let mut silent = relay.publish();
    // Sends a valid frame at 10 bytes/s, far below the floor.
    let mut trickler = relay.publish();
    let (payload, _) = tx(2, 40);
    let frame = wire::tx_frame(&payload);
    let trickle = std::thread::spawn(move || {
        for b in frame.iter().take(100) {
            if trickler.write_all(&[*b]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    // An honest publisher: a frame every 300 ms, for 3 s.
    let mut honest = relay.publish();
    for i in 0..10 {
        let (payload, id) = tx(100 + i, 40);
        honest.write_all(&wire::tx_frame(&payload)).unwrap();
        assert_eq!(read_frames(&mut sub[0], 1), vec![id], "{rt:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        closed_by_relay(&mut silent, Duration::from_secs(10)),
        "{rt:?}"
    );
    assert!(
        trickle.join().unwrap(),
        "the trickling publisher was not closed ({rt:?})"
    );
    assert!(
        !closed_by_relay(&mut honest, Duration::from_millis(100)),
        "the honest publisher was closed ({rt:?})"
    );
    let c = relay.finish().counters;
    assert_eq!(c.idle_publishers, 1, "{c:?}");
    assert_eq!(c.slow_publishers, 1, "{c:?}");
    assert_eq!(c.relayed, 11, "{c:?}");
}

#[test]
fn publishers_that_send_nothing_or_trickle_are_closed_on_sprint() {
    deadlines(Rt::Sprint);
}

#[cfg(feature = "tokio")]
#[test]
fn publishers_that_send_nothing_or_trickle_are_closed_on_tokio() {
    deadlines(Rt::Tokio);
}

/// Transaction `seq` with a witness of `w` repeated: the same txid for
/// every `w`, a different wtxid.
fn segwit(seq: u64, w: u8) -> (Vec<u8>, [u8; 32]) {
    let (legacy, _) = tx(seq, 40);
    let mut t: bitcoin::Transaction = bitcoin::consensus::deserialize(&legacy).unwrap();
    t.input[0].witness = bitcoin::Witness::from_slice(&[vec![w; 72], vec![2u8; 33]]);
    (
        bitcoin::consensus::serialize(&t),
        t.compute_wtxid().to_byte_array(),
    )
}

fn malleated(rt: Rt) {
    let relay = Running::start(rt, RelayConfig::default());
    let mut sub = vec![relay.subscribe()];
    let mut p = probe(&relay, &mut sub, 1);
    let mut honest = Vec::new();
    let mut bytes = Vec::new();
    for i in 0..50 {
        let (bad, bad_id) = segwit(10 + i, 0xee);
        let (good, good_id) = segwit(10 + i, 0x01);
        assert_ne!(bad_id, good_id);
        bytes.extend_from_slice(&wire::tx_frame(&bad));
        bytes.extend_from_slice(&wire::tx_frame(&good));
        honest.push(good_id);
    }
    p.write_all(&bytes).unwrap();
    let got = read_frames(&mut sub[0], 100);
    assert!(honest.iter().all(|id| got.contains(id)), "{rt:?}");
    let c = relay.finish().counters;
    assert_eq!((c.relayed, c.duplicates), (101, 0), "{c:?}");
}

#[test]
fn a_witness_malleated_copy_sent_first_does_not_censor_the_original_on_sprint() {
    malleated(Rt::Sprint);
}

#[test]
fn a_witness_malleated_copy_sent_first_does_not_censor_the_original_on_two_workers() {
    malleated(Rt::Workers(2));
}

#[cfg(feature = "tokio")]
#[test]
fn a_witness_malleated_copy_sent_first_does_not_censor_the_original_on_tokio() {
    malleated(Rt::Tokio);
}

/// The relay binary in a child process with `nofile` descriptors at most
/// (the limit is set in the child only); killed when dropped.
struct Child {
    child: std::process::Child,
    addrs: (SocketAddr, SocketAddr),
    log: Option<std::thread::JoinHandle<String>>,
}

impl Child {
    fn start(runtime: &str, nofile: u64) -> Child {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sprint-relay"));
        cmd.args(["--runtime", runtime, "--no-rt", "--seen", "10000"])
            .args([
                "--publishers",
                "127.0.0.1:0",
                "--subscribers",
                "127.0.0.1:0",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe and touches only the
        // child, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let addrs = loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "the relay exited");
            // "relay: publishers on A, subscribers on B"
            if let Some(rest) = line.trim().strip_prefix("relay: publishers on ") {
                let (p, s) = rest.split_once(", subscribers on ").unwrap();
                break (p.parse().unwrap(), s.parse().unwrap());
            }
        };
        // Keep draining its log so that it never blocks on a full pipe.
        let log = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            rest
        });
        Child {
            child,
            addrs,
            log: Some(log),
        }
    }

    /// Kills it; what it logged after its addresses.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.take().unwrap().join().unwrap()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn out_of_descriptors(runtime: &str) {
    let relay = Child::start(runtime, 64);
    let (pubs, subs) = relay.addrs;
    // More connections than the relay has descriptors: its accepts fail
    // with EMFILE meanwhile.
    let hogs: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(subs).unwrap())
        .collect();
    drop(hogs);
    // Once they are gone, honest connections are served again.
    let mut sub = TcpStream::connect(subs).unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seq = 1;
    loop {
        let mut p = TcpStream::connect(pubs).unwrap();
        let (payload, _) = tx(seq, 40);
        p.write_all(&wire::tx_frame(&payload)).unwrap();
        sub.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut b = [0u8; 4096];
        match sub.read(&mut b) {
            Ok(n) if n > 0 => {
                let got = wire::parse(&b[..n], wire::MAINNET, 1 << 20).unwrap();
                assert!(matches!(got, wire::Parsed::Tx { .. }), "{runtime}: {got:?}");
                break;
            }
            Ok(_) => panic!("{runtime}: the relay closed the subscriber"),
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "{runtime}: not served after EMFILE"
        );
        seq += 1;
    }
    let log = relay.stop();
    assert!(
        log.contains("Too many open files"),
        "{runtime}: no EMFILE met: {log}"
    );
}

#[test]
fn running_out_of_descriptors_does_not_end_the_accept_loops_on_sprint() {
    out_of_descriptors("sprint");
}

#[cfg(feature = "tokio")]
#[test]
fn running_out_of_descriptors_does_not_end_the_accept_loops_on_tokio() {
    out_of_descriptors("tokio");
}
