//! The `/metrics` HTTP server: one thread, one `mio` event loop,
//! non-blocking sockets, and a fixed budget per connection.
//!
//! # Why it is built this way
//!
//! A metrics endpoint is reachable by whoever can reach the port, and it
//! must never take time or memory from the workers. The server it replaces
//! (tiny_http) read a request line until its end, however long (a 1 GB line
//! without CRLF cost 1 GB of RSS), ran a thread per connection (3,000
//! slowloris connections made 2,978 threads) and wrote responses one after
//! another from one loop (a client that pipelined 20,000 requests and never
//! read the responses held every other scrape behind its full socket).
//! Each of those is a cost that the client chooses; here every cost is
//! chosen by the server:
//!
//! - **Threads: one.** All connections are non-blocking sockets in one
//!   `mio` loop on the `sprint-metrics` thread, never on a worker. However
//!   many clients connect, the process has one more thread.
//! - **Memory per connection: one head and one response.** A connection has
//!   an input buffer of [`Limits::max_head_bytes`] (8 KiB by default); a
//!   head that does not end within it is answered 431 and the connection
//!   closed, so a line without end costs 8 KiB, not its length (the close
//!   lingers: the write side is shut and up to 64 KiB more are read and
//!   dropped, so that the kernel does not reset the connection before the
//!   431 is read). The output buffer holds one response, and the next
//!   request is not even read before it is written: a client that
//!   pipelines requests and never reads costs one response, its requests
//!   wait in the kernel's buffers, and its connection simply stops being
//!   read.
//! - **Time: a deadline per phase.** A connection waiting for a request
//!   (idle, or with part of a head) is closed when [`Limits::read_timeout`]
//!   has passed since the wait began, whatever trickles in meanwhile (a
//!   per-read timeout would let a client that sends a byte a second live
//!   forever); a response not written within [`Limits::write_timeout`] is
//!   dropped with its connection. Deadlines are checked at every turn of
//!   the loop, and the loop sleeps no longer than the nearest one.
//! - **Connections: a cap, and the newest wins.** At
//!   [`Limits::max_connections`] a new connection closes the one that has
//!   waited longest for its peer (for a request, or for it to read a
//!   response). Refusing the new one instead would let a few idle sockets
//!   lock every scrape out until their timeouts, again and again; this way
//!   an attacker has to open more connections than the cap within one
//!   scrape's round trip (a few milliseconds) to disturb it. A new
//!   connection's request is read and answered as it is accepted, and at
//!   most 64 connections are accepted per turn, so that a flood of
//!   connects neither evicts a scrape before it is read nor holds the
//!   loop. The listen backlog is 1,024, so that such a burst does not drop
//!   a scraper's SYN (a second-long retransmission).
//! - **No client waits for another.** Nothing blocks: a socket that cannot
//!   take more output, or has no more input, is left until `mio` says it
//!   can. A connection is served at most one response per turn, so one with
//!   many pipelined requests takes its turn beside the others.
//!
//! The protocol is the part of HTTP/1.x a scraper uses: `GET` and `HEAD`,
//! keep-alive (HTTP/1.1's default, HTTP/1.0's on request) and
//! `Connection: close` (see `request.rs`). A request that declares a body is
//! answered and its connection closed.
//!
//! `accept` errors that belong to one connection (it was reset or aborted
//! before it was accepted, or its network error was pending) are skipped;
//! those about the process (out of descriptors or memory) are logged and
//! accepting pauses for 100 ms, while the connections already open are
//! still served.
//!
//! How often each defence acted (evictions, timeouts, refused requests,
//! accept errors) is counted in [`ServerStats`] and served with the
//! runtime's figures as `sprint_metrics_server_*_total`.

mod limits;
mod request;
mod response;
mod stats;

pub use limits::{Limits, LimitsError};
pub use stats::ServerStats;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use request::Parsed;
use response::{answer, response};
use stats::{bump, Counters};
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Makes a scrape's body from the server's own figures; `Err` is answered
/// 500.
pub(crate) type Render = Box<dyn FnMut(ServerStats) -> Result<String, fmt::Error> + Send>;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection tokens are slab keys plus this.
const FIRST_CONN: usize = 2;
/// The most input read and dropped from a connection being closed.
const LINGER_BYTES: usize = 64 * 1024;
/// Connections the kernel may queue before they are accepted.
#[cfg(unix)]
const BACKLOG: libc::c_int = 1024;
/// Connections accepted in one turn, before the others are served.
const ACCEPTS_PER_TURN: usize = 64;
/// How long accepting pauses after an error about the process (EMFILE...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The running server: its thread stops and joins when this is dropped.
pub(crate) struct Running {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running").field("addr", &self.addr).finish()
    }
}

