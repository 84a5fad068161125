//! Running the relay: on one Sprint worker, or (the `tokio` feature) on a
//! tokio current-thread runtime with a `LocalSet`, or (the `monoio` and
//! `glommio` features) on monoio's legacy (epoll) driver or on a glommio
//! executor — the same relay code through the seam — until told to stop.
//! Publishers connect to one address, subscribers to another.

use crate::core::{Counters, Relay, RelayConfig};
use crate::p2p;
use crate::seam::{self, Role};
use crate::shard::{Msg, Shared};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Where the relay listens.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    /// Publishers connect here.
    pub publishers: SocketAddr,
    /// Subscribers connect here.
    pub subscribers: SocketAddr,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The relay's counters.
    pub counters: Counters,
    /// The latency summary, if Sprint's histogram recorded it.
    pub latency: Option<sprint::metrics::Summary>,
    /// On Sprint: a transaction's arrival to its `inv` written to the
    /// last peer it was announced to (on each worker, its own peers).
    pub announce_last_peer: Option<sprint::metrics::Summary>,
    /// On Sprint: a transaction's arrival to its `tx` written to a peer
    /// that asked for it.
    pub tx_served: Option<sprint::metrics::Summary>,
}

/// The process's resident memory in bytes (Linux), or 0. Allocates
/// nothing (it runs beside the allocation-free hot path).
pub fn rss_bytes() -> u64 {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let n = std::fs::File::open("/proc/self/statm")
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    // "size resident shared ...", in pages.
    let pages: u64 = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// The latest memory sample of the relay running in this process, for a
/// live view from another thread (the server binary prints it on
/// SIGUSR1): connections, and resident bytes per connection above the
/// resident size before any connection.
#[derive(Debug)]
pub struct Live {
    /// Publishers and subscribers connected.
    pub connections: AtomicU64,
    /// Resident bytes now.
    pub rss: AtomicU64,
    /// Resident bytes per connection above the start (0 without any).
    pub rss_per_connection: AtomicU64,
}

/// The live sample (one relay per process is what it describes).
pub static LIVE: Live = Live {
    connections: AtomicU64::new(0),
    rss: AtomicU64::new(0),
    rss_per_connection: AtomicU64::new(0),
};

/// Samples the process's resident memory against the connections held:
/// `(rss - rss at start) / connections`, kept at the sample with the most
/// connections, goes into the counters as `rss_per_connection`.
#[derive(Debug)]
pub struct Memory {
    baseline: u64,
    most: u64,
}

impl Memory {
    /// The baseline: taken now, before any connection.
    pub fn start() -> Memory {
        Memory {
            baseline: rss_bytes(),
            most: 0,
        }
    }

    /// Takes a sample into `c` and [`LIVE`].
    pub fn sample(&mut self, c: &mut Counters) {
        let rss = rss_bytes();
        let conns = c.publishers + c.subscribers;
        c.rss_bytes = rss;
        let per = rss.saturating_sub(self.baseline) / conns.max(1);
        if conns > 0 && conns >= self.most {
            self.most = conns;
            c.rss_per_connection = per;
        }
        LIVE.connections.store(conns, Ordering::Relaxed);
        LIVE.rss.store(rss, Ordering::Relaxed);
        LIVE.rss_per_connection
            .store(if conns > 0 { per } else { 0 }, Ordering::Relaxed);
    }
}

/// How another thread stops a running relay and watches it: the relay
/// looks at its stop flag every 10 ms ([`Control::POLL`]) and copies its
/// counters here each time, so a test can wait until they say something
/// (a subscriber registered, a frame read) instead of sleeping. The
/// copy is a lock and a memcpy every 10 ms, nothing per message.
#[derive(Debug, Clone, Default)]
pub struct Control {
    stop: Arc<AtomicBool>,
    /// Each worker's counters, by worker.
    counters: Arc<Mutex<Vec<Counters>>>,
    p2p: Arc<Mutex<Option<SocketAddr>>>,
}

impl Control {
    /// How often the relay looks at its stop flag and copies its counters.
    pub const POLL: Duration = Duration::from_millis(10);

    /// A relay that runs until [`Control::stop`].
    pub fn new() -> Control {
        Control::default()
    }

    /// Asks the relay to stop (it does within [`Control::POLL`]).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// The relay's counters as of at most [`Control::POLL`] ago (all zero
    /// before it starts), summed over its workers.
    pub fn counters(&self) -> Counters {
        let each = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sum = Counters::default();
        for c in each.iter() {
            sum.merge(c);
        }
        sum
    }

    /// Each worker's counters, by worker (one entry off Sprint).
    pub fn per_worker(&self) -> Vec<Counters> {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Where the P2P side listens, once bound (set before `ready` is
    /// called).
    pub fn p2p_addr(&self) -> Option<SocketAddr> {
        *self.p2p.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(any(feature = "tokio", feature = "monoio", feature = "glommio"))]
    fn set_p2p_addr(&self, relay: &RefCell<Relay>, a: SocketAddr) {
        *self.p2p.lock().unwrap_or_else(PoisonError::into_inner) = Some(a);
        relay.borrow_mut().set_p2p_addr(a);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    #[cfg(any(feature = "tokio", feature = "monoio", feature = "glommio"))]
    fn publish(&self, c: Counters) {
        self.publish_worker(0, c);
    }

    fn publish_worker(&self, worker: usize, c: Counters) {
        let mut each = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if each.len() <= worker {
            each.resize(worker + 1, Counters::default());
        }
        each[worker] = c;
    }
}

/// A relay stopped when `stop` is set (by a signal handler, say).
impl From<Arc<AtomicBool>> for Control {
    fn from(stop: Arc<AtomicBool>) -> Control {
        Control {
            stop,
            ..Control::default()
        }
    }
}

/// Copies worker `w`'s counters into `control` every [`Control::POLL`]
/// until it is stopped.
async fn watched_sprint(relay: &RefCell<Relay>, control: &Control, w: usize) {
    loop {
        control.publish_worker(w, relay.borrow().counters);
        if control.stopped() {
            return;
        }
        sprint::time::sleep(Control::POLL).await;
    }
}

/// One worker's listeners, bound before the workers start.
#[derive(Debug)]
struct Listeners {
    publishers: std::net::TcpListener,
    subscribers: std::net::TcpListener,
    peers: Option<std::net::TcpListener>,
}

/// A listening socket on `a`; with `share`, SO_REUSEPORT as well, so that
/// each worker has its own on the same port and the kernel spreads the
/// connections between them.
fn listen(a: SocketAddr, share: bool) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(a), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if share {
        s.set_reuse_port(true)?;
    }
    s.bind(&a.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Every worker's listeners: the first on the addresses asked (port 0
/// picks one), the others on the ports it got.
fn bind_all(n: usize, addrs: Addrs, peers: Option<SocketAddr>) -> std::io::Result<Vec<Listeners>> {
    let mut all: Vec<Listeners> = Vec::with_capacity(n);
    for w in 0..n {
        let (p, s, q) = match all.first() {
            None => (addrs.publishers, addrs.subscribers, peers),
            Some(first) => (
                first.publishers.local_addr()?,
                first.subscribers.local_addr()?,
                first.peers.as_ref().map(|l| l.local_addr()).transpose()?,
            ),
        };
        let named = |what: &str, a: SocketAddr, e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!("binding the {what} listener of worker {w} on {a}: {e}"),
            )
        };
        all.push(Listeners {
            publishers: listen(p, n > 1).map_err(|e| named("publishers'", p, e))?,
            subscribers: listen(s, n > 1).map_err(|e| named("subscribers'", s, e))?,
            peers: q
                .map(|q| listen(q, n > 1).map_err(|e| named("peers'", q, e)))
                .transpose()?,
        });
    }
    Ok(all)
}

/// What the workers share.
#[derive(Clone)]
struct Common {
    cfg: RelayConfig,
    control: Control,
    latency: sprint::metrics::Histogram,
    last_peer: sprint::metrics::Histogram,
    served: sprint::metrics::Histogram,
    mesh: Option<sprint::mesh::Mesh<Msg>>,
    shared: Arc<Shared>,
}

/// The relay on worker `w` of `n`, until `control` says stop.
async fn sprint_worker(w: usize, n: usize, l: Listeners, k: Common) -> std::io::Result<Counters> {
    type S = sprint::net::TcpStream;
    let pubs = sprint::net::TcpListener::from_std(l.publishers)?;
    let subs = sprint::net::TcpListener::from_std(l.subscribers)?;
    let peers = l
        .peers
        .map(sprint::net::TcpListener::from_std)
        .transpose()?;
    let mut cfg = k.cfg;
    // The caps are the process's, shared out; the `--connect` peers are
    // dealt out in turn.
    cfg.max_publishers = cfg.max_publishers.div_ceil(n);
    cfg.max_subscribers = cfg.max_subscribers.div_ceil(n);
    cfg.p2p.max_peers = cfg.p2p.max_peers.div_ceil(n);
    let connect: Vec<SocketAddr> = cfg.p2p.connect.iter().copied().skip(w).step_by(n).collect();
    let relay = Rc::new(RefCell::new(Relay::new(cfg, Some(k.latency))));
    relay
        .borrow_mut()
        .time_peers(k.last_peer.clone(), k.served.clone());
    let memory = Memory::start();
    if let Some(l) = &peers {
        relay.borrow_mut().set_p2p_addr(l.local_addr()?);
    }
    let mut tasks = vec![
        sprint::spawn_local(seam::accept_loop(relay.clone(), pubs, Role::Publishers)),
        sprint::spawn_local(seam::accept_loop(relay.clone(), subs, Role::Subscribers)),
        sprint::spawn_local(seam::housekeeping::<S>(relay.clone(), memory)),
    ];
    if let Some(l) = peers {
        tasks.push(sprint::spawn_local(p2p::conn::accept_loop(
            relay.clone(),
            l,
        )));
    }
    for a in connect {
        tasks.push(sprint::spawn_local(p2p::conn::connect_loop::<S>(
            relay.clone(),
            a,
        )));
    }
    if let Some(mesh) = &k.mesh {
        let (tx, rx) = mesh.join().map_err(std::io::Error::other)?;
        relay.borrow_mut().join_workers(w, k.shared.clone());
        tasks.push(sprint::spawn_local(pump(relay.clone(), tx)));
        tasks.push(sprint::spawn_local(take(relay.clone(), rx)));
    }
    watched_sprint(&relay, &k.control, w).await;
    for t in tasks {
        t.abort();
    }
    let c = relay.borrow().counters;
    Ok(c)
}

/// Sends this worker's messages to the others, in order, waiting for room
/// in a full ring (its publishers wait meanwhile: `shard.rs`).
async fn pump(relay: Rc<RefCell<Relay>>, tx: sprint::mesh::Sender<Msg>) {
    loop {
        let (to, m) = std::future::poll_fn(|cx| match relay.borrow_mut().outgoing(cx.waker()) {
            Some(next) => std::task::Poll::Ready(next),
            None => std::task::Poll::Pending,
        })
        .await;
        if let Err(e) = tx.try_send_to(to, m) {
            if tx.send_to(to, e.message).await.is_err() {
                return;
            }
        }
    }
}

/// Takes the other workers' messages, a turn's worth at a time.
async fn take(relay: Rc<RefCell<Relay>>, rx: sprint::mesh::Receiver<Msg>) {
    while let Some(m) = rx.recv().await {
        deliver(&relay, m).await;
        let mut taken = 0;
        while let Ok(m) = rx.try_recv() {
            deliver(&relay, m).await;
            taken += 1;
            // A turn's worth: the writers that drain what it queued run
            // in between, however fast the other workers send.
            if taken == TURN {
                sprint::yield_now().await;
                taken = 0;
            }
        }
    }
}

/// Messages from other workers taken before the taking task lets the
/// worker's other tasks run.
const TURN: usize = 256;

/// Handles one message from another worker; a transaction waits until it
/// fits the subscribers' queues (see [`Relay::poll_fits`]), and the
/// messages behind it in the ring wait with it.
async fn deliver(relay: &RefCell<Relay>, m: Msg) {
    if let Msg::Deliver(tx) = &m {
        let len = tx.frame.len();
        std::future::poll_fn(|cx| {
            let now = sprint::metrics::now_raw();
            match relay.borrow_mut().poll_fits(len, cx.waker(), now) {
                true => std::task::Poll::Ready(()),
                false => std::task::Poll::Pending,
            }
        })
        .await;
    }
    relay.borrow_mut().mesh(m, sprint::metrics::now_raw());
}

/// Runs the relay on `cfg.workers` workers of `rt` (the first ones) until
/// `control` (or a flag, see [`Control`]'s `From`) says stop; `ready`
/// gets the bound addresses. On one worker it is the single-threaded
/// relay; on more, each worker serves the connections its listeners take
/// and the workers decide together what is new (`shard.rs`).
pub fn run_sprint(
    rt: &sprint::Runtime,
    cfg: RelayConfig,
    addrs: Addrs,
    ready: impl FnOnce(Addrs) + Send + 'static,
    control: impl Into<Control>,
) -> std::io::Result<Finished> {
    let control = control.into();
    let n = cfg.workers.max(1);
    if n > rt.handle().workers() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the relay is asked to run on {n} workers, but the runtime has {}",
                rt.handle().workers()
            ),
        ));
    }
    let latency = sprint::metrics::histogram(
        "relay_latency",
        "Relay latency: a frame's arrival to its write to a subscriber.",
    )
    .map_err(std::io::Error::other)?;
    let last_peer = sprint::metrics::histogram(
        "relay_announce_last_peer",
        "A transaction's arrival to its inv written to the last peer it was announced to (per worker).",
    )
    .map_err(std::io::Error::other)?;
    let served = sprint::metrics::histogram(
        "relay_tx_served",
        "A transaction's arrival to its tx written to a peer that asked for it.",
    )
    .map_err(std::io::Error::other)?;
    let listeners = bind_all(n, addrs, cfg.p2p.listen)?;
    if let Some(l) = &listeners[0].peers {
        *control.p2p.lock().unwrap_or_else(PoisonError::into_inner) = Some(l.local_addr()?);
    }
    ready(Addrs {
        publishers: listeners[0].publishers.local_addr()?,
        subscribers: listeners[0].subscribers.local_addr()?,
    });
    let common = Common {
        cfg,
        control,
        latency: latency.clone(),
        last_peer: last_peer.clone(),
        served: served.clone(),
        mesh: (n > 1).then(|| sprint::mesh::Mesh::new(rt.handle())),
        shared: Shared::new(n),
    };
    let counters = rt.block_on(async move {
        let mut joins = Vec::with_capacity(n);
        for (w, l) in listeners.into_iter().enumerate() {
            let k = common.clone();
            let j = sprint::spawn_local_on(w, move || sprint_worker(w, n, l, k))
                .map_err(std::io::Error::other)?;
            joins.push(j);
        }
        drop(common);
        let mut sum = Counters::default();
        for j in joins {
            let c = j
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))??;
            sum.merge(&c);
        }
        Ok::<_, std::io::Error>(sum)
    })?;
    Ok(Finished {
        counters,
        latency: Some(latency.snapshot().summary()),
        announce_last_peer: Some(last_peer.snapshot().summary()),
        tx_served: Some(served.snapshot().summary()),
    })
}

