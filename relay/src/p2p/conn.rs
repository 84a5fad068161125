//! A peer's connection over the runtime seam (`seam.rs`), written once
//! for Sprint, tokio, monoio and glommio: an accept loop for inbound
//! peers, a connect loop per `--connect` address (reconnecting with a
//! doubling wait when the peer goes), and per connection three loops
//! raced in one task — read (input handled in order, paused while the
//! peer's queue is full), write (what was queued since the last write, in
//! one write), and timers (handshake timeout, ping). The first to end
//! ends the connection.

use super::node::PeerId;
use crate::core::Relay;
use crate::seam::{self, Listener, Stream};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::FromRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Bytes a peer's read buffer starts at (it grows to the largest message
/// in progress, within its command's limit, and shrinks back when
/// empty).
const READ: usize = 16 << 10;

/// The longest wait between reconnections.
const RECONNECT_MAX: Duration = Duration::from_secs(60);

/// A connection that lasted this long resets the reconnection wait.
const LASTED: Duration = Duration::from_secs(10);

/// The remote address of a connected stream.
fn peer_addr<S: Stream>(s: &S) -> SocketAddr {
    // SAFETY: the descriptor is the stream's, open while `s` lives (it
    // outlives this call); `ManuallyDrop` never closes it, so the std
    // stream only borrows it for `peer_addr`.
    let std = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(s.as_raw_fd()) });
    std.peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Accepts inbound peers until dropped; failures are counted and waited
/// out as the relay's other accept loops do (`seam::accept_loop`).
pub async fn accept_loop<L: Listener>(relay: Rc<RefCell<Relay>>, l: L) {
    let mut wait = None;
    loop {
        match l.accept().await {
            Ok(s) => {
                wait = None;
                let id = relay.borrow_mut().peer_open(peer_addr(&s), true);
                if let Some(id) = id {
                    L::Stream::spawn(peer(relay.clone(), s, id));
                }
            }
            Err(e) => {
                relay.borrow_mut().counters.accept_errors += 1;
                if !seam::about_the_process(&e) {
                    continue;
                }
                let d = match wait {
                    None => {
                        eprintln!("relay: accepting peers: {e}; backing off");
                        seam::BACKOFF.0
                    }
                    Some(d) => seam::BACKOFF.1.min(d * 2),
                };
                wait = Some(d);
                L::Stream::sleep(d).await;
            }
        }
    }
}

/// Keeps a connection to the peer at `addr` until dropped: connects,
/// serves it until it goes, and connects again after `reconnect_after`,
/// doubling on each failure up to a minute (back to the first wait after
/// a connection that lasted).
pub async fn connect_loop<S: Stream>(relay: Rc<RefCell<Relay>>, addr: SocketAddr) {
    let first = relay.borrow().p2p.cfg.reconnect_after;
    let mut wait = first;
    loop {
        match S::connect(addr).await {
            Ok(s) => {
                let id = relay.borrow_mut().peer_open(addr, false);
                if let Some(id) = id {
                    let start = Instant::now();
                    peer(relay.clone(), s, id).await;
                    if start.elapsed() >= LASTED {
                        wait = first;
                    }
                }
            }
            Err(_) => relay.borrow_mut().counters.p2p.connect_failures += 1,
        }
        S::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

/// Serves one peer until it goes (closes, fails, misbehaves, times out),
/// then forgets it.
pub async fn peer<S: Stream>(relay: Rc<RefCell<Relay>>, s: S, id: PeerId) {
    {
        let read = pin!(read_loop(&relay, &s, id));
        let write = pin!(write_loop(&relay, &s, id));
        let timers = pin!(tick_loop::<S>(&relay, id));
        let mut all = (read, write, timers);
        poll_fn(|cx| {
            if all.0.as_mut().poll(cx).is_ready()
                || all.1.as_mut().poll(cx).is_ready()
                || all.2.as_mut().poll(cx).is_ready()
            {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
    relay.borrow_mut().peer_close(id);
}

/// Reads and handles the peer's input until it closes or is let go.
async fn read_loop<S: Stream>(relay: &RefCell<Relay>, s: &S, id: PeerId) {
    let mut buf = vec![0u8; READ];
    let mut have = 0;
    loop {
        // While its queue is full its requests wait in TCP.
        poll_fn(|cx| {
            if relay.borrow_mut().p2p.room(id, cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        if have == buf.len() {
            buf.resize(2 * buf.len(), 0);
        }
        let n = match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        let input = relay.borrow_mut().peer_input(id, &buf[..have], seam::now());
        let Ok(input) = input else { return };
        buf.copy_within(input.used..have, 0);
        have -= input.used;
        if input.need > buf.len() {
            // Within the command's limit, checked with its header.
            buf.resize(input.need, 0);
        } else if have == 0 && buf.len() > READ {
            buf.truncate(READ);
            buf.shrink_to_fit();
        }
        // Let the writers send what this input queued.
        seam::yield_once().await;
    }
}

/// Writes what is queued to the peer, everything queued since the last
/// write in one, until it is let go or a write fails.
async fn write_loop<S: Stream>(relay: &RefCell<Relay>, s: &S, id: PeerId) {
    let mut spare = Vec::new();
    loop {
        let more = poll_fn(
            |cx| match relay.borrow_mut().peer_next(id, &mut spare, cx.waker()) {
                Some(true) => Poll::Ready(true),
                Some(false) => Poll::Pending,
                None => Poll::Ready(false),
            },
        )
        .await;
        if !more || s.write_all(&spare).await.is_err() {
            return;
        }
        relay.borrow_mut().peer_wrote(id);
        spare.clear();
        if spare.capacity() > 4 * READ {
            spare.shrink_to(READ);
        }
    }
}

/// Looks at the peer's timers until it is gone.
async fn tick_loop<S: Stream>(relay: &RefCell<Relay>, id: PeerId) {
    let period = relay.borrow().p2p.tick_period();
    loop {
        S::sleep(period).await;
        if !relay.borrow_mut().peer_tick(id, Instant::now()) {
            return;
        }
    }
}
