//! A hyper 1.x HTTP/1.1 server on Sprint, thread-per-core, with graceful
//! shutdown: each worker owns a listener on the same port (SO_REUSEPORT)
//! and serves its connections on its own core; on the first SIGINT or
//! SIGTERM every worker stops accepting, lets the requests in flight
//! finish (up to `--drain-ms`), drops what is left, and `main` returns, so
//! the process exits 0.
//!
//! ```sh
//! cargo run --release -p sprint-examples --bin hyper_server -- --addr 127.0.0.1:3000
//! curl http://127.0.0.1:3000/
//! curl 'http://127.0.0.1:3000/slow?ms=3000'   # and Ctrl-C the server meanwhile
//! ```
//!
//! What makes hyper run on Sprint is `sprint::compat` (the `hyper`
//! feature): Sprint's `TcpStream` is hyper I/O as it is, `Timer` gives hyper
//! its timeouts, and `GracefulShutdown` tracks the connections.

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use sprint::compat::{until, GracefulShutdown, Timer};
use sprint::net::TcpListener;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// One accept loop per worker; `workers` in the attribute below.
const WORKERS: usize = 2;

#[derive(Parser)]
#[command(about = "hyper on Sprint, with graceful shutdown")]
struct Args {
    /// Where to listen (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// How long the requests in flight may take to finish at shutdown.
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

/// `/` says hello; `/slow?ms=N` answers after N ms (1000 by default).
async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.uri().path() {
        "/slow" => {
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            println!("slow request started ({ms} ms)");
            sprint::time::sleep(Duration::from_millis(ms)).await;
            format!("slept {ms} ms\n")
        }
        _ => "Hello from Sprint\n".to_owned(),
    };
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// One worker's server: accepts until shutdown is requested, then drains.
async fn serve(listener: TcpListener, drain: Duration) -> io::Result<()> {
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
            .serve_connection(stream, hyper::service::service_fn(route));
        // On this worker: the connection never leaves its core.
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