/// Runs the relay on a tokio current-thread runtime (a `LocalSet`) on
/// this thread until `control` says stop.
#[cfg(feature = "tokio")]
pub fn run_tokio(
    cfg: RelayConfig,
    addrs: Addrs,
    ready: impl FnOnce(Addrs),
    control: impl Into<Control>,
) -> std::io::Result<Finished> {
    let control = control.into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let counters = local.block_on(&rt, async move {
        let pubs = tokio::net::TcpListener::bind(addrs.publishers).await?;
        let subs = tokio::net::TcpListener::bind(addrs.subscribers).await?;
        let peers = match cfg.p2p.listen {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
            None => None,
        };
        let connect = cfg.p2p.connect.clone();
        let relay = Rc::new(RefCell::new(Relay::new(cfg, None)));
        let memory = Memory::start();
        if let Some(l) = &peers {
            control.set_p2p_addr(&relay, l.local_addr()?);
        }
        ready(Addrs {
            publishers: pubs.local_addr()?,
            subscribers: subs.local_addr()?,
        });
        type S = tokio::net::TcpStream;
        let mut tasks = vec![
            tokio::task::spawn_local(seam::accept_loop(relay.clone(), pubs, Role::Publishers)),
            tokio::task::spawn_local(seam::accept_loop(relay.clone(), subs, Role::Subscribers)),
            tokio::task::spawn_local(seam::housekeeping::<S>(relay.clone(), memory)),
        ];
        if let Some(l) = peers {
            tasks.push(tokio::task::spawn_local(p2p::conn::accept_loop(
                relay.clone(),
                l,
            )));
        }
        for a in connect {
            tasks.push(tokio::task::spawn_local(p2p::conn::connect_loop::<S>(
                relay.clone(),
                a,
            )));
        }
        loop {
            control.publish(relay.borrow().counters);
            if control.stopped() {
                break;
            }
            tokio::time::sleep(Control::POLL).await;
        }
        for t in tasks {
            t.abort();
        }
        let c = relay.borrow().counters;
        Ok::<_, std::io::Error>(c)
    })?;
    Ok(Finished {
        counters,
        latency: None,
        announce_last_peer: None,
        tx_served: None,
    })
}

