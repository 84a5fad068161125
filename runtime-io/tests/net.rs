//! The socket suite. It runs once per driver the machine offers.

mod common;

use common::drivers;

use futures::{AsyncReadExt, AsyncWriteExt};
use sprint::Runtime;
use sprint_core::config::IoDriver;
use sprint_core::{spawn, time, Level};
use sprint_io::net::{TcpListener, TcpStream};
use std::io::ErrorKind;
use std::net::Shutdown;
use std::time::Duration;

/// Every driver this machine can run: epoll always, io_uring where the
/// probe passes (the suite says why it skipped it, and fails instead
/// where SPRINT_REQUIRE names `uring`).
fn rt(driver: IoDriver, level: Level, workers: usize) -> Runtime {
    sprint::Builder::new()
        .level(level)
        .read_env(false)
        .workers(workers)
        .configure(move |c| {
            c.io_driver = driver;
            c.uring_sqpoll = false;
            // Real-time scheduling is sprint-core's tests/tune.rs's alone.
            c.rt_policy = sprint_core::config::RtPolicy::None;
        })
        .build()
        .expect("runtime with a driver")
}

/// FNV-1a, fed in any chunking.
struct Fnv(u64);
impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf29ce484222325)
    }
    fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
}

/// A connected TCP pair on loopback: the connecting side and the accepted
/// one, with their listener (kept open, as a server would).
async fn connected_pair() -> (TcpStream, TcpStream, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let c = TcpStream::connect(addr).await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (c, s, listener)
}

#[test]
fn echo() {
    for d in drivers() {
        for level in [Level::Basic, Level::Enterprise] {
            let rt = rt(d, level, 2);
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let server = spawn(async move {
                    let (s, _) = listener.accept().await.unwrap();
                    let mut buf = [0u8; 1024];
                    loop {
                        let n = s.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        s.write_all(&buf[..n]).await.unwrap();
                    }
                });
                let mut c = TcpStream::connect(addr).await.unwrap();
                c.set_nodelay(true).unwrap();
                for i in 0..100u32 {
                    let msg = format!("ping {i}");
                    c.write_all(msg.as_bytes()).await.unwrap();
                    let mut got = vec![0u8; msg.len()];
                    AsyncReadExt::read_exact(&mut c, &mut got).await.unwrap();
                    assert_eq!(got, msg.as_bytes(), "{d} {level}");
                }
                c.shutdown(Shutdown::Write).await.unwrap();
                server.await.unwrap();
            });
        }
    }
}

#[test]
fn a_64_mib_transfer_arrives_intact() {
    const TOTAL: usize = 64 << 20;
    for d in drivers() {
        let rt = rt(d, Level::Standard, 2);
        let (sent, received) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let receiver = sprint_core::spawn_on(1, async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut h = Fnv::new();
                let mut buf = vec![0u8; 64 << 10];
                let mut n_total = 0;
                loop {
                    let n = AsyncReadExt::read(&mut s, &mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    h.feed(&buf[..n]);
                    n_total += n;
                }
                (h.0, n_total)
            })
            .unwrap();
            let sender = sprint_core::spawn_on(0, async move {
                let mut c = TcpStream::connect(addr).await.unwrap();
                let mut h = Fnv::new();
                let mut chunk = vec![0u8; 100_003];
                let mut x: u32 = 12345;
                let mut sent = 0;
                while sent < TOTAL {
                    let n = chunk.len().min(TOTAL - sent);
                    for b in chunk[..n].iter_mut() {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        *b = (x >> 16) as u8;
                    }
                    c.write_all(&chunk[..n]).await.unwrap();
                    h.feed(&chunk[..n]);
                    sent += n;
                }
                AsyncWriteExt::close(&mut c).await.unwrap();
                h.0
            })
            .unwrap();
            (sender.await.unwrap(), receiver.await.unwrap())
        });
        assert_eq!(received.1, TOTAL, "{d}");
        assert_eq!(sent, received.0, "{d}: hash of the bytes");
    }
}

