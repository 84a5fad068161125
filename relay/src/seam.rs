//! The seam between the relay and a runtime: a stream that reads and
//! writes through `&self` (with the runtime's timer and spawn beside it),
//! a listener, and the connection loops written once over them. Sprint's
//! types implement it, tokio's with the `tokio` feature, and monoio's and
//! glommio's with theirs (`seam/on_monoio.rs`, `seam/on_glommio.rs`).

use crate::core::{Next, PubId, Relay, SubId};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

#[cfg(feature = "glommio")]
mod on_glommio;
#[cfg(feature = "monoio")]
mod on_monoio;
#[cfg(feature = "glommio")]
pub use on_glommio::{GlommioListener, GlommioStream};
#[cfg(feature = "monoio")]
pub use on_monoio::{MonoioListener, MonoioStream};

/// A connected stream, and the runtime it runs on.
pub trait Stream: std::os::fd::AsRawFd + 'static {
    /// Reads some bytes; 0 at the end. Dropping the future loses nothing.
    fn read(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>>;
    /// Writes all of `buf`.
    fn write_all(&self, buf: &[u8]) -> impl Future<Output = io::Result<()>>;
    /// Writes the first `out.len` bytes of `out` and gives it back. By
    /// default through [`Stream::write_all`].
    fn write_out(&self, out: Out) -> impl Future<Output = (io::Result<()>, Out)> {
        async move {
            let r = self.write_all(&out.buf[..out.len]).await;
            (r, out)
        }
    }
    /// Connects to `addr` (Nagle off): the relay's outbound P2P peers.
    fn connect(addr: std::net::SocketAddr) -> impl Future<Output = io::Result<Self>>
    where
        Self: Sized;
    /// The runtime's timer.
    fn sleep(d: Duration) -> impl Future<Output = ()>;
    /// Runs `f` on this thread, beside the caller.
    fn spawn(f: impl Future<Output = ()> + 'static);
}

/// A listening socket.
pub trait Listener: 'static {
    /// What it accepts.
    type Stream: Stream;
    /// The next connection (with Nagle off).
    fn accept(&self) -> impl Future<Output = io::Result<Self::Stream>>;
}

impl Stream for sprint::net::TcpStream {
    fn read(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> {
        sprint::net::TcpStream::read(self, buf)
    }
    fn write_all(&self, buf: &[u8]) -> impl Future<Output = io::Result<()>> {
        sprint::net::TcpStream::write_all(self, buf)
    }
    async fn connect(addr: std::net::SocketAddr) -> io::Result<Self> {
        let s = sprint::net::TcpStream::connect(addr).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
    fn sleep(d: Duration) -> impl Future<Output = ()> {
        sprint::time::sleep(d)
    }
    fn spawn(f: impl Future<Output = ()> + 'static) {
        sprint::spawn_local(f);
    }
    /// Sends from the subscriber's own buffer, up to its 64 KiB in one
    /// operation. A borrowed write is copied into a 16 KiB pool buffer and
    /// sent behind, one send in flight per stream, which capped each
    /// subscriber at 16 KiB per worker turn: on io_uring the relay fell
    /// behind at 130k/s where epoll kept up.
    async fn write_out(&self, mut out: Out) -> (io::Result<()>, Out) {
        loop {
            let (r, o) = self.write_owned(out).await;
            out = o;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), out),
                Ok(n) if n >= out.len => return (Ok(()), out),
                Ok(n) => {
                    out.buf.copy_within(n..out.len, 0);
                    out.len -= n;
                }
                Err(e) => return (Err(e), out),
            }
        }
    }
}

