//! The socket calls tokio users reach for: borrowed `split`, `peek`,
//! `readable`/`writable` with `try_read`/`try_write`, `TcpSocket`,
//! `into_std`/`from_std`, `AsFd`, `UnixDatagram`, Unix stream addresses.
//! One suite, run once per
//! driver the machine offers (as `net.rs`).

mod common;

use common::{drivers, rt};

use futures::{AsyncReadExt, AsyncWriteExt};
use sprint_core::config::IoDriver;
use sprint_core::{spawn, time};
use sprint_io::net::{
    TcpListener, TcpSocket, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

async fn connected_pair() -> (TcpStream, TcpStream, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let c = TcpStream::connect(addr).await.unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (c, s, listener)
}

/// Reads exactly `n` bytes with `readable` + `try_read`.
async fn try_read_exact(s: &TcpStream, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < n {
        s.readable().await.unwrap();
        match s.try_read(&mut buf) {
            Ok(0) => panic!("end of stream after {} of {n} bytes", got.len()),
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => panic!("try_read: {e}"),
        }
    }
    got
}

#[test]
fn a_borrowed_split_reads_and_writes_at_once() {
    for d in drivers() {
        rt(d).block_on(async {
            let (mut c, s, _l) = connected_pair().await;
            let echo = spawn(async move {
                let mut buf = [0u8; 256];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).await.unwrap();
                }
            });
            // `futures::AsyncReadExt::split` (in scope) takes the stream by value
            // and wins method lookup: name the inherent one.
            let (mut r, mut w) = TcpStream::split(&mut c);
            let msg: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
            let writer = async {
                w.write_all(&msg).await.unwrap();
                AsyncWriteExt::close(&mut w).await.unwrap();
            };
            let mut got = Vec::new();
            let reader = AsyncReadExt::read_to_end(&mut r, &mut got);
            let ((), n) = futures::join!(writer, reader);
            assert_eq!(n.unwrap(), msg.len(), "{d}");
            assert_eq!(got, msg, "{d}");
            echo.await.unwrap();
        });
    }
}

#[test]
fn peek_leaves_the_bytes_for_the_next_read() {
    for d in drivers() {
        rt(d).block_on(async {
            let (c, s, _l) = connected_pair().await;
            c.write_all(b"hello").await.unwrap();
            c.flush().await.unwrap();
            let mut buf = [0u8; 5];
            let mut n = 0;
            // A peek may see a first part only: peek until all five are in.
            while n < 5 {
                n = s.peek(&mut buf).await.unwrap();
            }
            assert_eq!(&buf, b"hello", "{d}");
            let mut again = [0u8; 5];
            assert_eq!(s.peek(&mut again).await.unwrap(), 5);
            assert_eq!(&again, b"hello", "{d}: a second peek sees the same");
            assert_eq!(try_read_exact(&s, 5).await, b"hello", "{d}");
            // A peek waits for bytes that are not there yet.
            let peeker = spawn(async move {
                let mut b = [0u8; 3];
                let n = s.peek(&mut b).await.unwrap();
                (n, b, s)
            });
            c.write_all(b"abc").await.unwrap();
            c.flush().await.unwrap();
            let (n, b, s) = peeker.await.unwrap();
            assert!(n > 0 && b[..n] == b"abc"[..n], "{d}");
            assert_eq!(try_read_exact(&s, 3).await, b"abc", "{d}");
            // After a read that took part of what arrived (on io_uring the
            // rest is held by the stream), a peek sees the rest first.
            c.write_all(b"0123456789").await.unwrap();
            c.flush().await.unwrap();
            let mut two = [0u8; 2];
            let mut got = 0;
            while got < 2 {
                got += s.read(&mut two[got..]).await.unwrap();
            }
            assert_eq!(&two, b"01");
            let mut p = [0u8; 3];
            let n = s.peek(&mut p).await.unwrap();
            assert!(n > 0 && p[..n] == b"234"[..n], "{d}: {:?}", &p[..n]);
            assert_eq!(try_read_exact(&s, 8).await, b"23456789", "{d}");
        });
    }
}