#[test]
fn a_thousand_concurrent_connections() {
    for d in drivers() {
        let rt = rt(d, Level::Aggressive, 2);
        let total = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = spawn(async move {
                let mut conns = Vec::new();
                for _ in 0..1000 {
                    let (s, _) = listener.accept().await.unwrap();
                    conns.push(spawn(async move {
                        let mut buf = [0u8; 8];
                        let mut got = 0;
                        while got < 8 {
                            let n = s.read(&mut buf[got..]).await.unwrap();
                            assert!(n > 0);
                            got += n;
                        }
                        s.write_all(&buf).await.unwrap();
                    }));
                }
                for c in conns {
                    c.await.unwrap();
                }
            });
            let mut clients = Vec::new();
            for i in 0..1000u64 {
                clients.push(spawn(async move {
                    let c = TcpStream::connect(addr).await.unwrap();
                    c.write_all(&i.to_le_bytes()).await.unwrap();
                    let mut buf = [0u8; 8];
                    let mut got = 0;
                    while got < 8 {
                        let n = c.read(&mut buf[got..]).await.unwrap();
                        assert!(n > 0, "the echo ended early");
                        got += n;
                    }
                    u64::from_le_bytes(buf)
                }));
            }
            let mut total = 0;
            for c in clients {
                total += c.await.unwrap();
            }
            server.await.unwrap();
            total
        });
        assert_eq!(total, (0..1000).sum::<u64>(), "{d}");
    }
}

#[test]
fn half_close_lets_the_peer_answer() {
    for d in drivers() {
        let rt = rt(d, Level::Basic, 1);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut req = Vec::new();
                AsyncReadExt::read_to_end(&mut s, &mut req).await.unwrap();
                s.write_all(format!("got {} bytes", req.len()).as_bytes())
                    .await
                    .unwrap();
            });
            let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
            w.write_all(b"hello").await.unwrap();
            w.shutdown().await.unwrap();
            let mut reply = String::new();
            let mut r = r;
            AsyncReadExt::read_to_string(&mut r, &mut reply)
                .await
                .unwrap();
            assert_eq!(reply, "got 5 bytes", "{d}");
            server.await.unwrap();
        });
    }
}

#[test]
fn a_peer_reset_is_connection_reset() {
    for d in drivers() {
        let rt = rt(d, Level::Basic, 1);
        rt.block_on(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let c = TcpStream::connect(addr).await.unwrap();
            let (s, _) = listener.accept().unwrap();
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(s);
            let mut buf = [0u8; 16];
            let err = c.read(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{d}: {err}");
            assert_eq!(err.raw_os_error(), Some(libc::ECONNRESET));
        });
    }
}

#[test]
fn connect_refused_keeps_the_os_error() {
    for d in drivers() {
        let rt = rt(d, Level::Basic, 1);
        let err = rt.block_on(async {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            TcpStream::connect(("127.0.0.1", port)).await.unwrap_err()
        });
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{d}: {err}");
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
    }
}

#[test]
fn address_in_use_keeps_the_os_error() {
    for d in drivers() {
        let rt = rt(d, Level::Basic, 1);
        rt.block_on(async {
            let a = TcpListener::bind("127.0.0.1:0").unwrap();
            let err = TcpListener::bind(a.local_addr().unwrap()).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{d}: {err}");
            let b = TcpListener::bind_reuseport("127.0.0.1:0").unwrap();
            let c = TcpListener::bind_reuseport(b.local_addr().unwrap()).unwrap();
            assert_eq!(
                b.local_addr().unwrap(),
                c.local_addr().unwrap(),
                "SO_REUSEPORT shares a port"
            );
        });
    }
}

#[test]
fn a_read_times_out_and_the_stream_still_works() {
    for d in drivers() {
        let rt = rt(d, Level::Standard, 1);
        rt.block_on(async {
            let (c, s, _listener) = connected_pair().await;
            let mut buf = [0u8; 4];
            let r = time::timeout(Duration::from_millis(20), c.read(&mut buf)).await;
            assert!(r.is_err(), "{d}: nothing was sent");
            s.write_all(b"late").await.unwrap();
            assert_eq!(c.read(&mut buf).await.unwrap(), 4);
            assert_eq!(&buf, b"late");
        });
    }
}