impl Listener for sprint::net::TcpListener {
    type Stream = sprint::net::TcpStream;
    async fn accept(&self) -> io::Result<sprint::net::TcpStream> {
        let (s, _) = sprint::net::TcpListener::accept(self).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

#[cfg(feature = "tokio")]
impl Stream for tokio::net::TcpStream {
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.readable().await?;
            match self.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
    async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            self.writable().await?;
            match self.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    async fn connect(addr: std::net::SocketAddr) -> io::Result<Self> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
    fn sleep(d: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(d)
    }
    fn spawn(f: impl Future<Output = ()> + 'static) {
        tokio::task::spawn_local(f);
    }
}

#[cfg(feature = "tokio")]
impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<tokio::net::TcpStream> {
        let (s, _) = tokio::net::TcpListener::accept(self).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

/// A subscriber's write buffer: its first `len` bytes are what to send.
#[derive(Debug)]
pub struct Out {
    buf: Box<[u8]>,
    len: usize,
}

// SAFETY: the pointer is the boxed slice's, which never moves while the
// `Out` lives (moving the `Out` moves only the box's pointer), and `len`
// never exceeds the slice.
unsafe impl sprint::buf::IoBuf for Out {
    fn stable_ptr(&self) -> *const u8 {
        self.buf.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
}

/// Gives the other tasks of this thread a turn (any runtime): pending
/// once, woken at once.
pub(crate) async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// The clock the relay stamps frames with (Sprint's cycle counter).
pub(crate) fn now() -> u64 {
    sprint::metrics::now_raw()
}

/// Polls `a`, then `b`: `Some` with `a`'s output, `None` once `b` is done.
pub(crate) async fn unless<A: Future, B: Future>(
    mut a: std::pin::Pin<&mut A>,
    mut b: std::pin::Pin<&mut B>,
) -> Option<A::Output> {
    poll_fn(|cx| {
        if let Poll::Ready(r) = a.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        if b.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// Which connections a listener takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Publishers.
    Publishers,
    /// Subscribers.
    Subscribers,
}

/// The first and the longest wait of an accept loop after an error.
pub(crate) const BACKOFF: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(1));

/// Whether a failed accept is about the process (out of descriptors or
/// memory: waiting helps) rather than about one connection.
pub(crate) fn about_the_process(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts connections for `role` until dropped. A failed accept (a peer
/// gone before it was accepted, too many open files, no memory) is
/// counted; one about the process (EMFILE, ENFILE, ENOBUFS, ENOMEM) is
/// logged once per run of failures and the loop waits (10 ms, doubling
/// up to 1 s, back to 10 ms after a success); either way it goes on: a
/// listener never dies of one connection or of a passing shortage.
/// Connections over the cap are closed at once (counted).
pub async fn accept_loop<L: Listener>(relay: Rc<RefCell<Relay>>, l: L, role: Role) {
    let mut wait = None;
    loop {
        match l.accept().await {
            Ok(s) => {
                wait = None;
                match role {
                    Role::Publishers => {
                        let id = relay.borrow_mut().publish();
                        if let Some(id) = id {
                            L::Stream::spawn(publisher(relay.clone(), s, id));
                        }
                    }
                    Role::Subscribers => {
                        let id = relay.borrow_mut().subscribe(now());
                        if let Some(id) = id {
                            L::Stream::spawn(subscriber(relay.clone(), s, id));
                        }
                    }
                }
            }
            Err(e) => {
                relay.borrow_mut().counters.accept_errors += 1;
                if !about_the_process(&e) {
                    // One connection's failure (gone before it was
                    // accepted): the next one is unaffected.
                    continue;
                }
                let d = match wait {
                    None => {
                        eprintln!("relay: accepting {role:?}: {e}; backing off");
                        BACKOFF.0
                    }
                    Some(d) => BACKOFF.1.min(d * 2),
                };
                wait = Some(d);
                L::Stream::sleep(d).await;
            }
        }
    }
}

/// Gives back idle memory every half `trim_after` (10 ms to 1 s) and
/// samples the process's memory (see [`crate::server::Memory`]).
pub async fn housekeeping<S: Stream>(relay: Rc<RefCell<Relay>>, memory: crate::server::Memory) {
    let period = (relay.borrow().config().trim_after / 2)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut memory = memory;
    loop {
        S::sleep(period).await;
        let mut r = relay.borrow_mut();
        r.trim(now());
        memory.sample(&mut r.counters);
    }
}

/// Why a publisher's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// It closed or failed, or sent a malformed frame (counted).
    Gone,
    /// No whole frame within `publisher_idle`.
    Idle,
    /// A frame slower than `min_frame_rate`.
    SlowFrame,
}

/// Serves one publisher until it closes, fails, sends a malformed frame,
/// stays idle or sends too slowly (each counted), and closes it.
pub async fn publisher<S: Stream>(relay: Rc<RefCell<Relay>>, s: S, id: PubId) {
    let ended = serve_publisher(&relay, &s, id).await;
    let mut r = relay.borrow_mut();
    match ended {
        Ended::Gone => {}
        Ended::Idle => r.counters.idle_publishers += 1,
        Ended::SlowFrame => r.counters.slow_publishers += 1,
    }
    r.unpublish(id);
}

/// Bytes a publisher reads at most at once: one read's frames must fit
/// the subscribers' queues.
const READ: usize = 64 << 10;

async fn serve_publisher<S: Stream>(relay: &RefCell<Relay>, s: &S, id: PubId) -> Ended {
    let cfg = relay.borrow().config().clone();
    let most = cfg.max_payload + crate::wire::HEADER + READ;
    // The buffer is allocated when data comes and freed after
    // `trim_after` without any: an idle publisher reads into `small`.
    let mut buf: Vec<u8> = Vec::new();
    let mut small = [0u8; 256];
    let mut have = 0;
    let start = Instant::now();
    // When the last whole frame came (or the connection), when the frame
    // in progress began and its size as far as known, and when data last
    // came.
    let (mut last_frame, mut frame_start, mut pending, mut last_data) = (start, start, 0, start);
    // One timer for the deadlines, re-armed when it fires or when a
    // deadline comes before it: about once per deadline, not per read.
    let mut timer = pin!(S::sleep(cfg.publisher_idle));
    let mut armed = Some(start + cfg.publisher_idle);
    loop {
        // Backpressure: while this publisher has its share of a queue
        // that is over half full, leave its data in the socket. Looks
        // again when a queue drains, and a quarter of the slow-subscriber
        // grace apart when none does. Its deadlines wait meanwhile.
        if !relay.borrow_mut().room(id, now()) {
            let paused = Instant::now();
            let nap = cfg.slow_after / 4;
            let mut nap_timer = pin!(S::sleep(nap));
            poll_fn(|cx| loop {
                if relay.borrow_mut().poll_room(id, cx.waker(), now()) {
                    return Poll::Ready(());
                }
                if nap_timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                nap_timer.set(S::sleep(nap));
            })
            .await;
            let d = paused.elapsed();
            last_frame += d;
            frame_start += d;
            last_data += d;
        }
        let close_at = if have == 0 {
            last_frame + cfg.publisher_idle
        } else {
            frame_start + cfg.frame_deadline(pending)
        };
        let trim_at = (have == 0 && buf.capacity() > 0).then(|| last_data + cfg.trim_after);
        let wake_at = trim_at.map_or(close_at, |t| t.min(close_at));
        // Re-armed early only for a deadline that closes, or a trim more
        // than a trim period early: not on every read.
        let early = |at: Instant| {
            armed.is_none_or(|a| at < a && (at == close_at || at + cfg.trim_after < a))
        };
        if early(wake_at) {
            timer.set(S::sleep(wake_at.saturating_duration_since(Instant::now())));
            armed = Some(wake_at);
        }
        let into_small = buf.is_empty();
        if !into_small && buf.len() < have + READ {
            let size = (have + READ).next_power_of_two().min(most).max(have + READ);
            buf.resize(size, 0);
        }
        let got = {
            let dst = if into_small {
                &mut small[..]
            } else {
                &mut buf[have..have + READ]
            };
            let read = pin!(s.read(dst));
            unless(read, timer.as_mut()).await
        };
        let n = match got {
            None => {
                // The timer fired: a deadline passed, or the buffer has
                // been idle long enough to give back.
                armed = None;
                let t = Instant::now();
                if t >= close_at {
                    return if have == 0 {
                        Ended::Idle
                    } else {
                        Ended::SlowFrame
                    };
                }
                if have == 0 && t >= last_data + cfg.trim_after {
                    buf = Vec::new();
                }
                continue;
            }
            Some(Ok(0) | Err(_)) => return Ended::Gone,
            Some(Ok(n)) => n,
        };
        let t = Instant::now();
        last_data = t;
        if into_small {
            buf.resize(READ.max(n), 0);
            buf[..n].copy_from_slice(&small[..n]);
        }
        let fresh = have == 0;
        have += n;
        let taken = relay.borrow_mut().take(id, &buf[..have], now());
        let Ok(taken) = taken else {
            return Ended::Gone;
        };
        buf.copy_within(taken.used..have, 0);
        have -= taken.used;
        if taken.frames > 0 {
            last_frame = t;
        }
        if have > 0 && (fresh || taken.frames > 0) {
            frame_start = t;
        }
        pending = taken.pending;
        // Let the subscribers' writers drain what this read queued before
        // reading more: a burst from one publisher must not overflow the
        // queues of subscribers that keep up.
        yield_once().await;
    }
}

/// Serves one subscriber: drains its queue to its socket, many frames per
/// write when they have piled up, until it is dropped or fails. Its read
/// side is watched all along: a subscriber sends nothing, so the end of
/// its stream, a reset or any data means it is gone, and it is freed at
/// once (not when a write to it fails, which may be never).
pub async fn subscriber<S: Stream>(relay: Rc<RefCell<Relay>>, s: S, id: SubId) {
    let hung_up = serve_subscriber(&relay, &s, id).await;
    relay.borrow_mut().unsubscribe(id, hung_up);
}

/// The kernel's send buffer for a subscriber's socket (Linux doubles it
/// for its bookkeeping). The subscriber's queue is the relay's buffer;
/// the kernel's only has to cover the path. Left to autotuning it grows
/// to `tcp_wmem`'s maximum (4 MiB here), and a full buffer is reported
/// writable again only once a third of it has drained: a subscriber
/// reading 2 MB/s then completed no write for 650 ms at a time, was
/// taken as slow (less than half a queue sent in `slow_after`), and a
/// flood from one publisher got it dropped or skipped. With 256 KiB the
/// pause is about 40 ms at that rate; the memory the kernel holds per
/// subscriber is bounded too.
const SEND_BUFFER: usize = 128 << 10;

/// Sets `SO_SNDBUF` (best effort: an error leaves autotuning on).
fn limit_send_buffer<S: Stream>(s: &S, bytes: usize) {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is the stream's, open while `s` lives; the
    // option value is a c_int that lives across the call.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// True if the peer hung up.
async fn serve_subscriber<S: Stream>(relay: &RefCell<Relay>, s: &S, id: SubId) -> bool {
    limit_send_buffer(s, SEND_BUFFER);
    let mut probe = [0u8; 1];
    let mut watch = pin!(s.read(&mut probe));
    // A write buffer lent by the relay while there is something to send.
    let mut lent: Option<Box<[u8]>> = None;
    let hung_up = loop {
        let next = poll_fn(
            |cx| match relay.borrow_mut().next(id, &mut lent, cx.waker()) {
                Next::Wait => Poll::Pending,
                n => Poll::Ready(n),
            },
        );
        let Some(next) = unless(pin!(next), watch.as_mut()).await else {
            break true;
        };
        let Next::Write(n) = next else {
            break false;
        };
        let Some(buf) = lent.take() else {
            break false;
        };
        let write = s.write_out(Out { buf, len: n });
        match unless(pin!(write), watch.as_mut()).await {
            None | Some((Err(_), _)) => break true,
            Some((Ok(()), out)) => lent = Some(out.buf),
        }
        relay.borrow_mut().written(id, n, now());
    };
    if let Some(b) = lent {
        relay.borrow_mut().give_back(b);
    }
    hung_up
}