#[test]
fn try_read_answers_would_block_until_readable() {
    for d in drivers() {
        rt(d).block_on(async {
            let (c, s, _l) = connected_pair().await;
            let mut buf = [0u8; 16];
            let e = s.try_read(&mut buf).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::WouldBlock, "{d}: nothing sent yet");
            // readable() waits: it is not ready before anything is sent.
            let waiting = time::timeout(Duration::from_millis(20), s.readable()).await;
            assert!(waiting.is_err(), "{d}: readable with nothing to read");
            c.writable().await.unwrap();
            let mut sent = 0;
            while sent < 4 {
                match c.try_write(&b"data"[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => c.writable().await.unwrap(),
                    Err(e) => panic!("{d}: try_write: {e}"),
                }
            }
            assert_eq!(try_read_exact(&s, 4).await, b"data", "{d}");
            c.shutdown(Shutdown::Write).await.unwrap();
            loop {
                s.readable().await.unwrap();
                match s.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => panic!("{d}: {n} bytes after the end"),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{d}: {e}"),
                }
            }
        });
    }
}

/// A read dropped in flight leaves its receive with the stream (on
/// io_uring); `try_read` must hand over what it brought first, in order.
#[test]
fn try_read_after_a_dropped_read_keeps_the_order() {
    for d in drivers() {
        rt(d).block_on(async {
            let (c, s, _l) = connected_pair().await;
            let mut buf = [0u8; 64];
            let r = time::timeout(Duration::from_millis(10), s.read(&mut buf)).await;
            assert!(r.is_err(), "{d}: nothing was sent");
            let msg: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
            c.write_all(&msg).await.unwrap();
            c.flush().await.unwrap();
            assert_eq!(try_read_exact(&s, msg.len()).await, msg, "{d}");
        });
    }
}

/// Writes written behind (io_uring sends after `write` returns) go
/// before anything `try_write` sends.
#[test]
fn try_write_never_overtakes_a_write_in_flight() {
    for d in drivers() {
        rt(d).block_on(async {
            let (c, s, _l) = connected_pair().await;
            c.write_all(&[1u8; 1000]).await.unwrap();
            let mut sent = 0;
            while sent < 1000 {
                match c.try_write(&[2u8; 1000][sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => c.writable().await.unwrap(),
                    Err(e) => panic!("{d}: {e}"),
                }
            }
            let got = try_read_exact(&s, 2000).await;
            assert!(got[..1000].iter().all(|b| *b == 1), "{d}");
            assert!(got[1000..].iter().all(|b| *b == 2), "{d}");
        });
    }
}

/// A full socket: `try_write` answers `WouldBlock`, and `writable` waits
/// until the peer has read.
#[test]
fn writable_waits_for_room() {
    for d in drivers() {
        rt(d).block_on(async {
            let (c, s, _l) = connected_pair().await;
            let chunk = vec![5u8; 64 << 10];
            let mut sent = 0usize;
            loop {
                match c.try_write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{d}: {e}"),
                }
                assert!(sent < 256 << 20, "{d}: the socket never filled");
            }
            let full = time::timeout(Duration::from_millis(20), c.writable()).await;
            assert!(full.is_err(), "{d}: writable while the socket is full");
            let reader = spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                let mut got = 0;
                while got < sent {
                    got += s.read(&mut buf).await.unwrap();
                }
                got
            });
            c.writable().await.unwrap();
            let n = loop {
                match c.try_write(b"more") {
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => c.writable().await.unwrap(),
                    Err(e) => panic!("{d}: {e}"),
                }
            };
            assert!(n > 0);
            assert!(reader.await.unwrap() >= sent, "{d}");
        });
    }
}

#[test]
fn a_tcp_socket_takes_its_options_before_listen_and_connect() {
    for d in drivers() {
        rt(d).block_on(async {
            let ls = TcpSocket::new_v4().unwrap();
            ls.set_reuseaddr(true).unwrap();
            ls.set_reuseport(true).unwrap();
            ls.set_recv_buffer_size(256 << 10).unwrap();
            ls.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            assert!(ls.reuseaddr().unwrap() && ls.reuseport().unwrap(), "{d}");
            assert!(ls.recv_buffer_size().unwrap() >= 256 << 10, "{d}");
            let addr = ls.local_addr().unwrap();
            let listener = ls.listen(16).unwrap();
            assert_eq!(listener.local_addr().unwrap(), addr);

            let cs = TcpSocket::new_v4().unwrap();
            cs.set_nodelay(true).unwrap();
            cs.set_send_buffer_size(128 << 10).unwrap();
            assert!(cs.send_buffer_size().unwrap() >= 128 << 10, "{d}");
            let c = cs.connect(addr).await.unwrap();
            assert!(
                c.nodelay().unwrap(),
                "{d}: the option stays with the stream"
            );
            let (s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, c.local_addr().unwrap());
            c.write_all(b"x").await.unwrap();
            assert_eq!(try_read_exact(&s, 1).await, b"x");

            // A refused connection is the OS error.
            let closed = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap()
            };
            let e = TcpSocket::new_v4()
                .unwrap()
                .connect(closed)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{d}: {e}");
        });
    }
}