/// Drop a read in the middle, paint its buffer with a canary, then have
/// the peer send: the canary must stay, and the data must come on the next
/// read. (A late kernel write into freed memory escapes the sanitizers;
/// content shows it.)
#[test]
fn a_cancelled_read_never_writes_into_its_buffer_later() {
    for d in drivers() {
        let rt = rt(d, Level::Enterprise, 1);
        rt.block_on(async {
            let (c, s, _listener) = connected_pair().await;
            let mut buf = vec![0u8; 4096];
            let r = time::timeout(Duration::from_millis(10), c.read(&mut buf)).await;
            assert!(r.is_err());
            buf.fill(0xA5);
            s.write_all(&[7u8; 100]).await.unwrap();
            // Not a wait for an event: time in which a receive the drop
            // failed to cancel would write into the buffer.
            time::sleep(Duration::from_millis(20)).await;
            assert!(buf.iter().all(|b| *b == 0xA5), "{d}: canary overwritten");
            let mut next = [0u8; 256];
            let n = c.read(&mut next).await.unwrap();
            assert_eq!(&next[..n], &[7u8; 100][..n]);
            assert!(n > 0);
        });
    }
}

/// The owned form: the kernel writes straight into the caller's buffer,
/// so a dropped future must leave the buffer with the driver until the
/// kernel is done. Blocks of the same size allocated after the drop (where
/// a freed buffer would be reused) carry a canary the late receive must not
/// touch, and the data arrives on the next read.
#[test]
fn a_cancelled_owned_read_keeps_its_buffer_from_reuse() {
    for d in drivers() {
        let rt = rt(d, Level::Standard, 1);
        rt.block_on(async {
            let (c, s, _listener) = connected_pair().await;
            let r = time::timeout(
                Duration::from_millis(10),
                c.read_owned(Vec::<u8>::with_capacity(4096)),
            )
            .await;
            assert!(r.is_err(), "{d}: nothing was sent, the read must time out");
            let mut canaries: Vec<Vec<u8>> = (0..16).map(|_| vec![0xA5u8; 4096]).collect();
            s.write_all(&[9u8; 300]).await.unwrap();
            // Not a wait for an event: time in which a receive the drop
            // failed to cancel would write into a reused buffer.
            time::sleep(Duration::from_millis(20)).await;
            for c in &canaries {
                assert!(c.iter().all(|b| *b == 0xA5), "{d}: canary overwritten");
            }
            let (n, buf) = c.read_owned(Vec::with_capacity(1024)).await;
            let n = n.unwrap();
            assert!(n > 0);
            assert_eq!(&buf[..], &[9u8; 300][..n], "{d}");
            canaries.clear();
        });
    }
}

#[test]
fn owned_buffers_round_trip_including_registered_pool_buffers() {
    for d in drivers() {
        // Enterprise registers the pool's buffers with io_uring.
        let rt = rt(d, Level::Enterprise, 1);
        rt.block_on(async {
            let (c, s, _listener) = connected_pair().await;
            let pool = sprint_io::buf::BufferPool::current().unwrap();
            let free = pool.available();
            let mut p = pool.take().unwrap();
            p.extend_from_slice(b"from a pool buffer;");
            let (n, p) = c.write_owned(p).await;
            assert_eq!(n.unwrap(), 19);
            drop(p);
            assert_eq!(pool.available(), free, "{d}: the buffer went back");
            let parts = vec![b"one,".to_vec(), b"two,".to_vec(), b"three".to_vec()];
            let (n, parts) = c.write_vectored_owned(parts).await;
            assert_eq!(n.unwrap(), 13);
            assert_eq!(parts.len(), 3);
            c.shutdown(Shutdown::Write).await.unwrap();
            let mut got = Vec::new();
            loop {
                let (n, buf) = s.read_owned(Vec::with_capacity(7)).await;
                if n.unwrap() == 0 {
                    break;
                }
                got.extend_from_slice(&buf);
            }
            assert_eq!(got, b"from a pool buffer;one,two,three", "{d}");
        });
    }
}

#[test]
fn sockets_need_a_runtime_with_a_driver() {
    let err = TcpListener::bind("127.0.0.1:0").unwrap_err();
    assert!(
        err.to_string().contains("no Sprint runtime on this thread"),
        "{err}"
    );
    let mut cfg = sprint_core::Config::for_level(Level::Basic);
    cfg.workers = Some(1);
    let rt = sprint_core::Runtime::new(cfg, None).unwrap();
    let err = rt.block_on(async { TcpListener::bind("127.0.0.1:0").unwrap_err() });
    assert!(err.to_string().contains("has no I/O driver"), "{err}");
}

