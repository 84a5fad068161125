//! The load generator: one thread, pinned to its own CPU, drives the
//! publishers and subscribers over TCP with mio in one busy loop. Frames
//! are built before the run, each transaction carrying its sequence
//! number. Sends are paced open-loop ([`Pacing`]): message `i` is due at
//! `start + i / rate` whatever the relay does, and everything due goes
//! out round-robin over the publishers in as few writes as possible. What
//! the subscribers read is handed to [`Measure`]. A run is a warm-up of
//! half a second at the same rate, then the measured window; it ends when
//! every subscriber has everything, or 5 s after the last message was
//! due.

use crate::measure::{cpu_seconds_self, LoadResult, Measure};
use crate::LoadArgs;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use sprint_relay::wire;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A framed transaction carrying `seq`.
fn frame(seq: u64) -> Vec<u8> {
    wire::tx_frame(&sprint_relay::sample::transaction(seq, 22).0)
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(TcpStream::from_std(s))
}

/// Open-loop pacing: when each message is due, from a start 10 ms after
/// the pacing is made.
#[derive(Clone, Copy)]
struct Pacing {
    start: Instant,
    ns_per: f64,
}

impl Pacing {
    fn new(rate: u64) -> Pacing {
        Pacing {
            start: Instant::now() + Duration::from_millis(10),
            ns_per: 1e9 / rate as f64,
        }
    }

    fn due_at(&self, seq: u64) -> Instant {
        self.start + Duration::from_nanos((seq as f64 * self.ns_per) as u64)
    }
}

/// One run against a running relay.
pub fn run(a: &LoadArgs) -> std::io::Result<LoadResult> {
    run_marked(a, || {})
}

/// [`run`], calling `at_measure` once, when the first measured message is
/// due (the warm-up is over).
pub fn run_marked(a: &LoadArgs, at_measure: impl FnOnce()) -> std::io::Result<LoadResult> {
    let mut at_measure = Some(at_measure);
    if !core_affinity::set_for_current(core_affinity::CoreId { id: a.cpu }) {
        return Err(std::io::Error::other(format!(
            "cannot pin to CPU {}",
            a.cpu
        )));
    }
    let warm = a.rate / 2;
    let measured = (a.rate as f64 * a.seconds) as u64;
    let total = warm + measured;
    let frames: Vec<Vec<u8>> = (0..total).map(|i| frame(a.seq_base + i)).collect();
    let mut poll = Poll::new()?;
    let mut subs = Vec::new();
    for i in 0..a.subs {
        let mut s = connect(a.subscribers)?;
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)?;
        subs.push(s);
    }
    // Subscribers are registered as the relay accepts them.
    std::thread::sleep(Duration::from_millis(300));
    let mut pubs: Vec<(TcpStream, Vec<u8>)> = Vec::new();
    for _ in 0..a.pubs {
        pubs.push((connect(a.publishers)?, Vec::with_capacity(1 << 20)));
    }
    let mut bufs: Vec<Vec<u8>> = (0..a.subs).map(|_| Vec::with_capacity(1 << 20)).collect();
    let mut m = Measure::new(a.subs, warm, total, a.rate, a.seconds, a.seq_base);
    let mut events = Events::with_capacity(64);
    let mut chunk = vec![0u8; 256 << 10];
    let cpu0 = cpu_seconds_self();
    let pace = Pacing::new(a.rate);
    let mut next = 0u64;
    let deadline = pace.due_at(total) + Duration::from_secs(5);
    loop {
        let now = Instant::now();
        let sent_before = next;
        // Everything due by now goes out, round-robin over publishers, in
        // as few writes as possible.
        while next < total && pace.due_at(next) <= now {
            let p = (next % a.pubs as u64) as usize;
            pubs[p].1.extend_from_slice(&frames[next as usize]);
            m.sent(next, now - pace.due_at(next));
            if next == warm {
                if let Some(f) = at_measure.take() {
                    f();
                }
            }
            next += 1;
        }
        for (s, out) in pubs.iter_mut() {
            while !out.is_empty() {
                match s.write(out) {
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        poll.poll(&mut events, Some(Duration::ZERO))?;
        if next == sent_before && events.is_empty() {
            m.idle_turn(now.elapsed());
        }
        for ev in events.iter() {
            let i = ev.token().0;
            if m.is_closed(i) {
                continue;
            }
            loop {
                match subs[i].read(&mut chunk) {
                    Ok(0) => {
                        // Dropped by the relay's slow-subscriber policy.
                        m.close(i);
                        poll.registry().deregister(&mut subs[i])?;
                        break;
                    }
                    Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            m.read(i, &mut bufs[i], Instant::now(), &frames, |seq| {
                pace.due_at(seq)
            });
        }
        if next == total
            && pubs.iter().all(|p| p.1.is_empty())
            && (m.all_received() || Instant::now() > deadline)
        {
            break;
        }
        if Instant::now() > deadline + Duration::from_secs(5) {
            break;
        }
    }
    Ok(m.result(measured, cpu0, pace.start))
}