impl Running {
    /// Binds `addr` and serves `GET /metrics` with `render` on a thread
    /// named `sprint-metrics`.
    pub(crate) fn start(addr: &str, limits: Limits, render: Render) -> io::Result<Running> {
        limits
            .validate()
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let mut last = None;
        let mut listener = None;
        for a in addr.to_socket_addrs()? {
            match TcpListener::bind(a) {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut listener = listener.ok_or_else(|| {
            last.unwrap_or_else(|| {
                io::Error::new(ErrorKind::InvalidInput, format!("{addr} names no address"))
            })
        })?;
        // A deeper backlog than mio's 128: a burst of connections (a flood
        // being accepted and evicted) should not drop a scraper's SYN, which
        // would cost it a second-long retransmission.
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: listen on a socket we own; calling it again on a
            // listening socket only changes its backlog.
            if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut server = EventLoop {
            counters: counters.clone(),
            poll,
            listener,
            conns: slab::Slab::new(),
            limits,
            render,
            stop: stop.clone(),
            accept_paused_until: None,
            accept_more: false,
            ready: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("sprint-metrics".into())
            .spawn(move || server.run())?;
        Ok(Running {
            addr,
            stop,
            waker,
            counters,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has done so far.
    pub(crate) fn stats(&self) -> ServerStats {
        self.counters.get()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Err(e) = self.waker.wake() {
            tracing::warn!(error = %e, "could not wake the /metrics server to stop it");
            return;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A whole request head.
    Reading,
    /// Its peer to take the rest of a response.
    Writing,
    /// Its peer to close, after a last response: see `Conn::linger`.
    Closing,
}

/// One client connection.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// The head being read: `input[..filled]`; when closing, the bytes
    /// dropped so far.
    input: Box<[u8]>,
    filled: usize,
    /// The response being written: `output[written..]` is left.
    output: Vec<u8>,
    written: usize,
    /// Close once the output is written.
    close_after: bool,
    phase: Phase,
    /// When the current phase began: its deadline counts from here.
    since: Instant,
}

/// How a turn on a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// Waiting for the socket to be readable or writable.
    Wait,
    /// A response was written and more input may be buffered: drive it
    /// again next turn, after the others.
    Again,
    /// Done with the connection.
    Close,
}

struct EventLoop {
    counters: Arc<Counters>,
    poll: Poll,
    listener: TcpListener,
    conns: slab::Slab<Conn>,
    limits: Limits,
    render: Render,
    stop: Arc<AtomicBool>,
    accept_paused_until: Option<Instant>,
    /// The last turn stopped accepting before the backlog was empty.
    accept_more: bool,
    /// Connections to drive this turn without an event (see `Turn::Again`).
    ready: Vec<usize>,
}

impl EventLoop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        let mut again = Vec::new();
        while !self.stop.load(Ordering::Acquire) {
            let timeout = if self.ready.is_empty() && !self.accept_more {
                self.next_deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "the /metrics server's poll failed; it stops");
                return;
            }
            again.clear();
            again.append(&mut self.ready);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => self.drive(t - FIRST_CONN),
                }
            }
            for &key in &again {
                self.drive(key);
            }
            if std::mem::take(&mut self.accept_more) {
                self.accept();
            }
            let now = Instant::now();
            if self.accept_paused_until.is_some_and(|t| t <= now) {
                self.accept_paused_until = None;
                self.accept();
            }
            self.expire(now);
        }
    }

    /// The earliest instant something must be done without an event.
    fn next_deadline(&self) -> Option<Instant> {
        let conns = self.conns.iter().filter_map(|(_, c)| self.deadline(c));
        conns.chain(self.accept_paused_until).min()
    }

    /// When `c`'s phase times out (never, if that is past the clock's end).
    fn deadline(&self, c: &Conn) -> Option<Instant> {
        c.since.checked_add(match c.phase {
            Phase::Reading | Phase::Closing => self.limits.read_timeout,
            Phase::Writing => self.limits.write_timeout,
        })
    }

    /// Closes the connections past their phase's deadline. One with part of
    /// a head is told 408 if its socket takes it at once.
    fn expire(&mut self, now: Instant) {
        let late: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| self.deadline(c).is_some_and(|d| now >= d))
            .map(|(k, _)| k)
            .collect();
        for key in late {
            let c = &mut self.conns[key];
            if c.phase == Phase::Reading && c.filled > 0 {
                let _ = c.stream.write(&response(408, "request timeout\n"));
            }
            tracing::debug!(phase = ?c.phase, "a /metrics connection timed out");
            bump(&self.counters.timeouts);
            self.close(key);
        }
    }