#[test]
fn the_start_up_report_names_each_workers_driver() {
    for d in drivers() {
        let rt = rt(d, Level::Enterprise, 2);
        let report = rt.start_report().drivers();
        assert_eq!(report.len(), 2);
        for line in &report {
            // Enterprise has arenas: the buffer pool is carved from them.
            assert!(line.contains("pool from the worker's arena"), "{line}");
            match d {
                IoDriver::Epoll => assert!(line.starts_with("epoll"), "{line}"),
                IoDriver::Uring => {
                    assert!(line.starts_with("io_uring"), "{line}");
                    // Enterprise registers the pool's buffers.
                    assert!(line.contains("registered buffers"), "{line}");
                }
            }
        }
        let name = if d == IoDriver::Epoll {
            "epoll"
        } else {
            "io_uring"
        };
        assert_eq!(rt.handle().driver(0).unwrap().1, name);
    }
}

#[test]
fn udp_datagrams_round_trip() {
    for d in drivers() {
        let rt = rt(d, Level::Basic, 2);
        rt.block_on(async {
            let a = sprint_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = sprint_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let b_addr = b.local_addr().unwrap();
            let echo = spawn(async move {
                let mut buf = [0u8; 64];
                let (n, from) = b.recv_from(&mut buf).await.unwrap();
                b.send_to(&buf[..n], from).await.unwrap();
            });
            a.send_to(b"datagram", b_addr).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"datagram"[..], b_addr), "{d}");
            echo.await.unwrap();
            a.connect(b_addr).unwrap();
            let r = time::timeout(Duration::from_millis(10), a.recv(&mut buf)).await;
            assert!(r.is_err(), "{d}: nothing more arrives");
        });
    }
}

