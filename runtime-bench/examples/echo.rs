//! The echo benchmark: one server core, the load generator on the other,
//! the same generator for every server in one run.
//!
//! * latency: one connection, 64-byte ping-pong, round-trip time measured
//!   by a busy-polling client (p50, p99, p99.9);
//! * CPU: 64 connections at a fixed offered rate below saturation; the
//!   server process's CPU time (from `/proc/<pid>/task/*/schedstat`)
//!   divided by the responses it sent.
//!
//! Each server runs in its own process pinned to CPU 0 (so one runtime's
//! threads never disturb another's); this process generates load from
//! CPU 1. The matrix runs `--runs` times, interleaved, and the table gives
//! the median and the spread (lowest–highest).
//!
//! `cargo run --release -p sprint-bench --example echo -- run --runs 3`

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Echo round-trip latency and server CPU per response")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the matrix and print the tables.
    Run {
        /// Interleaved repetitions of the whole matrix.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Measured round trips per latency run.
        #[arg(long, default_value_t = 20_000)]
        round_trips: usize,
        /// Offered rate for the CPU run, requests per second.
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        /// Length of the CPU run, in ms.
        #[arg(long, default_value_t = 2_000)]
        cpu_ms: u64,
        /// Only servers whose name contains one of these (comma-separated).
        #[arg(long)]
        only: Option<String>,
    },
    /// Serve echo on 127.0.0.1 (used by `run`): prints `PORT <n>`.
    Serve {
        /// One of the names `run` lists.
        server: String,
    },
}

const SERVERS: &[&str] = &[
    "std-busy-poll",
    "tokio-current-thread",
    "monoio",
    "sprint-epoll-basic",
    "sprint-uring-basic",
    "sprint-epoll-standard",
    "sprint-uring-standard",
    "sprint-epoll-turbo",
    "sprint-uring-turbo",
];

fn main() {
    let args = Args::parse();
    match args.cmd {
        Cmd::Serve { server } => {
            if let Err(e) = serve(&server) {
                eprintln!("echo serve {server}: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Run {
            runs,
            round_trips,
            rate,
            cpu_ms,
            only,
        } => run(runs, round_trips, rate, Duration::from_millis(cpu_ms), only),
    }
}

fn announce(port: u16) {
    println!("PORT {port}");
    io::stdout().flush().expect("stdout");
}

fn serve(name: &str) -> io::Result<()> {
    // Every thread the server starts inherits CPU 0 alone.
    if !core_affinity::set_for_current(core_affinity::CoreId { id: 0 }) {
        return Err(io::Error::other("cannot pin to CPU 0"));
    }
    match name {
        "std-busy-poll" => serve_std(),
        "tokio-current-thread" => serve_tokio(),
        "monoio" => serve_monoio(),
        _ => {
            let rest = name
                .strip_prefix("sprint-")
                .ok_or_else(|| io::Error::other(format!("unknown server {name}")))?;
            let (driver, level) = rest
                .split_once('-')
                .ok_or_else(|| io::Error::other(format!("unknown server {name}")))?;
            serve_sprint(driver, level)
        }
    }
}

/// The floor: one thread spinning over non-blocking std sockets.
fn serve_std() -> io::Result<()> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.set_nonblocking(true)?;
    announce(l.local_addr()?.port());
    let mut conns: Vec<TcpStream> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Ok((s, _)) = l.accept() {
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            conns.push(s);
        }
        conns.retain_mut(|s| match s.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => write_all_spin(s, &buf[..n]).is_ok(),
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        });
    }
}