#[test]
fn streams_and_listeners_go_to_std_and_back() {
    for d in drivers() {
        rt(d).block_on(async {
            let (c, s, l) = connected_pair().await;
            assert_eq!(c.as_fd().as_raw_fd(), c.as_raw_fd());
            assert_eq!(l.as_fd().as_raw_fd(), l.as_raw_fd());
            let addr = l.local_addr().unwrap();
            // To std: blocking, and the bytes go through.
            let mut std_c = c.into_std().unwrap();
            std_c.write_all(b"from std").unwrap();
            assert_eq!(try_read_exact(&s, 8).await, b"from std", "{d}");
            s.write_all(b"to std").await.unwrap();
            s.flush().await.unwrap();
            let mut got = [0u8; 6];
            std_c.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"to std", "{d}");
            // And back.
            let c = TcpStream::from_std(std_c).unwrap();
            c.write_all(b"back").await.unwrap();
            assert_eq!(try_read_exact(&s, 4).await, b"back", "{d}");

            let std_l = l.into_std().unwrap();
            assert_eq!(std_l.local_addr().unwrap(), addr);
            let l = TcpListener::from_std(std_l).unwrap();
            let c2 = TcpStream::connect(addr).await.unwrap();
            let (s2, _) = l.accept().await.unwrap();
            c2.write_all(b"again").await.unwrap();
            assert_eq!(try_read_exact(&s2, 5).await, b"again", "{d}");

            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            let uaddr = u.local_addr().unwrap();
            let std_u = u.into_std().unwrap();
            assert_eq!(std_u.local_addr().unwrap(), uaddr);
            let u = UdpSocket::from_std(std_u).unwrap();
            let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.send_to(b"dgram", uaddr).await.unwrap();
            let mut b = [0u8; 8];
            let (n, from) = u.recv_from(&mut b).await.unwrap();
            assert_eq!((&b[..n], from), (&b"dgram"[..], peer.local_addr().unwrap()));
            assert_eq!(
                u.peer_addr().unwrap_err().kind(),
                ErrorKind::NotConnected,
                "{d}"
            );
            u.connect(from).unwrap();
            assert_eq!(u.peer_addr().unwrap(), from, "{d}");
        });
    }
}

/// On io_uring a stream with bytes received ahead cannot go to std
/// without losing them: `into_std` says so instead.
#[test]
fn into_std_refuses_to_lose_bytes_received_ahead() {
    if !common::uring() {
        return;
    }
    rt(IoDriver::Uring).block_on(async {
        let (c, s, _l) = connected_pair().await;
        // A read of an empty socket puts a receive on the ring; the ten
        // bytes then land in one provided buffer, and the read takes two.
        // (A read of a socket with data takes just what it asks for with
        // a direct `recv`, and nothing is held ahead.)
        let mut two = [0u8; 2];
        let n = {
            let mut read = std::pin::pin!(s.read(&mut two));
            assert!(futures::poll!(read.as_mut()).is_pending());
            c.write_all(b"0123456789").await.unwrap();
            c.flush().await.unwrap();
            read.await.unwrap()
        };
        let mut got = n;
        while got < 2 {
            got += s.read(&mut two[got..]).await.unwrap();
        }
        let e = s.into_std().unwrap_err();
        assert!(e.to_string().contains("received ahead"), "{e}");
    });
}