    fn accept(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    bump(&self.counters.connections);
                    self.admit(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // About one connection: it is gone, the next may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionAborted
                            | ErrorKind::ConnectionReset
                            | ErrorKind::Interrupted
                            | ErrorKind::NotConnected
                            | ErrorKind::HostUnreachable
                            | ErrorKind::NetworkUnreachable
                            | ErrorKind::NetworkDown
                    ) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the /metrics server cannot accept; it retries in 100 ms");
                    bump(&self.counters.accept_errors);
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
        // The listener is edge-triggered: what is left in the backlog is
        // taken next turn, after the connections have had theirs.
        self.accept_more = true;
    }

    fn admit(&mut self, mut stream: TcpStream) {
        if self.conns.len() >= self.limits.max_connections {
            let oldest = self
                .conns
                .iter()
                .min_by_key(|(_, c)| c.since)
                .map(|(k, _)| k);
            if let Some(k) = oldest {
                tracing::debug!("a /metrics connection is closed to admit a new one");
                bump(&self.counters.evictions);
                self.close(k);
            }
        }
        let _ = stream.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key() + FIRST_CONN);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(error = %e, "a /metrics connection could not be registered");
            return;
        }
        let key = entry.key();
        entry.insert(Conn {
            stream,
            input: vec![0; self.limits.max_head_bytes].into_boxed_slice(),
            filled: 0,
            output: Vec::new(),
            written: 0,
            close_after: false,
            phase: Phase::Reading,
            since: Instant::now(),
        });
        // Its request is likely here already: answer it before a burst of
        // newer connections can evict this one.
        self.drive(key);
    }

    fn close(&mut self, key: usize) {
        let mut c = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut c.stream);
    }

    fn drive(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        match c.turn(&mut self.render, &self.counters) {
            Turn::Wait => {}
            Turn::Again => self.ready.push(key),
            Turn::Close => self.close(key),
        }
    }
}

impl Conn {
    /// Writes what is left of the response, then reads and answers at most
    /// one request, until the socket would block. The socket is
    /// edge-triggered: every path that waits has seen `WouldBlock`, or
    /// returns `Again` to be driven again.
    fn turn(&mut self, render: &mut Render, counters: &Counters) -> Turn {
        let mut answered = false;
        loop {
            if self.phase == Phase::Closing {
                return self.linger();
            }
            if self.written < self.output.len() {
                match self.stream.write(&self.output[self.written..]) {
                    Ok(0) => return Turn::Close,
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Turn::Wait,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Turn::Close,
                }
                continue;
            }
            if self.phase == Phase::Writing {
                // The response is out: free it, and wait for the next request.
                self.output = Vec::new();
                self.written = 0;
                if self.close_after {
                    let _ = self.stream.shutdown(std::net::Shutdown::Write);
                    self.phase = Phase::Closing;
                    self.since = Instant::now();
                    self.filled = 0;
                    return self.linger();
                }
                self.phase = Phase::Reading;
                self.since = Instant::now();
                if answered {
                    return Turn::Again;
                }
            }
            match request::parse(&self.input[..self.filled]) {
                Parsed::Complete { request, len } => {
                    let (output, keep) = answer(&request, || render(counters.get()));
                    self.respond(output, !keep);
                    self.input.copy_within(len..self.filled, 0);
                    self.filled -= len;
                    answered = true;
                }
                Parsed::Invalid(status) => {
                    bump(&counters.bad_requests);
                    self.respond(response(status, "bad request\n"), true);
                    answered = true;
                }
                Parsed::Partial if self.filled == self.input.len() => {
                    bump(&counters.bad_requests);
                    let body = "request head too large\n";
                    self.respond(response(431, body), true);
                    answered = true;
                }
                Parsed::Partial => match self.stream.read(&mut self.input[self.filled..]) {
                    Ok(0) => return Turn::Close,
                    Ok(n) => self.filled += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Turn::Wait,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Turn::Close,
                },
            }
        }
    }

    /// After a last response: the write side is shut (the peer reads the
    /// response, then its end), and what the peer still sends is read and
    /// dropped until it closes too, for at most `LINGER_BYTES` or the read
    /// timeout. Closing at once with input unread would make the kernel
    /// send a reset, which can destroy the response before the peer has
    /// read it (a 431 to a request still being sent, most of all).
    fn linger(&mut self) -> Turn {
        let mut sink = [0; 4096];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return Turn::Close,
                Ok(n) => {
                    self.filled += n;
                    if self.filled >= LINGER_BYTES {
                        return Turn::Close;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Turn::Wait,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Turn::Close,
            }
        }
    }

    fn respond(&mut self, output: Vec<u8>, close: bool) {
        self.output = output;
        self.written = 0;
        self.close_after = close;
        self.phase = Phase::Writing;
        self.since = Instant::now();
    }
}
