//! Running the relay: on one Sprint worker, or on a tokio current-thread
//! runtime with a `LocalSet` (the same relay code through the seam), until
//! told to stop. Publishers connect to one address, subscribers to
//! another.

use crate::core::{Counters, Relay, RelayConfig};
use crate::seam;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
}

/// Polls `stop` every 10 ms.
async fn stopped_sprint(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        sprint::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the relay on worker 0 of `rt` until `stop`; `ready` gets the bound
/// addresses.
pub fn run_sprint(
    rt: &sprint::Runtime,
    cfg: RelayConfig,
    addrs: Addrs,
    ready: impl FnOnce(Addrs) + Send + 'static,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Finished> {
    let latency = sprint::metrics::histogram(
        "relay_latency",
        "Relay latency: a frame's arrival to its write to a subscriber.",
    )
    .map_err(std::io::Error::other)?;
    let h = latency.clone();
    let relay_on_worker = move || async move {
        let pubs = sprint::net::TcpListener::bind(addrs.publishers)?;
        let subs = sprint::net::TcpListener::bind(addrs.subscribers)?;
        ready(Addrs {
            publishers: pubs.local_addr()?,
            subscribers: subs.local_addr()?,
        });
        let relay = Rc::new(RefCell::new(Relay::new(cfg, Some(h))));
        let r = relay.clone();
        let accept_pubs = sprint::spawn_local(async move {
            while let Ok((s, _)) = pubs.accept().await {
                let _ = s.set_nodelay(true);
                sprint::spawn_local(seam::publisher(r.clone(), s));
            }
        });
        let r = relay.clone();
        let accept_subs = sprint::spawn_local(async move {
            while let Ok((s, _)) = subs.accept().await {
                let _ = s.set_nodelay(true);
                sprint::spawn_local(seam::subscriber(r.clone(), s));
            }
        });
        stopped_sprint(stop).await;
        accept_pubs.abort();
        accept_subs.abort();
        let c = relay.borrow().counters;
        Ok::<_, std::io::Error>(c)
    };
    let counters = rt.block_on(async move {
        sprint::spawn_local_on(0, relay_on_worker)
            .map_err(std::io::Error::other)?
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    })?;
    Ok(Finished {
        counters,
        latency: Some(latency.snapshot().summary()),
    })
}

/// Runs the relay on a tokio current-thread runtime (a `LocalSet`) on
/// this thread until `stop`.
pub fn run_tokio(
    cfg: RelayConfig,
    addrs: Addrs,
    ready: impl FnOnce(Addrs),
    stop: Arc<AtomicBool>,
) -> std::io::Result<Finished> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let counters = local.block_on(&rt, async move {
        let pubs = tokio::net::TcpListener::bind(addrs.publishers).await?;
        let subs = tokio::net::TcpListener::bind(addrs.subscribers).await?;
        ready(Addrs {
            publishers: pubs.local_addr()?,
            subscribers: subs.local_addr()?,
        });
        let relay = Rc::new(RefCell::new(Relay::new(cfg, None)));
        let r = relay.clone();
        let accept_pubs = tokio::task::spawn_local(async move {
            while let Ok((s, _)) = pubs.accept().await {
                let _ = s.set_nodelay(true);
                tokio::task::spawn_local(seam::publisher(r.clone(), s));
            }
        });
        let r = relay.clone();
        let accept_subs = tokio::task::spawn_local(async move {
            while let Ok((s, _)) = subs.accept().await {
                let _ = s.set_nodelay(true);
                tokio::task::spawn_local(seam::subscriber(r.clone(), s));
            }
        });
        while !stop.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        accept_pubs.abort();
        accept_subs.abort();
        let c = relay.borrow().counters;
        Ok::<_, std::io::Error>(c)
    })?;
    Ok(Finished {
        counters,
        latency: None,
    })
}