/// Copies the counters into `control` every [`Control::POLL`], on any
/// runtime's timer, until it is stopped.
#[cfg(any(feature = "monoio", feature = "glommio"))]
async fn watched<S: seam::Stream>(relay: &RefCell<Relay>, control: &Control) {
    loop {
        control.publish(relay.borrow().counters);
        if control.stopped() {
            return;
        }
        S::sleep(Control::POLL).await;
    }
}

/// Runs the relay on monoio's legacy (epoll) driver on this thread until
/// `control` says stop. Pin the thread first to place it (the server
/// binary does, as for tokio).
///
/// monoio's task handles cannot abort: the accept loops and the
/// connections still open are dropped with the runtime when this returns
/// (a process that goes on should not count on their sockets closing).
#[cfg(feature = "monoio")]
pub fn run_monoio(
    cfg: RelayConfig,
    addrs: Addrs,
    ready: impl FnOnce(Addrs),
    control: impl Into<Control>,
) -> std::io::Result<Finished> {
    use seam::{MonoioListener, MonoioStream, Stream};
    let control = control.into();
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()?;
    let counters = rt.block_on(async move {
        let pubs = MonoioListener(monoio::net::TcpListener::bind(addrs.publishers)?);
        let subs = MonoioListener(monoio::net::TcpListener::bind(addrs.subscribers)?);
        let peers = cfg
            .p2p
            .listen
            .map(monoio::net::TcpListener::bind)
            .transpose()?;
        let connect = cfg.p2p.connect.clone();
        let relay = Rc::new(RefCell::new(Relay::new(cfg, None)));
        let memory = Memory::start();
        if let Some(l) = &peers {
            control.set_p2p_addr(&relay, l.local_addr()?);
        }
        ready(Addrs {
            publishers: pubs.0.local_addr()?,
            subscribers: subs.0.local_addr()?,
        });
        type S = MonoioStream;
        S::spawn(seam::accept_loop(relay.clone(), pubs, Role::Publishers));
        S::spawn(seam::accept_loop(relay.clone(), subs, Role::Subscribers));
        S::spawn(seam::housekeeping::<S>(relay.clone(), memory));
        if let Some(l) = peers {
            S::spawn(p2p::conn::accept_loop(relay.clone(), MonoioListener(l)));
        }
        for a in connect {
            S::spawn(p2p::conn::connect_loop::<S>(relay.clone(), a));
        }
        watched::<S>(&relay, &control).await;
        let c = relay.borrow().counters;
        Ok::<_, std::io::Error>(c)
    })?;
    Ok(Finished {
        counters,
        latency: None,
        announce_last_peer: None,
        tx_served: None,
    })
}

