//! An axum app on Sprint: the `Router` is served by hyper through
//! `sprint::compat`, one accept loop per worker (SO_REUSEPORT), with
//! graceful shutdown on SIGINT or SIGTERM: stop accepting, let the
//! requests in flight finish (up to `--drain-ms`), drop what is left,
//! exit 0.
//!
//! ```sh
//! cargo run --release -p sprint-examples --bin axum_app -- --addr 127.0.0.1:3000
//! curl http://127.0.0.1:3000/
//! curl http://127.0.0.1:3000/hello/sprint
//! curl 'http://127.0.0.1:3000/slow?ms=3000'   # and Ctrl-C the server meanwhile
//! ```
//!
//! axum's own `axum::serve` needs tokio's runtime; on Sprint the router
//! goes through hyper-util's `TowerToHyperService` into hyper's
//! connection, exactly as for a plain hyper service.

use axum::extract::{Path, Query};
use axum::routing::get;
use axum::Router;
use clap::Parser;
use hyper_util::service::TowerToHyperService;
use sprint::compat::{until, GracefulShutdown, Timer};
use sprint::net::TcpListener;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// One accept loop per worker; `workers` in the attribute below.
const WORKERS: usize = 2;

#[derive(Parser)]
#[command(about = "an axum app on Sprint, with graceful shutdown")]
struct Args {
    /// Where to listen (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// How long the requests in flight may take to finish at shutdown.
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

#[derive(serde::Deserialize)]
struct Slow {
    ms: Option<u64>,
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello from axum on Sprint\n" }))
        .route(
            "/hello/{name}",
            get(|Path(name): Path<String>| async move { format!("Hello, {name}\n") }),
        )
        .route(
            "/slow",
            get(|Query(q): Query<Slow>| async move {
                let ms = q.ms.unwrap_or(1000);
                println!("slow request started ({ms} ms)");
                sprint::time::sleep(Duration::from_millis(ms)).await;
                format!("slept {ms} ms\n")
            }),
        )
}

/// One worker's server: accepts until shutdown is requested, then drains.
async fn serve(listener: TcpListener, drain: Duration) -> io::Result<()> {
    let router = app();
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(sprint::shutdown::requested());
    while let Some(accepted) = until(stop.as_mut(), listener.accept()).await {
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and the like: back off and go on.
                eprintln!("accept: {e}");
                sprint::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        stream.set_nodelay(true)?;
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(Timer)
            .serve_connection(stream, TowerToHyperService::new(router.clone()));
        drop(sprint::spawn_local(graceful.watch(conn)));
    }
    drop(listener);
    if let Err(e) = graceful.shutdown(drain).await {
        eprintln!("{e}");
    }
    Ok(())
}

// `drain` is main's own deadline: longer than the servers' `--drain-ms`.
#[sprint::main(level = "standard", workers = 2, drain = "30s")]
async fn main() -> io::Result<()> {
    let args = Args::parse();
    let drain = Duration::from_millis(args.drain_ms);
    // Worker 0 binds first, so a port 0 becomes a real one the others share.
    let (first, addr) = sprint::spawn_local_on(0, move || async move {
        let l = TcpListener::bind_reuseport(args.addr)?;
        let addr = l.local_addr()?;
        Ok::<_, io::Error>((sprint::spawn_local(serve(l, drain)), addr))
    })
    .map_err(io::Error::other)?
    .await
    .map_err(|e| io::Error::other(e.to_string()))??;
    let mut servers = vec![first];
    for w in 1..WORKERS {
        let server = sprint::spawn_local_on(w, move || async move {
            serve(TcpListener::bind_reuseport(addr)?, drain).await
        });
        servers.push(server.map_err(io::Error::other)?);
    }
    println!("listening on {addr}");
    for s in servers {
        s.await.map_err(|e| io::Error::other(e.to_string()))??;
    }
    println!("drained; exiting");
    Ok(())
}
