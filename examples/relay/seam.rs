//! The seam between the relay and a runtime: a stream that reads and
//! writes through `&self`, and the two connection loops written once over
//! it. Sprint's and tokio's streams implement it.

use crate::core::{Next, Relay};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

/// A connected stream.
pub trait Stream: 'static {
    /// Reads some bytes; 0 at the end.
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
    /// The runtime's timer (a publisher waiting for room re-checks the
    /// slow-subscriber grace with it).
    fn sleep(d: Duration) -> impl Future<Output = ()>;
}

impl Stream for sprint::net::TcpStream {
    fn read(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<usize>> {
        sprint::net::TcpStream::read(self, buf)
    }
    fn write_all(&self, buf: &[u8]) -> impl Future<Output = io::Result<()>> {
        sprint::net::TcpStream::write_all(self, buf)
    }
    fn sleep(d: Duration) -> impl Future<Output = ()> {
        sprint::time::sleep(d)
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
    fn sleep(d: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(d)
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
async fn yield_once() {
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
fn now() -> u64 {
    sprint::metrics::now_raw()
}

/// Serves one publisher until it closes, fails, or sends a malformed
/// frame (counted, and the connection is closed).
pub async fn publisher<S: Stream>(relay: Rc<RefCell<Relay>>, s: S) {
    let max = relay.borrow().config().max_payload + crate::wire::HEADER;
    let mut buf = vec![0u8; (64 << 10).max(max)];
    crate::core::prefault(&mut buf);
    let mut have = 0;
    loop {
        // At most 64 KiB a read (the buffer holds the largest frame): one
        // read's frames must fit the subscribers' queues.
        let end = (have + (64 << 10)).min(buf.len());
        // Backpressure: while the relay is behind its subscribers, leave
        // the data in the socket. Looks again when a queue drains, and a
        // quarter of the slow-subscriber grace apart when none does.
        if !relay.borrow_mut().room(now()) {
            let nap = relay.borrow().config().slow_after / 4;
            let mut timer = std::pin::pin!(S::sleep(nap));
            poll_fn(|cx| loop {
                if relay.borrow_mut().poll_room(cx.waker(), now()) {
                    return Poll::Ready(());
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                timer.set(S::sleep(nap));
            })
            .await;
        }
        let n = match s.read(&mut buf[have..end]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        let taken = relay.borrow_mut().take(&buf[..have], now());
        match taken {
            Ok(used) => {
                buf.copy_within(used..have, 0);
                have -= used;
            }
            Err(_) => return,
        }
        // Let the subscribers' writers drain what this read queued before
        // reading more: a burst from one publisher must not overflow the
        // queues of subscribers that keep up.
        yield_once().await;
    }
}

/// Serves one subscriber: drains its queue to its socket, many frames per
/// write when they have piled up, until it is dropped or fails.
pub async fn subscriber<S: Stream>(relay: Rc<RefCell<Relay>>, s: S) {
    let id = relay.borrow_mut().subscribe();
    let mut out = Out {
        buf: vec![0u8; 64 << 10].into_boxed_slice(),
        len: 0,
    };
    crate::core::prefault(&mut out.buf);
    loop {
        let next = poll_fn(
            |cx| match relay.borrow_mut().next(id, &mut out.buf, cx.waker()) {
                Next::Wait => Poll::Pending,
                n => Poll::Ready(n),
            },
        )
        .await;
        let n = match next {
            Next::Write(n) => n,
            Next::Closed | Next::Wait => break,
        };
        out.len = n;
        let (r, o) = s.write_out(out).await;
        out = o;
        if r.is_err() {
            break;
        }
        relay.borrow_mut().written(id, n, now());
    }
    relay.borrow_mut().unsubscribe(id);
}