#[test]
fn unix_streams_echo_and_half_close() {
    for d in drivers() {
        let rt = rt(d, Level::Enterprise, 1);
        rt.block_on(async {
            let dir = std::env::temp_dir().join(format!("sprint-unix-{}-{d}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("s.sock");
            let listener = sprint_io::net::UnixListener::bind(&path).unwrap();
            let server = spawn(async move {
                let mut s = listener.accept().await.unwrap();
                let mut all = Vec::new();
                AsyncReadExt::read_to_end(&mut s, &mut all).await.unwrap();
                s.write_all(&all).await.unwrap();
            });
            let c = sprint_io::net::UnixStream::connect(&path).await.unwrap();
            c.write_all(b"over unix").await.unwrap();
            c.shutdown(Shutdown::Write).await.unwrap();
            let mut got = [0u8; 32];
            let mut n = 0;
            loop {
                let k = c.read(&mut got[n..]).await.unwrap();
                if k == 0 {
                    break;
                }
                n += k;
            }
            assert_eq!(&got[..n], b"over unix", "{d}");
            server.await.unwrap();
            let (x, y) = sprint_io::net::UnixStream::pair().unwrap();
            x.write_all(b"p").await.unwrap();
            assert_eq!(y.read(&mut got).await.unwrap(), 1);
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }
}

/// SQPOLL is Turbo's, and only where a spare CPU can host the kernel's
/// polling thread: an isolated CPU no worker uses, or the one named by
/// `uring_sqpoll_cpu`; without one the report says Turbo submits with
/// io_uring_enter. (Turbo busy-polls: one worker, for a few milliseconds;
/// the real-time class is the tuner's and is not applied here.)
#[test]
fn turbo_polls_the_submission_queue_only_from_a_spare_cpu() {
    if !common::uring() {
        return;
    }
    let allowed = sprint_os::allowed_cpus().unwrap();
    let isolated = sprint_os::isolated_cpus();
    let turbo = |workers: usize, sqpoll_cpu: Option<usize>| {
        sprint::Builder::new()
            .level(Level::Turbo)
            .read_env(false)
            .workers(workers)
            .cpus(allowed[..workers].to_vec())
            .configure(move |c| {
                c.io_driver = IoDriver::Uring;
                c.rt_policy = sprint_core::config::RtPolicy::None;
                c.uring_sqpoll_cpu = sqpoll_cpu;
            })
            .build()
            .unwrap()
    };
    if allowed.len() >= 2 && !isolated.contains(&allowed[1]) {
        // A free CPU that is not isolated runs other work: no SQPOLL there
        // unless it is named.
        let rt = turbo(1, None);
        let report = rt.start_report().drivers().join("\n");
        assert!(report.contains("SQPOLL off: no spare CPU"), "{report}");
    }
    if allowed.len() >= 2 {
        let rt = turbo(1, Some(allowed[1]));
        let report = rt.start_report().drivers().join("\n");
        assert!(
            report.contains(&format!("SQPOLL on CPU {}", allowed[1])),
            "{report}"
        );
        // The SQPOLL ring does real work.
        rt.block_on(async {
            sprint_core::spawn_on(0, async {
                let (c, s, _listener) = connected_pair().await;
                c.write_all(b"polled").await.unwrap();
                let mut buf = [0u8; 6];
                let mut got = 0;
                while got < 6 {
                    let n = s.read(&mut buf[got..]).await.unwrap();
                    assert!(n > 0, "the stream ended early");
                    got += n;
                }
                assert_eq!(&buf, b"polled");
            })
            .unwrap()
            .await
            .unwrap();
        });
    }
    let rt = turbo(allowed.len(), None);
    let report = rt.start_report().drivers().join("\n");
    assert!(
        report.contains("SQPOLL off: no spare CPU") && !report.contains("SQPOLL on"),
        "{report}"
    );
}

/// Thread-per-core serving: each worker owns a listener on the same port
/// (SO_REUSEPORT) and the kernel spreads connections between them.
#[test]
fn per_worker_reuseport_listeners_share_the_connections() {
    for d in drivers() {
        let rt = rt(d, Level::Standard, 2);
        let counts = rt.block_on(async {
            let port = TcpListener::bind_reuseport("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            for w in 0..2 {
                let (tx, rx) = futures::channel::oneshot::channel();
                sprint_core::spawn_on(w, async move {
                    let l = TcpListener::bind_reuseport(("127.0.0.1", port)).unwrap();
                    tx.send(()).unwrap();
                    loop {
                        let (s, _) = l.accept().await.unwrap();
                        s.write_all(&[w as u8]).await.unwrap();
                        s.flush().await.unwrap();
                    }
                })
                .unwrap();
                rx.await.unwrap();
            }
            let mut seen = [0u32; 2];
            for _ in 0..40 {
                let c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                let mut b = [0u8; 1];
                assert_eq!(c.read(&mut b).await.unwrap(), 1);
                seen[b[0] as usize] += 1;
            }
            // The servers run until the runtime shuts down.
            seen
        });
        assert_eq!(counts.iter().sum::<u32>(), 40);
        assert!(
            counts.iter().all(|c| *c > 0),
            "{d}: the kernel spread nothing: {counts:?}"
        );
    }
}

/// More connections arrive than the listener has taken: on io_uring the
/// multishot accept stops at its backlog and restarts as they are taken.
/// Every connection is accepted, none is lost or left open.
#[test]
fn a_burst_beyond_the_accept_backlog_is_accepted_in_full() {
    for d in drivers() {
        let rt = rt(d, Level::Standard, 1);
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // Start the accept machinery, then let 200 pile up.
            let first = TcpStream::connect(addr).await.unwrap();
            let (a0, _) = listener.accept().await.unwrap();
            let mut clients = Vec::new();
            for _ in 0..200 {
                clients.push(std::net::TcpStream::connect(addr).unwrap());
            }
            // Every connect above returned, so all 200 are queued; this
            // gives the multishot accept time to run into its backlog (the
            // case under test) before the listener takes them.
            time::sleep(Duration::from_millis(20)).await;
            let mut accepted = vec![a0];
            for _ in 0..200 {
                accepted.push(listener.accept().await.unwrap().0);
            }
            let mut peers: Vec<_> = accepted.iter().map(|s| s.peer_addr().unwrap()).collect();
            peers.sort();
            peers.dedup();
            assert_eq!(peers.len(), 201, "{d}: every connection once");
            drop(first);
        });
    }
}

/// Operations submitted from threads that are not the ring's worker (here
/// `block_on`'s) while the worker spins turning its driver, with
/// more busy threads than CPUs so that threads are preempted anywhere:
/// every result belongs to its own operation and every byte arrives once,
/// in order. (A submission-queue view the worker made without the lock
/// once rolled the queue's tail back under such a push; the kernel then
/// ran stale entries again or never saw new ones.)
#[test]
fn foreign_submissions_race_the_workers_turns_without_loss() {
    for d in drivers() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || foreign_round_trips(d, 4000)))
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}