#[test]
fn unix_streams_split_and_convert() {
    for d in drivers() {
        rt(d).block_on(async {
            let (mut a, b) = UnixStream::pair().unwrap();
            {
                let (ra, wa) = UnixStream::split(&mut a);
                wa.write_all(b"ping").await.unwrap();
                wa.flush().await.unwrap();
                let mut buf = [0u8; 4];
                let mut got = 0;
                while got < 4 {
                    got += b.read(&mut buf[got..]).await.unwrap();
                }
                assert_eq!(&buf, b"ping", "{d}");
                b.write_all(b"pong").await.unwrap();
                let mut got = 0;
                while got < 4 {
                    got += ra.read(&mut buf[got..]).await.unwrap();
                }
                assert_eq!(&buf, b"pong", "{d}");
            }
            let mut std_a = a.into_std().unwrap();
            std_a.write_all(b"std").unwrap();
            let mut buf = [0u8; 3];
            b.readable().await.unwrap();
            let mut got = 0;
            while got < 3 {
                match b.try_read(&mut buf[got..]) {
                    Ok(n) => got += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await.unwrap(),
                    Err(e) => panic!("{d}: {e}"),
                }
            }
            assert_eq!(&buf, b"std", "{d}");
            let a = UnixStream::from_std(std_a).unwrap();
            assert_eq!(a.as_fd().as_raw_fd(), a.as_raw_fd());
        });
    }
}

#[test]
fn unix_streams_and_listeners_tell_their_addresses() {
    for d in drivers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sock");
        rt(d).block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            let at = listener.local_addr().unwrap();
            assert_eq!(at.as_pathname(), Some(path.as_path()), "{d}");
            let client = spawn({
                let path = path.clone();
                async move { UnixStream::connect(&path).await.unwrap() }
            });
            let server = listener.accept().await.unwrap();
            let client = client.await.unwrap();
            // The client reaches the listener's path from an unnamed end.
            assert_eq!(
                client.peer_addr().unwrap().as_pathname(),
                Some(path.as_path()),
                "{d}"
            );
            assert!(client.local_addr().unwrap().is_unnamed(), "{d}");
            // The accepted end is bound to the path; its peer is unnamed.
            assert_eq!(
                server.local_addr().unwrap().as_pathname(),
                Some(path.as_path()),
                "{d}"
            );
            assert!(server.peer_addr().unwrap().is_unnamed(), "{d}");
            let (a, _b) = UnixStream::pair().unwrap();
            assert!(a.local_addr().unwrap().is_unnamed(), "{d}");
            assert!(a.peer_addr().unwrap().is_unnamed(), "{d}");
        });
    }
}

#[test]
fn unix_datagrams_carry_messages_and_their_senders() {
    for d in drivers() {
        let dir = tempfile::tempdir().unwrap();
        rt(d).block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            let mut buf = [0u8; 32];
            assert_eq!(
                b.try_recv(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock,
                "{d}"
            );
            // A receive waits for the datagram sent after it started.
            let waiter = spawn(async move {
                let mut buf = [0u8; 32];
                let n = b.recv(&mut buf).await.unwrap();
                (buf[..n].to_vec(), b)
            });
            a.send(b"one").await.unwrap();
            let (got, b) = waiter.await.unwrap();
            assert_eq!(got, b"one", "{d}");
            a.send(b"two").await.unwrap();
            a.send(b"three").await.unwrap();
            // Datagrams keep their boundaries.
            assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
            assert_eq!(&buf[..3], b"two");
            assert_eq!(b.recv(&mut buf).await.unwrap(), 5);
            assert_eq!(&buf[..5], b"three");

            let (pa, pb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
            let x = UnixDatagram::bind(&pa).unwrap();
            let y = UnixDatagram::bind(&pb).unwrap();
            x.send_to(b"hi", &pb).await.unwrap();
            let (n, from) = y.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"hi", "{d}");
            assert_eq!(from.as_pathname(), Some(pa.as_path()), "{d}");
            assert_eq!(y.local_addr().unwrap().as_pathname(), Some(pb.as_path()));
            assert_eq!(x.as_fd().as_raw_fd(), x.as_raw_fd());

            let std_y = y.into_std().unwrap();
            x.send_to(b"std", &pb).await.unwrap();
            let n = std_y.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"std", "{d}: blocking std socket");
            let y = UnixDatagram::from_std(std_y).unwrap();
            y.connect(&pa).unwrap();
            y.send(b"reply").await.unwrap();
            let n = x.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"reply", "{d}");
            let u = UnixDatagram::unbound().unwrap();
            u.send_to(b"anon", &pa).await.unwrap();
            let (n, from) = x.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"anon");
            assert!(from.is_unnamed(), "{d}");
        });
    }
}
