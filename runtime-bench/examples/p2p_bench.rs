//! Time to last peer: the relay (`sprint-relay --p2p`, a separate
//! process) with N Bitcoin P2P peers, one of which sends transactions at a
//! fixed rate; how long until every other peer has the transaction's
//! `inv`, and what the relay's CPU costs per announcement delivered.
//!
//! One thread (pinned to the CPU the relay does not use when it runs on
//! one worker) drives every peer over mio: each completes the handshake
//! (`version`, `wtxidrelay`, `sendaddrv2`, `verack`), the first sends
//! `tx` messages paced open-loop (transaction `i` is due at
//! `start + i / rate`), the others read `inv`s, and one of them asks for
//! every transaction it hears of (`getdata`), so the relay also serves
//! `tx`s on request. Reported per run:
//! - the relay's own histograms (`relay_announce_last_peer`: arrival to
//!   the `inv` written to the last peer; `relay_tx_served`: arrival to
//!   the `tx` written on request), from the JSON it prints at exit;
//! - the client's view: from the source's write to the `inv` read by
//!   the last peer (so it includes the loopback and this client; the
//!   source's lateness against its schedule is reported apart);
//! - the relay's CPU time (utime + stime from /proc) per announcement
//!   delivered in the window, and its mesh messages per transaction;
//! - the client's own busy fraction (time not waiting in poll), so a run
//!   it limited can be told apart.
//!
//! `cargo run --release -p sprint-bench --example p2p_bench -- --peers 16,256,1024 --workers 1,2`
//! (builds nothing: run `cargo build --release -p sprint-relay` first).

use clap::Parser;
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use sprint_relay::p2p::msg::{self, inv, Message, NetAddr, Network, Version};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Time to last peer and CPU per announcement of the relay's P2P side")]
struct Args {
    /// The relay binary.
    #[arg(long, default_value = "target/release/sprint-relay")]
    relay_bin: String,
    /// Peers that hear the transactions (the source is one more).
    #[arg(long, value_delimiter = ',', default_value = "16,256,1024")]
    peers: Vec<usize>,
    /// Relay workers (1 pinned to CPU 0; more pinned to CPUs 0.. in turn).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    workers: Vec<usize>,
    /// Transactions per second from the source (a list: each is run).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    rate: Vec<u64>,
    /// Seconds of sending per run.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Runs of each setting, interleaved.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Sprint's level for the relay.
    #[arg(long, default_value = "standard")]
    level: String,
    /// The relay's P2P port (the next ones are used by later runs).
    #[arg(long, default_value_t = 18_500)]
    port: u16,
    /// Write every run's result here as JSON lines.
    #[arg(long)]
    out: Option<String>,
    /// The client's CPU (by default CPU 1 when the relay has one worker,
    /// and unpinned with more: on a larger machine give it a CPU past the
    /// workers', which run on CPUs 0 to N-1).
    #[arg(long)]
    client_cpu: Option<usize>,
    /// Write an SVG plot of time to last peer against peers here.
    #[arg(long)]
    svg: Option<String>,
}

const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda]; // regtest

/// One peer's connection.
struct Peer {
    s: TcpStream,
    inbuf: Vec<u8>,
    have: usize,
    out: Vec<u8>,
    ready: bool,
    /// Asks for every transaction announced to it.
    asks: bool,
}

impl Peer {
    fn send(&mut self, m: &Message<'_>) {
        msg::encode(&mut self.out, MAGIC, m);
    }