fn foreign_round_trips(d: IoDriver, messages: u64) {
    // Enterprise spins 1 ms before parking: the worker turns its driver
    // without pause while the thread submits.
    let rt = rt(d, Level::Enterprise, 1);
    rt.block_on(async {
        let (c, s, _listener) = connected_pair().await;
        for i in 0..messages {
            // A lost submission would hang: bound each round trip.
            time::timeout(Duration::from_secs(20), async {
                let (n, _) = c.write_owned(i.to_le_bytes().to_vec()).await;
                assert_eq!(n.unwrap(), 8, "{d}: message {i}'s send");
                let mut got = Vec::new();
                while got.len() < 8 {
                    let (n, buf) = s.read_owned(Vec::with_capacity(8 - got.len())).await;
                    assert!(n.unwrap() > 0, "{d}: end of stream before message {i}");
                    got.extend_from_slice(&buf);
                }
                assert_eq!(got, i.to_le_bytes(), "{d}: message {i}");
            })
            .await
            .unwrap_or_else(|_| panic!("{d}: message {i}'s round trip never finished"));
        }
    });
}

/// Connections reset by their peer while they wait in the backlog (SO_LINGER
/// 0, then close) are skipped: `accept` hands over the next live one
/// instead of failing (the relay's accept loops used to end on the first).
#[test]
fn connections_reset_before_accept_are_skipped() {
    for d in drivers() {
        for level in [Level::Basic, Level::Standard] {
            let rt = rt(d, level, 1);
            rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                for _ in 0..20 {
                    let c = std::net::TcpStream::connect(addr).unwrap();
                    socket2::SockRef::from(&c)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    drop(c);
                }
                let mut honest = std::net::TcpStream::connect(addr).unwrap();
                std::io::Write::write_all(&mut honest, b"hello").unwrap();
                let (s, peer) = time::timeout(Duration::from_secs(10), listener.accept())
                    .await
                    .expect("accept returned in time")
                    .unwrap_or_else(|e| panic!("{d:?} {level:?}: accept failed: {e}"));
                assert_eq!(peer, honest.local_addr().unwrap());
                let mut buf = [0u8; 5];
                let mut got = 0;
                while got < 5 {
                    let n = s.read(&mut buf[got..]).await.unwrap();
                    assert!(n > 0, "the honest connection closed early");
                    got += n;
                }
                assert_eq!(&buf, b"hello");
            });
        }
    }
}

/// Request/response over 64 connections to one worker, each connection's
/// task `spawn`ed (stealable at the stealing levels), as a hyper server
/// serves them: every one of the requests is answered, none later than a
/// generous second. At Standard on io_uring a last-in first-out deque
/// kept some connections waiting for hundreds of milliseconds under wrk
/// while the others were served; this closed-loop load seldom shows it,
/// so the test that fails without the fix is sprint-core's
/// `woken_tasks_take_turns_at_the_stealing_levels`, which pins the cause.
#[test]
fn every_request_of_64_connections_is_answered_in_time() {
    use std::io::{Read, Write};
    for d in drivers() {
        for level in [Level::Basic, Level::Standard, Level::Enterprise] {
            let rt = rt(d, level, 1);
            let (tx, rx) = std::sync::mpsc::channel();
            let server = rt.handle().spawn_on(0, async move {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                for _ in 0..64 {
                    let (s, _) = listener.accept().await.unwrap();
                    drop(spawn(async move {
                        let mut buf = [0u8; 64];
                        loop {
                            let mut got = 0;
                            while got < 64 {
                                match s.read(&mut buf[got..]).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => got += n,
                                }
                            }
                            if s.write_all(&buf).await.is_err() {
                                return;
                            }
                        }
                    }));
                }
            });
            let addr = rx.recv().unwrap();
            let clients: Vec<_> = (0..64u8)
                .map(|c| {
                    std::thread::spawn(move || {
                        let mut s = std::net::TcpStream::connect(addr).unwrap();
                        s.set_nodelay(true).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let mut worst = Duration::ZERO;
                        let mut back = [0u8; 64];
                        for i in 0..500u32 {
                            let mut req = [c; 64];
                            req[..4].copy_from_slice(&i.to_le_bytes());
                            let t = std::time::Instant::now();
                            s.write_all(&req).unwrap();
                            s.read_exact(&mut back)
                                .unwrap_or_else(|e| panic!("request {i} of connection {c}: {e}"));
                            worst = worst.max(t.elapsed());
                            assert_eq!(back, req);
                        }
                        worst
                    })
                })
                .collect();
            let worst = clients
                .into_iter()
                .map(|c| c.join().unwrap())
                .max()
                .unwrap();
            rt.block_on(server.unwrap()).unwrap();
            assert!(
                worst < Duration::from_secs(1),
                "{d:?} {level}: a request waited {worst:?}"
            );
        }
    }
}