fn write_all_spin(s: &mut TcpStream, mut b: &[u8]) -> io::Result<()> {
    while !b.is_empty() {
        match s.write(b) {
            Ok(n) => b = &b[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn serve_tokio() -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        announce(l.local_addr()?.port());
        loop {
            let (mut s, _) = l.accept().await?;
            s.set_nodelay(true)?;
            tokio::task::spawn_local(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    })
}

fn serve_monoio() -> io::Result<()> {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()?;
    rt.block_on(async {
        let l = monoio::net::TcpListener::bind("127.0.0.1:0")?;
        announce(l.local_addr()?.port());
        loop {
            let (s, _) = l.accept().await?;
            s.set_nodelay(true)?;
            monoio::spawn(async move {
                let mut s = s;
                let mut buf = Vec::with_capacity(4096);
                loop {
                    let (r, b) = s.read(buf).await;
                    buf = b;
                    match r {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let (r, b) = s.write_all(buf).await;
                            buf = b;
                            buf.clear();
                            if r.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    })
}

fn serve_sprint(driver: &str, level: &str) -> io::Result<()> {
    let level: sprint::Level = level.parse().map_err(io::Error::other)?;
    let driver: sprint::config::IoDriver = driver.parse().map_err(io::Error::other)?;
    let rt = sprint::Builder::new()
        .level(level)
        .read_env(false)
        .workers(1)
        .cpus(vec![0])
        .configure(move |c| c.io_driver = driver)
        .build()
        .map_err(io::Error::other)?;
    eprintln!("sprint {level}: {}", rt.start_report().drivers().join("; "));
    rt.block_on(async {
        sprint::spawn_on(0, async {
            let l = sprint::net::TcpListener::bind("127.0.0.1:0")?;
            announce(l.local_addr()?.port());
            loop {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                sprint::spawn_local(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        })
        .map_err(|e| io::Error::other(e.to_string()))?
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
    })
}

/// A server process, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(name: &str) -> io::Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let mut line = String::new();
        io::BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| io::Error::other(format!("{name} did not start: {line:?}")))?;
        Ok(Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// CPU time of every thread of the server, in ns.
    fn cpu_ns(&self) -> u64 {
        let dir = format!("/proc/{}/task", self.child.id());
        let Ok(tasks) = std::fs::read_dir(dir) else {
            return 0;
        };
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Latency {
    p50: f64,
    p99: f64,
    p999: f64,
}

fn latency(addr: SocketAddr, round_trips: usize) -> io::Result<Latency> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    let msg = [0x42u8; 64];
    let mut back = [0u8; 64];
    let mut h = Histogram::<u64>::new_with_bounds(100, 100_000_000, 3).map_err(io::Error::other)?;
    let warm = round_trips / 10;
    for i in 0..warm + round_trips {
        let t0 = Instant::now();
        write_all_spin(&mut s, &msg)?;
        let mut got = 0;
        while got < 64 {
            match s.read(&mut back[got..]) {
                Ok(0) => return Err(io::Error::other("the server closed")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) => return Err(e),
            }
        }
        if i >= warm {
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
    }
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(Latency {
        p50: us(0.5),
        p99: us(0.99),
        p999: us(0.999),
    })
}

/// Offers `rate` requests per second over 64 connections for `len`;
/// returns the server's CPU ns per response.
fn cpu_per_response(server: &Server, rate: u64, len: Duration) -> io::Result<(f64, u64)> {
    use mio::net::TcpStream as MioStream;
    use mio::{Events, Interest, Poll, Token};
    const CONNS: usize = 64;
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(CONNS);
    for i in 0..CONNS {
        let s = TcpStream::connect(server.addr)?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut m = MioStream::from_std(s);
        poll.registry()
            .register(&mut m, Token(i), Interest::READABLE)?;
        conns.push((m, false, 0usize));
    }
    let mut events = Events::with_capacity(256);
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let msg = [0x17u8; 64];
    let mut buf = [0u8; 4096];
    let mut phase = |dur: Duration| -> io::Result<u64> {
        let start = Instant::now();
        let end = start + dur;
        let mut next = start;
        let mut k = 0usize;
        let mut responses = 0u64;
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(responses);
            }
            while next <= now {
                let c = &mut conns[k % CONNS];
                if !c.1 {
                    c.0.write_all(&msg)?;
                    c.1 = true;
                    c.2 = 0;
                }
                k += 1;
                next += interval;
            }
            poll.poll(&mut events, Some(next.saturating_duration_since(now)))?;
            for ev in events.iter() {
                let c = &mut conns[ev.token().0];
                loop {
                    match c.0.read(&mut buf) {
                        Ok(0) => return Err(io::Error::other("the server closed")),
                        Ok(n) => {
                            c.2 += n;
                            if c.2 >= 64 {
                                c.1 = false;
                                c.2 -= 64;
                                responses += 1;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    };
    phase(Duration::from_millis(300))?;
    let cpu0 = server.cpu_ns();
    let responses = phase(len)?;
    let cpu = server.cpu_ns() - cpu0;
    Ok((cpu as f64 / responses.max(1) as f64, responses))
}

#[derive(Default)]
struct Samples {
    p50: Vec<f64>,
    p99: Vec<f64>,
    p999: Vec<f64>,
    cpu: Vec<f64>,
}

fn median_spread(v: &mut [f64]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    format!("{:.2} ({:.2}–{:.2})", v[v.len() / 2], v[0], v[v.len() - 1])
}

fn run(runs: usize, round_trips: usize, rate: u64, cpu_len: Duration, only: Option<String>) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: 1 }) {
        eprintln!("echo: cannot pin the generator to CPU 1 (a 2-CPU machine is needed)");
        std::process::exit(2);
    }
    let names: Vec<&str> = SERVERS
        .iter()
        .copied()
        .filter(|n| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|o| n.contains(o)))
        })
        .collect();
    let mut samples: Vec<Samples> = names.iter().map(|_| Samples::default()).collect();
    for r in 0..runs {
        for (i, name) in names.iter().enumerate() {
            let res = (|| -> io::Result<()> {
                let server = Server::start(name)?;
                let l = latency(server.addr, round_trips)?;
                let (cpu, responses) = cpu_per_response(&server, rate, cpu_len)?;
                eprintln!(
                    "run {r} {name}: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, {cpu:.0} ns CPU per response ({responses} responses)",
                    l.p50, l.p99, l.p999
                );
                let s = &mut samples[i];
                s.p50.push(l.p50);
                s.p99.push(l.p99);
                s.p999.push(l.p999);
                s.cpu.push(cpu / 1000.0);
                Ok(())
            })();
            if let Err(e) = res {
                eprintln!("run {r} {name}: failed: {e}");
            }
        }
    }
    let tokio_cpu = names
        .iter()
        .position(|n| *n == "tokio-current-thread")
        .and_then(|i| {
            let mut v = samples[i].cpu.clone();
            v.sort_by(|a, b| a.total_cmp(b));
            v.get(v.len() / 2).copied()
        });
    println!(
        "\nEcho, 64-byte messages, server pinned to CPU 0, generator on CPU 1; {runs} runs, median (lowest–highest)."
    );
    println!(
        "Latency: 1 connection, {round_trips} round trips. CPU: 64 connections at {rate} requests/s for {} ms.\n",
        cpu_len.as_millis()
    );
    println!("| server | RTT p50 µs | RTT p99 µs | RTT p99.9 µs | server CPU µs/response | CPU × tokio |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, s) in names.iter().zip(samples.iter_mut()) {
        let mut cpu_sorted = s.cpu.clone();
        cpu_sorted.sort_by(|a, b| a.total_cmp(b));
        let ratio = match (tokio_cpu, cpu_sorted.get(cpu_sorted.len() / 2)) {
            (Some(t), Some(c)) if t > 0.0 => format!("{:.2}", c / t),
            _ => "–".into(),
        };
        println!(
            "| {name} | {} | {} | {} | {} | {ratio} |",
            median_spread(&mut s.p50),
            median_spread(&mut s.p99),
            median_spread(&mut s.p999),
            median_spread(&mut s.cpu),
        );
    }
}
