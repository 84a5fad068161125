//! The epoll driver, through mio.
//!
//! One `mio::Poll` per worker. A registered socket gets a slot in the
//! driver's slab (its mio token is the slot index with a generation), whose
//! `ScheduledIo` the dispatch loop updates. The slab sits behind a mutex
//! because a socket may be dropped on another thread (a `Send` stream that
//! moved); the worker takes it once per turn, uncontended. A `mio::Waker`
//! (an eventfd) interrupts a waiting turn.

use crate::buf::{BufferPool, POOL_BUFFERS, POOL_BUFFER_SIZE};
use crate::readiness::{ScheduledIo, READABLE, READ_CLOSED, WRITABLE, WRITE_CLOSED};
use mio::event::Source;
use mio::{Events, Interest, Poll, Registry, Token};
use parking_lot::Mutex;
use slab::Slab;
use sprint_core::driver::{Driver, Unpark};
use std::any::Any;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Slot tokens are a slab key and a 31-bit generation below bit 63.
const WAKER: Token = Token(1 << 63);
const GEN_SHIFT: u32 = 32;

/// What sockets need from a worker's driver, from any thread.
#[derive(Debug)]
pub struct EpollHandle {
    registry: Registry,
    slots: Mutex<Slots>,
    /// Sources registered now: with none, a non-blocking turn has nothing
    /// to find and skips its system call.
    count: AtomicUsize,
    pool: BufferPool,
    /// Where operations record their latency (`None`: metrics off).
    pub(crate) io_latency: Option<Arc<sprint_core::metrics::WorkerMetrics>>,
}

#[derive(Debug, Default)]
struct Slots {
    entries: Slab<(u32, Arc<ScheduledIo>)>,
    generation: u32,
}

impl EpollHandle {
    fn registered(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// This driver's buffer pool.
    pub(crate) fn pool(&self) -> &BufferPool {
        &self.pool
    }
}

pub(crate) use crate::driver_slot::Slot;

impl EpollHandle {
    /// Registers `source` for reading and writing.
    pub(crate) fn register(&self, source: &mut impl Source) -> io::Result<Slot> {
        let io = Arc::new(ScheduledIo::default());
        let token = {
            let mut s = self.slots.lock();
            s.generation = s.generation.wrapping_add(1) & 0x7fff_ffff;
            let gen = s.generation;
            let key = s.entries.insert((gen, io.clone()));
            Token(key | ((gen as usize) << GEN_SHIFT))
        };
        self.count.fetch_add(1, Relaxed);
        if let Err(e) =
            self.registry
                .register(source, token, Interest::READABLE | Interest::WRITABLE)
        {
            self.slots
                .lock()
                .entries
                .remove(token.0 & ((1 << GEN_SHIFT) - 1));
            self.count.fetch_sub(1, Relaxed);
            return Err(e);
        }
        Ok(Slot { io, token: token.0 })
    }

    /// Deregisters `source` and frees its slot.
    pub(crate) fn deregister(&self, source: &mut impl Source, slot: &Slot) {
        let _ = self.registry.deregister(source);
        let key = slot.token & ((1 << GEN_SHIFT) - 1);
        let mut s = self.slots.lock();
        if matches!(s.entries.get(key), Some((g, _)) if (*g as usize) == slot.token >> GEN_SHIFT) {
            s.entries.remove(key);
            self.count.fetch_sub(1, Relaxed);
        }
        drop(s);
        slot.io.shutdown();
    }
}

/// One worker's epoll driver.
#[derive(Debug)]
pub struct EpollDriver {
    poll: Poll,
    events: Events,
    handle: Arc<EpollHandle>,
    waker: Arc<EpollWaker>,
    ready: Vec<(Arc<ScheduledIo>, usize)>,
    describe: String,
}

#[derive(Debug)]
struct EpollWaker(mio::Waker);

impl Unpark for EpollWaker {
    fn unpark(&self) {
        if let Err(e) = self.0.wake() {
            tracing::error!(error = %e, "cannot wake an epoll driver");
        }
    }
}

impl EpollDriver {
    /// A new driver with room for `events` events per turn; `note` goes
    /// into the start-up report (why this is not io_uring, if it is not).
    pub fn new(
        events: usize,
        note: Option<&str>,
        arena: Option<&Arc<sprint_alloc::Arena>>,
        io_latency: Option<Arc<sprint_core::metrics::WorkerMetrics>>,
    ) -> io::Result<EpollDriver> {
        let (pool, from) = BufferPool::new_in(arena, POOL_BUFFERS, POOL_BUFFER_SIZE)?;
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(EpollWaker(mio::Waker::new(poll.registry(), WAKER)?));
        Ok(EpollDriver {
            poll,
            events: Events::with_capacity(events),
            handle: Arc::new(EpollHandle {
                registry,
                slots: Mutex::new(Slots::default()),
                count: AtomicUsize::new(0),
                pool,
                io_latency,
            }),
            waker,
            ready: Vec::with_capacity(events),
            describe: match note {
                Some(n) => format!("epoll (mio, pool from {from}); {n}"),
                None => format!("epoll (mio, pool from {from})"),
            },
        })
    }

    /// The handle sockets register with.
    pub fn epoll_handle(&self) -> Arc<EpollHandle> {
        self.handle.clone()
    }
}

impl Driver for EpollDriver {
    fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) && self.handle.registered() == 0 {
            // Nothing can be ready; a pending unpark stays in the eventfd
            // and ends the next blocking turn at once.
            return Ok(());
        }
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        if self.events.is_empty() {
            return Ok(());
        }
        {
            let slots = self.handle.slots.lock();
            for ev in self.events.iter() {
                let token = ev.token();
                if token == WAKER {
                    continue;
                }
                let key = token.0 & ((1 << GEN_SHIFT) - 1);
                let Some((gen, io)) = slots.entries.get(key) else {
                    continue;
                };
                if (*gen as usize) != token.0 >> GEN_SHIFT {
                    continue;
                }
                let mut bits = 0;
                if ev.is_readable() {
                    bits |= READABLE;
                }
                if ev.is_writable() {
                    bits |= WRITABLE;
                }
                if ev.is_read_closed() {
                    bits |= READ_CLOSED;
                }
                if ev.is_write_closed() {
                    bits |= WRITE_CLOSED;
                }
                if ev.is_error() {
                    bits |= READABLE | WRITABLE;
                }
                self.ready.push((io.clone(), bits));
            }
        }
        // Wake outside the slab lock: a waker may drop a socket.
        for (io, bits) in self.ready.drain(..) {
            io.dispatch(bits);
        }
        Ok(())
    }

    fn unparker(&self) -> Arc<dyn Unpark> {
        self.waker.clone()
    }

    fn handle(&self) -> Arc<dyn Any + Send + Sync> {
        self.handle.clone()
    }

    fn name(&self) -> &'static str {
        "epoll"
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
