//! The load generator: one thread, pinned to its own CPU, drives the
//! publishers and subscribers over TCP with mio in one busy loop.
//!
//! It is built to cost little per frame, so that what a run measures is
//! the relay and not the generator (16 subscribers see every frame: at
//! 400k frames/s that is 6.4M frames read per second):
//!
//! - Sends are paced open-loop ([`Pacing`]): message `i` is due at
//!   `start + i / rate` whatever the relay does, brought forward to the
//!   start of its tick (`--send-tick-us`, 50 µs), and latency runs from
//!   there, when the frame was meant to go. What is due in a tick goes
//!   out together, so a publisher writes at most once a tick instead of
//!   once a frame (at 200k frames/s, one write per frame was a quarter of
//!   the generator's time in a profile, and cost the relay as many
//!   reads). Up to 20k frames/s (at most one per tick) each frame still
//!   goes out alone.
//! - Frames are built before the run, each publisher's back to back
//!   ([`Frames`]), so everything due for a publisher goes out in one
//!   `write` straight from that buffer, with no copy.
//! - Each subscriber reads into a large buffer of its own, and every
//!   whole frame in it is counted in one pass ([`Measure::read`]); a read
//!   that does not fill the room it was given has emptied the socket
//!   (so no second read to hear `WouldBlock`), and only a partial frame
//!   is carried to the next read. Latency ends when the bytes arrived in
//!   the socket, as the kernel says ([`arrival`]), not when the generator
//!   got round to reading them.
//!
//! A run is a warm-up of half a second at the same rate, then the
//! measured window; it ends when every subscriber has everything, or 5 s
//! after the last message was due. Each turn's sending and reading is
//! timed (less any wait for the CPU, on a loaded machine) for the
//! generator's busy share ([`crate::measure`]); polling is not work.

use crate::arrival;
use crate::frames::Frames;
use crate::measure::{cpu_seconds_self, LoadResult, Measure, Pacing};
use crate::LoadArgs;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The default send tick, µs.
pub const SEND_TICK_US: u64 = 50;

/// Each subscriber's read buffer, bytes.
const READ_BUFFER: usize = 256 << 10;

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(TcpStream::from_std(s))
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// A loop turn longer than this may hold a wait for the CPU.
const LONG_TURN: Duration = Duration::from_micros(50);

/// How long this thread has waited, runnable, for a CPU (the second field
/// of `/proc/thread-self/schedstat`), when the kernel says.
struct RunDelay(Option<std::fs::File>);

impl RunDelay {
    fn open() -> RunDelay {
        RunDelay(std::fs::File::open("/proc/thread-self/schedstat").ok())
    }

    fn read(&self) -> Option<Duration> {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 128];
        let n = self.0.as_ref()?.read_at(&mut b, 0).ok()?;
        let ns = std::str::from_utf8(&b[..n])
            .ok()?
            .split_whitespace()
            .nth(1)?;
        ns.parse().ok().map(Duration::from_nanos)
    }
}

/// A subscriber connection and what it has read but not yet counted.
struct Sub {
    s: TcpStream,
    buf: Box<[u8]>,
    /// Bytes at the front of `buf` not yet counted (a partial frame).
    held: usize,
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
    let pubs_n = a.pubs.max(1);
    let frames = Frames::build(a.seq_base, total, pubs_n);
    let mut poll = Poll::new()?;
    let mut subs = Vec::new();
    for i in 0..a.subs {
        let mut s = connect(a.subscribers)?;
        arrival::enable(&s)?;
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)?;
        subs.push(Sub {
            s,
            buf: vec![0u8; READ_BUFFER].into_boxed_slice(),
            held: 0,
        });
    }
    // Subscribers are registered as the relay accepts them.
    std::thread::sleep(Duration::from_millis(300));
    // Each publisher's connection and how far into its stream it wrote.
    let mut pubs: Vec<(TcpStream, usize)> = Vec::new();
    for _ in 0..pubs_n {
        pubs.push((connect(a.publishers)?, 0));
    }
    let mut m = Measure::new(a.subs, pubs_n, warm, total, a.rate, a.seconds, a.seq_base);
    let mut events = Events::with_capacity(64);
    let cpu0 = cpu_seconds_self();
    let pace = Pacing::new(a.rate, Duration::from_micros(a.send_tick_us));
    let mut next = 0u64;
    let deadline = pace.due_at(total) + Duration::from_secs(5);
    let loop_start = Instant::now();
    let loop_cpu = thread_cpu();
    let waits = RunDelay::open();
    let mut waited = waits.read();
    loop {
        let now = Instant::now();
        let sent_before = next;
        while next < total && pace.due_at(next) <= now {
            m.sent(next, now - pace.due_at(next));
            if next == warm {
                if let Some(f) = at_measure.take() {
                    f();
                }
            }
            next += 1;
        }
        // Everything due, one write per publisher from its stream.
        let mut unsent = false;
        for (p, (s, at)) in pubs.iter_mut().enumerate() {
            let end = frames.end_before(p, next);
            while *at < end {
                match s.write(&frames.stream(p)[*at..end]) {
                    Ok(n) => *at += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            unsent |= *at < end;
        }
        // The time spent sending and reading is the busy time; polling is
        // waiting.
        let sent_at = Instant::now();
        let mut work = if next != sent_before {
            sent_at - now
        } else {
            Duration::ZERO
        };
        poll.poll(&mut events, Some(Duration::ZERO))?;
        let polled_at = Instant::now();
        for ev in events.iter() {
            let i = ev.token().0;
            if m.is_closed(i) {
                continue;
            }
            let sub = &mut subs[i];
            loop {
                let room = sub.buf.len() - sub.held;
                if room == 0 {
                    // A buffer's worth without a whole frame: its header
                    // gave a length no frame sent has.
                    m.unframed();
                    sub.held = 0;
                    continue;
                }
                match arrival::recv(&sub.s, &mut sub.buf[sub.held..]) {
                    Ok(arrival::Read { n: 0, .. }) => {
                        // Dropped by the relay's slow-subscriber policy.
                        m.close(i);
                        poll.registry().deregister(&mut sub.s)?;
                        break;
                    }
                    Ok(arrival::Read { n, at, stamped }) => {
                        let have = sub.held + n;
                        m.stamped(stamped);
                        let used = m.read(i, &sub.buf[..have], at, &frames, &pace);
                        sub.buf.copy_within(used..have, 0);
                        sub.held = have - used;
                        if n < room {
                            // The socket is empty: the next byte that comes
                            // raises a new event.
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if !events.is_empty() {
            work += polled_at.elapsed();
        }
        let turn = now.elapsed();
        // A turn this long may have waited for the CPU (taken by
        // something else): the wait is not work. Reading how long the
        // thread waited is a system call, so only after long turns.
        if turn > LONG_TURN {
            if let (Some(before), Some(after)) = (waited, waits.read()) {
                work = work.saturating_sub(after.saturating_sub(before));
                waited = Some(after);
            }
        }
        m.worked(work);
        m.turn(turn, next != sent_before || !events.is_empty());
        if next == total && !unsent && (m.all_received() || Instant::now() > deadline) {
            break;
        }
        if Instant::now() > deadline + Duration::from_secs(5) {
            break;
        }
    }
    Ok(m.result(
        measured,
        cpu0,
        loop_start,
        thread_cpu().saturating_sub(loop_cpu),
    ))
}
