//! A minimal HTTP/1.1 "hello world" server for request/response load from
//! `wrk`: on Sprint at a level and driver (one worker, pinned to `--cpu`),
//! or on tokio's current-thread runtime pinned the same way. Each
//! connection reads into a 4 KiB buffer and answers every complete request
//! head (`\r\n\r\n`) with a fixed 200 response, keep-alive; pipelined
//! requests are answered in order.
//!
//! ```sh
//! cargo run --release -p sprint-bench --example http_hello -- --runtime sprint --level standard
//! wrk -t1 -c64 -d10s --latency http://127.0.0.1:8080/
//! ```

use clap::Parser;
use std::io;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "HTTP/1.1 hello world on Sprint or tokio (for wrk)")]
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
}

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\ncontent-type: text/plain\r\n\r\nHello world!";

/// The number of complete request heads at the start of `buf[..n]`, and
/// the bytes they take.
fn heads(buf: &[u8]) -> (usize, usize) {
    let (mut count, mut used) = (0, 0);
    while let Some(i) = buf[used..].windows(4).position(|w| w == b"\r\n\r\n") {
        used += i + 4;
        count += 1;
    }
    (count, used)
}

/// Serves one connection through the read/write calls of any runtime.
macro_rules! serve_conn {
    ($s:expr) => {{
        let mut buf = [0u8; 4096];
        let mut have = 0;
        let mut out = Vec::with_capacity(RESPONSE.len() * 16);
        loop {
            if have == buf.len() {
                break; // a request head larger than the buffer
            }
            let n = match $s.read(&mut buf[have..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            have += n;
            let (count, used) = heads(&buf[..have]);
            buf.copy_within(used..have, 0);
            have -= used;
            out.clear();
            for _ in 0..count {
                out.extend_from_slice(RESPONSE);
            }
            if !out.is_empty() && $s.write_all(&out).await.is_err() {
                break;
            }
        }
    }};
}

fn sprint(args: &Args) -> io::Result<()> {
    let level: sprint::Level = args.level.parse().map_err(io::Error::other)?;
    let driver: Option<sprint::config::IoDriver> = match &args.driver {
        Some(d) => Some(d.parse().map_err(io::Error::other)?),
        None => None,
    };
    let rt = sprint::Builder::new()
        .level(level)
        .workers(1)
        .cpus(vec![args.cpu])
        .configure(move |c| {
            if let Some(d) = driver {
                c.io_driver = d;
            }
            c.pinning = sprint::config::Pinning::Always;
        })
        .build()
        .map_err(io::Error::other)?;
    eprintln!(
        "sprint {level} on CPU {}: {}",
        args.cpu,
        rt.handle().driver_report().join("; ")
    );
    let addr = args.addr;
    rt.block_on(async move {
        sprint::spawn_on(0, async move {
            let l = sprint::net::TcpListener::bind(addr)?;
            let mut backoff = Duration::from_millis(5);
            loop {
                let s = match l.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        eprintln!("accept: {e}");
                        sprint::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                };
                backoff = Duration::from_millis(5);
                let _ = s.set_nodelay(true);
                sprint::spawn_local(async move { serve_conn!(s) });
            }
        })
        .map_err(io::Error::other)?
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
    })
}

fn tokio(args: &Args) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        let mut backoff = Duration::from_millis(5);
        loop {
            let mut s = match l.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(5);
            let _ = s.set_nodelay(true);
            tokio::task::spawn_local(async move { serve_conn!(s) });
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
        eprintln!("http_hello: {e}");
        std::process::exit(2);
    }
}