/// Runs the relay on a glommio `LocalExecutor` made on this thread until
/// `control` says stop: pinned to `cpu` (`Placement::Fixed`), or where
/// the thread may run (`Placement::Unbound`) without one.
#[cfg(feature = "glommio")]
pub fn run_glommio(
    cfg: RelayConfig,
    addrs: Addrs,
    ready: impl FnOnce(Addrs),
    control: impl Into<Control>,
    cpu: Option<usize>,
) -> std::io::Result<Finished> {
    use seam::{GlommioListener, GlommioStream};
    let control = control.into();
    let placement = match cpu {
        Some(cpu) => glommio::Placement::Fixed(cpu),
        None => glommio::Placement::Unbound,
    };
    let ex = glommio::LocalExecutorBuilder::new(placement)
        .make()
        .map_err(|e| std::io::Error::other(format!("glommio executor: {e}")))?;
    let counters = ex.run(async move {
        let bind = |a| glommio::net::TcpListener::bind(a).map_err(std::io::Error::from);
        let pubs = GlommioListener(bind(addrs.publishers)?);
        let subs = GlommioListener(bind(addrs.subscribers)?);
        let peers = cfg.p2p.listen.map(bind).transpose()?;
        let connect = cfg.p2p.connect.clone();
        let relay = Rc::new(RefCell::new(Relay::new(cfg, None)));
        let memory = Memory::start();
        if let Some(l) = &peers {
            control.set_p2p_addr(&relay, l.local_addr().map_err(std::io::Error::from)?);
        }
        ready(Addrs {
            publishers: pubs.0.local_addr().map_err(std::io::Error::from)?,
            subscribers: subs.0.local_addr().map_err(std::io::Error::from)?,
        });
        type S = GlommioStream;
        // Dropping a glommio task cancels it: these end with the run.
        let mut _tasks = vec![
            glommio::spawn_local(seam::accept_loop(relay.clone(), pubs, Role::Publishers)),
            glommio::spawn_local(seam::accept_loop(relay.clone(), subs, Role::Subscribers)),
            glommio::spawn_local(seam::housekeeping::<S>(relay.clone(), memory)),
        ];
        if let Some(l) = peers {
            let l = GlommioListener(l);
            _tasks.push(glommio::spawn_local(p2p::conn::accept_loop(
                relay.clone(),
                l,
            )));
        }
        for a in connect {
            _tasks.push(glommio::spawn_local(p2p::conn::connect_loop::<S>(
                relay.clone(),
                a,
            )));
        }
        watched::<S>(&relay, &control).await;
        let c = relay.borrow().counters;
        Ok::<_, std::io::Error>(c)
    })?;
    Ok(Finished {
        counters,
        latency: None,
        announce_last_peer: None,
        tx_served: None,
    })
}