    fn flush(&mut self) -> std::io::Result<()> {
        while !self.out.is_empty() {
            match self.s.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// What one run measured.
#[derive(Debug, serde::Serialize)]
struct Run {
    workers: usize,
    peers: usize,
    rate: u64,
    sent: u64,
    /// Transactions every peer heard of.
    complete: u64,
    /// Client-side: the source's write to the last peer's `inv` read, µs.
    client_p50_us: f64,
    client_p99_us: f64,
    client_max_us: f64,
    /// The relay's histograms, µs.
    relay_last_peer_p50_us: f64,
    relay_last_peer_p99_us: f64,
    relay_last_peer_max_us: f64,
    relay_served_p50_us: f64,
    relay_served_p99_us: f64,
    /// Relay CPU per announcement delivered, ns.
    cpu_ns_per_announcement: f64,
    /// Relay CPU, of one CPU.
    relay_cpu: f64,
    announced: u64,
    mesh_per_tx: f64,
    /// The client's busy fraction (not waiting in poll).
    client_busy: f64,
    /// The client sent late (more than 1 ms behind the schedule) at most.
    client_lag_max_us: f64,
}

fn main() {
    let a = Args::parse();
    raise_nofile();
    let mut port = a.port;
    let mut all = Vec::new();
    for r in 0..a.runs {
        for &rate in &a.rate {
            for &w in &a.workers {
                for &n in &a.peers {
                    port += 1;
                    match run(&a, rate, w, n, port) {
                        Ok(x) => {
                            println!(
                                "run {r} rate {rate} workers {w} peers {n:>5}: last peer (relay) p50 {:>8.1} p99 {:>8.1} max {:>8.1} µs | client p50 {:>8.1} p99 {:>8.1} µs | served p50 {:>7.1} µs | cpu {:>6.0} ns/announcement ({:.0} % of a CPU) | mesh {:.2}/tx | {}/{} complete | client busy {:.0} %, late ≤ {:.0} µs",
                                x.relay_last_peer_p50_us,
                                x.relay_last_peer_p99_us,
                                x.relay_last_peer_max_us,
                                x.client_p50_us,
                                x.client_p99_us,
                                x.relay_served_p50_us,
                                x.cpu_ns_per_announcement,
                                100.0 * x.relay_cpu,
                                x.mesh_per_tx,
                                x.complete,
                                x.sent,
                                100.0 * x.client_busy,
                                x.client_lag_max_us,
                            );
                            all.push(x);
                        }
                        Err(e) => eprintln!("run {r} rate {rate} workers {w} peers {n}: {e}"),
                    }
                }
            }
        }
    }
    println!();
    println!(
        "{:>6} {:>7} {:>6} {:>24} {:>26} {:>24} {:>20} {:>9} {:>9}",
        "tx/s",
        "workers",
        "peers",
        "last peer p50 µs",
        "last peer p99 µs",
        "ns/announcement",
        "relay CPU %",
        "complete",
        "client %"
    );
    for &rate in &a.rate {
        for &w in &a.workers {
            for &n in &a.peers {
                let rs: Vec<&Run> = all
                    .iter()
                    .filter(|x| x.rate == rate && x.workers == w && x.peers == n)
                    .collect();
                if rs.is_empty() {
                    continue;
                }
                let m = |f: &dyn Fn(&Run) -> f64| median(rs.iter().map(|x| f(x)).collect());
                let busy = rs.iter().map(|x| x.client_busy).fold(0.0, f64::max);
                let complete = rs
                    .iter()
                    .map(|x| x.complete as f64 / x.sent.max(1) as f64)
                    .fold(1.0, f64::min);
                println!(
                    "{rate:>6} {w:>7} {n:>6} {:>24} {:>26} {:>24} {:>20} {:>8.1}% {:>8.0}%",
                    m(&|x| x.relay_last_peer_p50_us),
                    m(&|x| x.relay_last_peer_p99_us),
                    m(&|x| x.cpu_ns_per_announcement),
                    m(&|x| 100.0 * x.relay_cpu),
                    100.0 * complete,
                    100.0 * busy
                );
            }
        }
    }
    if let Some(svg) = &a.svg {
        if let Err(e) = plot(&all, &a, svg) {
            eprintln!("p2p_bench: {svg}: {e}");
        }
    }
    if let Some(out) = &a.out {
        let text: String = all
            .iter()
            .map(|x| serde_json::to_string(x).unwrap() + "\n")
            .collect();
        std::fs::write(out, text).unwrap_or_else(|e| eprintln!("p2p_bench: {out}: {e}"));
    }
}

/// The median of each run set's figure.
fn mid(rs: &[&Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = rs.iter().map(|x| f(x)).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Time to last peer (the relay's histogram, median of the runs' p50 and
/// p99) against peers, a line each per worker count, at the first rate.
fn plot(all: &[Run], a: &Args, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let most = all
        .iter()
        .map(|x| x.relay_last_peer_p99_us)
        .fold(10.0, f64::max);
    let peers_max = a.peers.iter().copied().max().unwrap_or(16) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "relay: transaction arrival to its inv written to the last peer ({} tx/s)",
                a.rate[0]
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (8f64..peers_max * 2.0).log_scale(),
            (10f64..most * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("peers (log)")
        .y_desc("µs (log)")
        .draw()?;
    let colors = [&BLUE, &RED, &GREEN, &MAGENTA];
    for (k, &w) in a.workers.iter().enumerate() {
        let c = colors[k % colors.len()];
        for (q, dashed) in [("p50", false), ("p99", true)] {
            let pts: Vec<(f64, f64)> = a
                .peers
                .iter()
                .filter_map(|&n| {
                    let rs: Vec<&Run> = all
                        .iter()
                        .filter(|x| x.workers == w && x.peers == n)
                        .collect();
                    if rs.is_empty() {
                        return None;
                    }
                    let v = if dashed {
                        mid(&rs, |x| x.relay_last_peer_p99_us)
                    } else {
                        mid(&rs, |x| x.relay_last_peer_p50_us)
                    };
                    Some((n as f64, v.max(10.0)))
                })
                .collect();
            let style = c.stroke_width(if dashed { 1 } else { 3 });
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(format!("{w} worker{} {q}", if w == 1 { "" } else { "s" }))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// "median (lowest–highest)".
fn median(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.1} ({:.1}–{:.1})", v[v.len() / 2], v[0], v[v.len() - 1])
}

/// 1,000 peers need more descriptors than the usual soft limit, here and
/// in the relay (which inherits it).
fn raise_nofile() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max.min(65_536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// The relay process, killed if the run fails.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The relay's CPU time so far, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // utime and stime are fields 14 and 15: 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) / hz
}

fn start_relay(a: &Args, workers: usize, port: u16) -> Result<(Relay, SocketAddr), String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut c = Command::new(&a.relay_bin);
    c.args(["--runtime", "sprint", "--level", &a.level])
        .args(["--network", Network::Regtest.name()])
        .args(["--p2p", &addr.to_string()])
        .args([
            "--publishers",
            "127.0.0.1:0",
            "--subscribers",
            "127.0.0.1:0",
        ])
        .args(["--max-peers", "4096", "--decode", "on"])
        .args(["--workers", &workers.to_string()]);
    if workers > 1 {
        let cpus: Vec<String> = (0..workers).map(|i| (i % cpus()).to_string()).collect();
        c.args(["--cpus", &cpus.join(",")]);
    } else {
        c.args(["--cpu", "0"]);
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (cargo build --release -p sprint-relay)",
                a.relay_bin
            )
        })?;
    let err = child.stderr.take().ok_or("no stderr")?;
    let relay = Relay(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut said = Vec::new();
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| format!("the relay did not start: {}", said.join(" / ")))?;
        if l.starts_with("relay: publishers on") {
            break;
        }
        said.push(l);
    }
    // Drain the rest of its stderr on that thread (it would block).
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Ok((relay, addr))
}

/// The machine's CPUs online (not this thread's mask, which a run pins).
fn cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

fn version(to: SocketAddr, nonce: u64) -> Version {
    Version {
        version: 70_016,
        services: msg::NODE_WITNESS,
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
        receiver: NetAddr::of(to, msg::NODE_WITNESS),
        sender: NetAddr::default(),
        nonce,
        user_agent: "/p2p_bench:0.1/".into(),
        start_height: 0,
        relay: true,
    }
}

/// Handles every whole message in peer `i`'s buffer; returns false if
/// the connection is to be given up.
fn input(
    i: usize,
    p: &mut Peer,
    now: Instant,
    ids: &HashMap<[u8; 32], usize>,
    heard: &mut [(u32, Option<Instant>)],
) -> Result<(), String> {
    let mut used = 0;
    loop {
        let buf = &p.inbuf[used..p.have];
        let Some(h) = msg::header(buf, MAGIC, 4_000_000).map_err(|e| format!("peer {i}: {e}"))?
        else {
            break;
        };
        if buf.len() < sprint_relay::wire::HEADER + h.len {
            break;
        }
        let payload = &buf[sprint_relay::wire::HEADER..sprint_relay::wire::HEADER + h.len];
        used += sprint_relay::wire::HEADER + h.len;
        let Ok(m) = msg::decode(h.command, payload) else {
            continue;
        };
        let mut reply = Vec::new();
        match m {
            Message::Version(_) => msg::encode(&mut reply, MAGIC, &Message::Verack),
            Message::Verack => p.ready = true,
            Message::Ping(n) => msg::encode(&mut reply, MAGIC, &Message::Pong(n)),
            Message::Inv(list) => {
                let mut want = Vec::new();
                for e in list.iter().filter(|e| e.kind == inv::WTX) {
                    if let Some(&k) = ids.get(&e.hash) {
                        let h = &mut heard[k];
                        h.0 += 1;
                        h.1 = Some(now);
                        if p.asks {
                            want.push(e);
                        }
                    }
                }
                if !want.is_empty() {
                    msg::encode_inv(&mut reply, MAGIC, "getdata", want.into_iter());
                }
            }
            _ => {}
        }
        p.out.extend_from_slice(&reply);
    }
    p.inbuf.copy_within(used..p.have, 0);
    p.have -= used;
    if p.have == p.inbuf.len() {
        let n = 2 * p.inbuf.len();
        p.inbuf.resize(n, 0);
    }
    Ok(())
}

/// Lets this thread run on every CPU again (the relay, started from it,
/// inherits its mask, and pins itself).
fn allow_all() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity take it by pointer with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..cpus() {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn run(a: &Args, rate: u64, workers: usize, n: usize, port: u16) -> Result<Run, String> {
    allow_all();
    let (mut relay, addr) = start_relay(a, workers, port)?;
    let client = a.client_cpu.or((workers == 1 && cpus() > 1).then_some(1));
    if let Some(id) = client {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            return Err(format!("cannot pin the client to CPU {id}"));
        }
    }
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut peers = Vec::with_capacity(n + 1);
    for i in 0..=n {
        let std = std::net::TcpStream::connect(addr).map_err(|e| format!("peer {i}: {e}"))?;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        std.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut s = TcpStream::from_std(std);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        let mut p = Peer {
            s,
            inbuf: vec![0; 64 << 10],
            have: 0,
            out: Vec::new(),
            ready: false,
            asks: i == 1,
        };
        p.send(&Message::Version(version(addr, 0x5eed_0000 + i as u64)));
        p.send(&Message::WtxidRelay);
        p.send(&Message::SendAddrV2);
        peers.push(p);
    }
    // The transactions, built before the run.
    let total = rate * a.secs;
    let mut txs = Vec::with_capacity(total as usize);
    let mut ids = HashMap::with_capacity(total as usize);
    for k in 0..total {
        let (raw, wtxid) = sprint_relay::sample::transaction(port as u64 * 1_000_000 + k, 60);
        ids.insert(wtxid, k as usize);
        txs.push(raw);
    }
    let mut heard: Vec<(u32, Option<Instant>)> = vec![(0, None); total as usize];
    let mut events = Events::with_capacity(4096);
    let mut pass = |peers: &mut Vec<Peer>,
                    heard: &mut [(u32, Option<Instant>)],
                    timeout: Duration|
     -> Result<Duration, String> {
        let t = Instant::now();
        poll.poll(&mut events, Some(timeout))
            .map_err(|e| e.to_string())?;
        let waited = t.elapsed();
        let now = Instant::now();
        for ev in events.iter() {
            let i = ev.token().0;
            let p = &mut peers[i];
            if ev.is_readable() {
                loop {
                    match p.s.read(&mut p.inbuf[p.have..]) {
                        Ok(0) => return Err(format!("the relay closed peer {i}")),
                        Ok(k) => {
                            p.have += k;
                            input(i, p, now, &ids, heard)?;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(format!("peer {i}: {e}")),
                    }
                }
            }
            p.flush().map_err(|e| format!("peer {i}: {e}"))?;
        }
        Ok(waited)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !peers.iter().all(|p| p.ready) {
        if Instant::now() > deadline {
            let ready = peers.iter().filter(|p| p.ready).count();
            return Err(format!(
                "{ready} of {} peers completed the handshake",
                n + 1
            ));
        }
        pass(&mut peers, &mut heard, Duration::from_millis(10))?;
    }
    // Let the relay's writers settle after the handshakes.
    let settle = Instant::now() + Duration::from_millis(200);
    while Instant::now() < settle {
        pass(&mut peers, &mut heard, Duration::from_millis(10))?;
    }
    let pid = relay.0.id();
    let cpu0 = cpu_secs(pid);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut sent_at = Vec::with_capacity(total as usize);
    let (mut waited, mut lag_max) = (Duration::ZERO, Duration::ZERO);
    let step = Duration::from_nanos(1_000_000_000 / rate.max(1));
    while sent < total {
        let now = Instant::now();
        let due = start + step * sent as u32;
        if now >= due {
            lag_max = lag_max.max(now - due);
            // Everything due now, in one write.
            while sent < total && start + step * sent as u32 <= now {
                let raw = &txs[sent as usize];
                peers[0].send(&Message::Tx(raw));
                // Timed from the write, not the schedule: this client's
                // poll sleeps in whole milliseconds, and its lateness
                // (reported apart) is not the relay's.
                sent_at.push(now);
                sent += 1;
            }
            peers[0].flush().map_err(|e| format!("source: {e}"))?;
        }
        let next = start + step * sent as u32;
        let wait = next.saturating_duration_since(Instant::now());
        waited += pass(&mut peers, &mut heard, wait.min(Duration::from_millis(1)))?;
    }
    let window = start.elapsed();
    let cpu = cpu_secs(pid) - cpu0;
    // What is still on its way.
    let tail = Instant::now() + Duration::from_secs(3);
    while Instant::now() < tail && heard.iter().any(|h| (h.0 as usize) < n) {
        pass(&mut peers, &mut heard, Duration::from_millis(5))?;
    }
    let mut client = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut complete = 0;
    for (k, h) in heard.iter().enumerate() {
        if h.0 as usize >= n {
            complete += 1;
            if let Some(t) = h.1 {
                let us = t.saturating_duration_since(sent_at[k]).as_micros() as u64;
                client.record(us.max(1)).map_err(|e| e.to_string())?;
            }
        }
    }
    drop(peers);
    // SAFETY: kill with a pid of our own child and SIGTERM.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let mut out = String::new();
    if let Some(mut o) = relay.0.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    let _ = relay.0.wait();
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("\"counters\""))
        .ok_or("the relay printed no result")?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let us = |path: &[&str]| {
        let mut x = &v;
        for p in path {
            x = &x[p];
        }
        x.as_f64().unwrap_or(f64::NAN) / 1_000.0
    };
    let announced = v["counters"]["p2p"]["announced"].as_u64().unwrap_or(0);
    let mesh = v["counters"]["mesh_sent"].as_u64().unwrap_or(0)
        + v["counters"]["mesh_questions"].as_u64().unwrap_or(0) * 2;
    let relayed = v["counters"]["relayed"].as_u64().unwrap_or(0).max(1);
    let delivered = (sent * n as u64).max(1);
    Ok(Run {
        workers,
        peers: n,
        rate,
        sent,
        complete,
        client_p50_us: client.value_at_quantile(0.5) as f64,
        client_p99_us: client.value_at_quantile(0.99) as f64,
        client_max_us: client.max() as f64,
        relay_last_peer_p50_us: us(&["announce_last_peer", "p50_ns"]),
        relay_last_peer_p99_us: us(&["announce_last_peer", "p99_ns"]),
        relay_last_peer_max_us: us(&["announce_last_peer", "max_ns"]),
        relay_served_p50_us: us(&["tx_served", "p50_ns"]),
        relay_served_p99_us: us(&["tx_served", "p99_ns"]),
        cpu_ns_per_announcement: cpu * 1e9 / delivered as f64,
        relay_cpu: cpu / window.as_secs_f64(),
        announced,
        mesh_per_tx: mesh as f64 / relayed as f64,
        client_busy: 1.0 - waited.as_secs_f64() / window.as_secs_f64(),
        client_lag_max_us: lag_max.as_micros() as f64,
    })
}
