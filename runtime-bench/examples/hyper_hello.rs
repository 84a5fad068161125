//! hyper 1.x "hello world" (HTTP/1.1, keep-alive) on Sprint at a level and
//! driver (one worker, pinned), or on tokio's current-thread runtime
//! pinned the same way, for `wrk`. Sprint serves through `sprint::compat`
//! (its streams are hyper I/O as they are, reading into hyper's buffer
//! without zero-filling it; `Timer` on Sprint's timers), as a user does.
//!
//! ```sh
//! cargo run --release -p sprint-bench --example hyper_hello -- --runtime sprint --level standard
//! wrk -t1 -c64 -d10s --latency http://127.0.0.1:8080/
//! ```

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::io;

#[derive(Parser)]
#[command(about = "hyper hello world on Sprint or tokio (for wrk)")]
struct Args {
    /// `sprint` or `tokio`.
    #[arg(long, default_value = "sprint")]
    runtime: String,
    /// Sprint's level.
    #[arg(long, default_value = "standard")]
    level: String,
    /// Sprint's I/O driver, `uring` or `epoll` (default: the level's).
    #[arg(long)]
    driver: Option<String>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// The CPU the server runs on.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// Leave Sprint's worker where the level puts it (Standard pins only
    /// with 4 CPUs or more), as a user who does not set `pinning` gets.
    #[arg(long)]
    level_pinning: bool,
    /// Sprint: accept in `block_on` (as a `#[sprint::main]` body does) and
    /// `spawn` each connection, instead of accepting on the worker and
    /// `spawn_local`.
    #[arg(long)]
    accept_in_main: bool,
    /// Sprint, accepting on the worker: `spawn` each connection (stealable
    /// at the stealing levels) instead of `spawn_local`.
    #[arg(long)]
    spawn: bool,
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello world!",
    ))))
}

fn sprint(args: &Args) -> io::Result<()> {
    let level: sprint::Level = args.level.parse().map_err(io::Error::other)?;
    let driver: Option<sprint::config::IoDriver> = match &args.driver {
        Some(d) => Some(d.parse().map_err(io::Error::other)?),
        None => None,
    };
    let pin = !args.level_pinning;
    let rt = sprint::Builder::new()
        .level(level)
        .workers(1)
        .cpus(vec![args.cpu])
        .configure(move |c| {
            if let Some(d) = driver {
                c.io_driver = d;
            }
            if !pin {
                return;
            }
            c.pinning = sprint::config::Pinning::Always;
        })
        .build()
        .map_err(io::Error::other)?;
    eprintln!(
        "sprint {level} on CPU {}: {}",
        args.cpu,
        rt.start_report().drivers().join("; ")
    );
    let (addr, spawn) = (args.addr, args.spawn || args.accept_in_main);
    if args.accept_in_main {
        return rt.block_on(serve(addr, spawn));
    }
    rt.block_on(async move {
        sprint::spawn_on(0, serve(addr, spawn))
            .map_err(io::Error::other)?
            .await
            .map_err(|e| io::Error::other(e.to_string()))?
    })
}

/// Accepts on `addr` and serves each connection in a task of its own:
/// `spawn`ed (stealable at the stealing levels), else `spawn_local`ed on
/// this worker.
async fn serve(addr: std::net::SocketAddr, spawn: bool) -> io::Result<()> {
    let l = sprint::net::TcpListener::bind(addr)?;
    loop {
        let s = match l.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                sprint::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        let conn = async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(sprint::compat::Timer)
                .serve_connection(s, hyper::service::service_fn(hello))
                .await;
        };
        if spawn {
            drop(sprint::spawn(conn));
        } else {
            drop(sprint::spawn_local(conn));
        }
    }
}

fn tokio(args: &Args) -> io::Result<()> {
    if let Some(id) =
        core_affinity::get_core_ids().and_then(|ids| ids.into_iter().find(|c| c.id == args.cpu))
    {
        core_affinity::set_for_current(id);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let addr = args.addr;
    local.block_on(&rt, async move {
        let l = tokio::net::TcpListener::bind(addr).await?;
        loop {
            let s = match l.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = s.set_nodelay(true);
            tokio::task::spawn_local(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(s),
                        hyper::service::service_fn(hello),
                    )
                    .await;
            });
        }
    })
}

fn main() {
    let args = Args::parse();
    let r = match args.runtime.as_str() {
        "sprint" => sprint(&args),
        "tokio" => tokio(&args),
        other => Err(io::Error::other(format!(
            "--runtime must be sprint or tokio, not {other:?}"
        ))),
    };
    if let Err(e) = r {
        eprintln!("hyper_hello: {e}");
        std::process::exit(2);
    }
}
