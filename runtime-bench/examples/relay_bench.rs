//! The relay's load generator and benchmark report.
//!
//! `load`: one thread (pin it to the other core) drives 4 publishers and
//! 16 subscribers over TCP with mio. Sends are paced open-loop: message
//! `i` is due at `start + i / rate` whatever the relay does. Latency is
//! measured from that intended time, so a stall cannot hide queued
//! messages (no coordinated omission), into an HDR histogram. Frames are
//! built before the run: each transaction carries its sequence number,
//! and every subscriber checks every frame byte for byte against the one
//! sent, once (duplicates, corruption and losses are counted).
//!
//! `report`: runs the relay server (`--relay-bin`) on CPU 0 at each level
//! and on tokio, at rising offered rates, with the generator on CPU 1;
//! prints the table (throughput, latency percentiles, server CPU, RSS,
//! global allocations per message, page faults), and writes JSON and SVG
//! plots.
//!
//! `cargo run --release -p sprint-bench --example relay_bench -- report`

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;
use sprint_relay::wire;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Load generator and report for the relay")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Drive a running relay once and print the result as JSON.
    Load(LoadArgs),
    /// Run the relay at each level and on tokio at rising rates.
    Report(ReportArgs),
    /// A short demo: the relay on Sprint in this process (CPU 0), the
    /// generator on CPU 1, at rising rates, with the final table.
    Demo(DemoArgs),
    /// A load step (idle, a burst, idle) against fixed Basic, fixed Turbo
    /// and the adaptive controller between them: p99 during the burst,
    /// server CPU while idle.
    Step(StepArgs),
}

#[derive(Parser, Clone)]
struct StepArgs {
    /// The relay server binary.
    #[arg(long, default_value = "target/release/sprint-relay")]
    relay_bin: String,
    /// The burst's rate, transactions per second.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Seconds of burst.
    #[arg(long, default_value_t = 10.0)]
    burst: f64,
    /// Seconds of idle before the burst.
    #[arg(long, default_value_t = 5.0)]
    idle: f64,
    /// Seconds of idle after it; CPU is measured over the second half
    /// (the adaptive controller steps down one level per
    /// `adaptive_down_after` windows, 10 s by default).
    #[arg(long, default_value_t = 60.0)]
    after: f64,
    /// Runs of each server, interleaved; the table gives the median and
    /// the spread.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Parser, Clone)]
struct DemoArgs {
    /// Sprint's level (the default level unless given).
    #[arg(long, default_value = "standard")]
    level: String,
    /// Offered rates, transactions per second.
    #[arg(long, value_delimiter = ',', default_value = "10000,50000,100000")]
    rates: Vec<u64>,
    /// Seconds per rate.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
}

#[derive(Parser, Clone)]
struct LoadArgs {
    /// Where the relay takes publishers.
    #[arg(long, default_value = "127.0.0.1:8333")]
    publishers: SocketAddr,
    /// Where it takes subscribers.
    #[arg(long, default_value = "127.0.0.1:8334")]
    subscribers: SocketAddr,
    /// Transactions per second offered.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds measured (after a 0.5 s warm-up at the same rate).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Publisher connections.
    #[arg(long, default_value_t = 4)]
    pubs: usize,
    /// Subscriber connections.
    #[arg(long, default_value_t = 16)]
    subs: usize,
    /// The CPU to run on.
    #[arg(long, default_value_t = 1)]
    cpu: usize,
    /// The first sequence number: a relay remembers the transactions it
    /// saw, so runs against the same relay must not repeat them.
    #[arg(long, default_value_t = 0)]
    seq_base: u64,
}

#[derive(Parser, Clone)]
struct ReportArgs {
    /// The relay server binary.
    #[arg(long, default_value = "target/release/sprint-relay")]
    relay_bin: String,
    /// Offered rates, transactions per second.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,50000,100000,200000,400000"
    )]
    rates: Vec<u64>,
    /// Servers: tokio and Sprint's levels.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tokio,basic,standard,aggressive,enterprise,turbo"
    )]
    servers: Vec<String>,
    /// Seconds measured per point.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Relay decoding on or off.
    #[arg(long, default_value = "on")]
    decode: String,
    /// After the listed rates, keep raising each server's rate by a
    /// quarter while it keeps up (see `--keep-up-p99-ms`), to find its
    /// saturation point, up to this rate; 0 stops at the listed rates.
    #[arg(long, default_value_t = 0)]
    until_fail: u64,
    /// A server keeps up at a rate when it delivers at least 99.9 % with
    /// p99 latency under this many ms (above it, a backlog is building:
    /// a server that reads less than it is sent leaves the backlog in TCP
    /// and still delivers everything, late).
    #[arg(long, default_value_t = 100.0)]
    keep_up_p99_ms: f64,
    /// Where the JSON and the plots go.
    #[arg(long, default_value = "target/relay-report")]
    out: String,
}

/// What one load run measured.
#[derive(Debug, Clone, Serialize)]
struct LoadResult {
    offered_rate: u64,
    messages: u64,
    subscribers: usize,
    /// Deliveries received in the measured window, per second.
    delivered_per_s: f64,
    /// Share of the deliveries expected that arrived.
    delivered_fraction: f64,
    p50_us: f64,
    p95_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    duplicates: u64,
    corrupted: u64,
    missing: u64,
    /// Subscribers the relay closed (its slow-subscriber policy): what
    /// they did not receive counts as not delivered.
    closed_subscribers: usize,
    /// The generator's own CPU over the run, in cores.
    generator_cpu: f64,
    /// Share of its (busy) loop's time spent in turns that found nothing
    /// to send or read: its slack.
    generator_idle: f64,
    /// How late the generator sent, p99 µs (its own slack).
    send_lag_p99_us: f64,
    /// Latency samples, for the CDF plot: (µs, fraction below).
    cdf: Vec<(f64, f64)>,
    /// p99 latency of the transactions due in each second of the
    /// measured window, µs: where in a run the tail came from.
    p99_by_second_us: Vec<f64>,
}

/// A framed transaction carrying `seq`.
fn frame(seq: u64) -> Vec<u8> {
    wire::tx_frame(&sprint_relay::sample::transaction(seq, 22).0)
}

fn cpu_seconds_self() -> f64 {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(r.ru_utime) + t(r.ru_stime)
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(TcpStream::from_std(s))
}

fn load(a: &LoadArgs) -> std::io::Result<LoadResult> {
    load_marked(a, || {})
}

/// `load`, calling `at_measure` once, when the first measured message is
/// due (the warm-up is over).
fn load_marked(a: &LoadArgs, at_measure: impl FnOnce()) -> std::io::Result<LoadResult> {
    let mut at_measure = Some(at_measure);
    if !core_affinity::set_for_current(core_affinity::CoreId { id: a.cpu }) {
        return Err(std::io::Error::other(format!(
            "cannot pin to CPU {}",
            a.cpu
        )));
    }
    let warm = a.rate / 2;
    let measured = (a.rate as f64 * a.seconds) as u64;
    let total = warm + measured;
    let frames: Vec<Vec<u8>> = (0..total).map(|i| frame(a.seq_base + i)).collect();
    let mut poll = Poll::new()?;
    let mut subs = Vec::new();
    for i in 0..a.subs {
        let mut s = connect(a.subscribers)?;
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)?;
        subs.push(s);
    }
    // Subscribers are registered as the relay accepts them.
    std::thread::sleep(Duration::from_millis(300));
    let mut pubs: Vec<(TcpStream, Vec<u8>)> = Vec::new();
    for _ in 0..a.pubs {
        pubs.push((connect(a.publishers)?, Vec::with_capacity(1 << 20)));
    }
    let mut seen = vec![0u16; total as usize];
    let mut bufs: Vec<Vec<u8>> = (0..a.subs).map(|_| Vec::with_capacity(1 << 20)).collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let seconds_measured = a.seconds.ceil().max(1.0) as usize;
    let mut by_second: Vec<Histogram<u64>> = (0..seconds_measured)
        .map(|_| Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2).unwrap())
        .collect();
    let (mut dup, mut corrupt, mut delivered) = (0u64, 0u64, 0u64);
    let mut events = Events::with_capacity(64);
    let mut chunk = vec![0u8; 256 << 10];
    let cpu0 = cpu_seconds_self();
    let start = Instant::now() + Duration::from_millis(10);
    let ns_per = 1e9 / a.rate as f64;
    let due_at = |seq: u64| start + Duration::from_nanos((seq as f64 * ns_per) as u64);
    let mut next = 0u64;
    let deadline = due_at(total) + Duration::from_secs(5);
    let expected = total * a.subs as u64;
    let mut received = 0u64;
    // Per subscriber: frames received, and whether the relay closed it.
    let mut got = vec![0u64; a.subs];
    let mut closed = vec![false; a.subs];
    // Time in loop turns that found nothing to send or read: the
    // generator's slack (a busy loop's idle share). Counting turns
    // instead overstated it: an idle turn is far shorter than a busy one.
    let mut idle_time = Duration::ZERO;
    loop {
        let now = Instant::now();
        let sent_before = next;
        // Everything due by now goes out, round-robin over publishers, in
        // as few writes as possible.
        while next < total && due_at(next) <= now {
            let p = (next % a.pubs as u64) as usize;
            pubs[p].1.extend_from_slice(&frames[next as usize]);
            if next >= warm {
                lag.record((now - due_at(next)).as_nanos().max(1) as u64)
                    .ok();
            }
            if next == warm {
                if let Some(f) = at_measure.take() {
                    f();
                }
            }
            next += 1;
        }
        for (s, out) in pubs.iter_mut() {
            while !out.is_empty() {
                match s.write(out) {
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        poll.poll(&mut events, Some(Duration::ZERO))?;
        if next == sent_before && events.is_empty() {
            idle_time += now.elapsed();
        }
        for ev in events.iter() {
            let i = ev.token().0;
            if closed[i] {
                continue;
            }
            loop {
                match subs[i].read(&mut chunk) {
                    Ok(0) => {
                        // Dropped by the relay's slow-subscriber policy:
                        // the rest of its frames are not delivered.
                        closed[i] = true;
                        poll.registry().deregister(&mut subs[i])?;
                        break;
                    }
                    Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            let t = Instant::now();
            let buf = &mut bufs[i];
            let mut used = 0;
            while buf.len() - used >= wire::HEADER {
                let len =
                    u32::from_le_bytes(buf[used + 16..used + 20].try_into().unwrap()) as usize;
                if buf.len() - used < wire::HEADER + len {
                    break;
                }
                let f = &buf[used..used + wire::HEADER + len];
                match sprint_relay::sample::seq_of_frame(f).and_then(|s| s.checked_sub(a.seq_base))
                {
                    Some(seq) if seq < total && frames[seq as usize] == f => {
                        let s = &mut seen[seq as usize];
                        if *s & (1 << (i % 16)) != 0 {
                            dup += 1;
                        } else {
                            *s |= 1 << (i % 16);
                            received += 1;
                            got[i] += 1;
                            if seq >= warm {
                                delivered += 1;
                                let l = t.saturating_duration_since(due_at(seq));
                                hist.record(l.as_nanos().max(1) as u64).ok();
                                let sec = ((seq - warm) / a.rate.max(1)) as usize;
                                if let Some(h) = by_second.get_mut(sec) {
                                    h.record(l.as_nanos().max(1) as u64).ok();
                                }
                            }
                        }
                    }
                    _ => corrupt += 1,
                }
                used += wire::HEADER + len;
            }
            buf.drain(..used);
        }
        if next == total
            && pubs.iter().all(|p| p.1.is_empty())
            && ((0..a.subs).all(|i| closed[i] || got[i] >= total) || Instant::now() > deadline)
        {
            break;
        }
        if Instant::now() > deadline + Duration::from_secs(5) {
            break;
        }
    }
    let cpu = cpu_seconds_self() - cpu0;
    let wall = (Instant::now() - start).as_secs_f64();
    let window = measured as f64 / a.rate as f64;
    let missing = expected - received;
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1e3;
    let mut cdf = Vec::new();
    for v in hist.iter_quantiles(1) {
        cdf.push((v.value_iterated_to() as f64 / 1e3, v.quantile_iterated_to()));
    }
    Ok(LoadResult {
        offered_rate: a.rate,
        messages: measured,
        subscribers: a.subs,
        delivered_per_s: delivered as f64 / window,
        delivered_fraction: delivered as f64 / (measured * a.subs as u64) as f64,
        p50_us: q(&hist, 0.5),
        p95_us: q(&hist, 0.95),
        p99_us: q(&hist, 0.99),
        p999_us: q(&hist, 0.999),
        max_us: hist.max() as f64 / 1e3,
        duplicates: dup,
        corrupted: corrupt,
        missing,
        closed_subscribers: closed.iter().filter(|c| **c).count(),
        generator_cpu: cpu / wall,
        generator_idle: idle_time.as_secs_f64() / wall,
        send_lag_p99_us: q(&lag, 0.99),
        cdf,
        p99_by_second_us: by_second.iter().map(|h| q(h, 0.99)).collect(),
    })
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Load(a) => match load(&a) {
            Ok(r) => println!("{}", serde_json::to_string(&r).unwrap()),
            Err(e) => {
                eprintln!("relay_bench load: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Report(r) => report::run(&r),
        Cmd::Step(st) => {
            if let Err(e) = step(&st) {
                eprintln!("relay_bench step: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Demo(d) => {
            if let Err(e) = demo(&d) {
                eprintln!("relay_bench demo: {e}");
                std::process::exit(1);
            }
        }
    }
}

fn step(st: &StepArgs) -> std::io::Result<()> {
    let r = ReportArgs {
        relay_bin: st.relay_bin.clone(),
        rates: vec![st.rate],
        servers: vec![],
        seconds: st.burst,
        decode: "on".into(),
        out: String::new(),
        until_fail: 0,
        keep_up_p99_ms: 100.0,
    };
    let servers = ["basic", "turbo", "adaptive"];
    // Per server: (burst p99, burst p95, delivered %, idle CPU) of each run.
    let mut runs: Vec<Vec<[f64; 4]>> = vec![Vec::new(); servers.len()];
    let mut moves: Vec<Vec<String>> = vec![Vec::new(); servers.len()];
    let mut port = 19_333u16;
    for run in 0..st.runs.max(1) {
        for (k, server) in servers.iter().enumerate() {
            port += 2;
            eprintln!(
                "[run {}/{}] {server}: idle {} s, burst at {}/s for {} s, idle {} s",
                run + 1,
                st.runs.max(1),
                st.idle,
                st.rate,
                st.burst,
                st.after
            );
            let mut s = report::start(&r, server, port)?;
            let pid = s.0.id();
            std::thread::sleep(Duration::from_secs_f64(st.idle));
            let args = LoadArgs {
                publishers: format!("127.0.0.1:{port}").parse().unwrap(),
                subscribers: format!("127.0.0.1:{}", port + 1).parse().unwrap(),
                rate: st.rate,
                seconds: st.burst,
                pubs: 4,
                subs: 16,
                cpu: 1,
                seq_base: 0,
            };
            let burst = std::thread::spawn(move || load(&args))
                .join()
                .map_err(|_| std::io::Error::other("the generator panicked"))??;
            // Idle CPU once the load is gone: the second half of the idle
            // time (the adaptive controller needs its down-streaks).
            std::thread::sleep(Duration::from_secs_f64(st.after / 2.0));
            let (c0, _) = report::proc_stat(pid).unwrap_or_default();
            std::thread::sleep(Duration::from_secs_f64(st.after / 2.0));
            let (c1, _) = report::proc_stat(pid).unwrap_or_default();
            let idle_cpu = (c1 - c0) / (st.after / 2.0);
            let out = s.stop();
            let path = out
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find_map(|v| v.get("adaptive").cloned())
                .and_then(|a| a.get("path").cloned())
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into());
            eprintln!(
                "  p99 by second (µs): {:?}",
                burst
                    .p99_by_second_us
                    .iter()
                    .map(|v| v.round() as u64)
                    .collect::<Vec<_>>()
            );
            runs[k].push([
                burst.p99_us,
                burst.p95_us,
                burst.delivered_fraction * 100.0,
                idle_cpu,
            ]);
            moves[k].push(path);
            drop(s);
        }
    }
    // The median and the spread of one column.
    let stat = |v: &[[f64; 4]], i: usize| {
        let mut x: Vec<f64> = v.iter().map(|r| r[i]).collect();
        x.sort_by(f64::total_cmp);
        (x[x.len() / 2], x[0], x[x.len() - 1])
    };
    println!(
        "{} run(s) each, interleaved; median (lowest-highest). Burst {}/s for {} s after {} s idle; idle CPU over the last {} s of {} s idle after.",
        st.runs.max(1),
        st.rate,
        st.burst,
        st.idle,
        st.after / 2.0,
        st.after
    );
    println!(
        "{:>9} {:>26} {:>26} {:>12} {:>26}",
        "server", "burst p99 µs", "burst p95 µs", "min deliv %", "idle CPU (cores)"
    );
    for (k, server) in servers.iter().enumerate() {
        let cell = |i: usize, prec: usize| {
            let (m, lo, hi) = stat(&runs[k], i);
            format!("{m:.prec$} ({lo:.prec$}-{hi:.prec$})")
        };
        println!(
            "{:>9} {:>26} {:>26} {:>12.3} {:>26}",
            server,
            cell(0, 1),
            cell(1, 1),
            stat(&runs[k], 2).1,
            cell(3, 3)
        );
    }
    let (b, t, a) = (stat(&runs[0], 3).0, stat(&runs[1], 0).0, &runs[2]);
    println!(
        "adaptive against turbo, burst p99: {:.2}x (median); idle CPU above basic: {:+.3} cores",
        stat(a, 0).0 / t,
        stat(a, 3).0 - b
    );
    for (i, m) in moves[2].iter().enumerate() {
        println!("adaptive run {}: {m}", i + 1);
    }
    Ok(())
}

fn demo(d: &DemoArgs) -> std::io::Result<()> {
    use sprint_relay::server::{self, Addrs};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    let level: sprint::Level = d
        .level
        .parse()
        .map_err(|e| std::io::Error::other(format!("--level: {e}")))?;
    let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gen_cpu = if allowed > 1 { 1 } else { 0 };
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let s2 = stop.clone();
    let server = std::thread::spawn(move || -> std::io::Result<server::Finished> {
        let rt = sprint::Builder::new()
            .level(level)
            .workers(1)
            .cpus(vec![0])
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        eprintln!("relay on Sprint at {level}:");
        for line in rt.handle().driver_report() {
            eprintln!("  I/O: {line}");
        }
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let addrs = Addrs {
            publishers: any,
            subscribers: any,
        };
        server::run_sprint(
            &rt,
            sprint_relay::RelayConfig::default(),
            addrs,
            move |a| {
                let _ = tx.send(a);
            },
            s2,
        )
    });
    let addrs = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| std::io::Error::other("the relay did not start"))?;
    let mut results = Vec::new();
    let mut seq_base = 0;
    for (k, &rate) in d.rates.iter().enumerate() {
        eprintln!(
            "[{}/{}] 4 publishers -> relay -> 16 subscribers at {rate} transactions/s for {} s ...",
            k + 1,
            d.rates.len(),
            d.seconds
        );
        // Fresh subscribers each step; the previous ones are closed.
        let args = LoadArgs {
            publishers: addrs.publishers,
            subscribers: addrs.subscribers,
            rate,
            seconds: d.seconds,
            pubs: 4,
            subs: 16,
            cpu: gen_cpu,
            seq_base,
        };
        seq_base += rate / 2 + (rate as f64 * d.seconds) as u64;
        let r = std::thread::spawn(move || load(&args))
            .join()
            .map_err(|_| std::io::Error::other("the generator panicked"))??;
        results.push(r);
    }
    stop.store(true, Ordering::Release);
    let finished = server
        .join()
        .map_err(|_| std::io::Error::other("the relay panicked"))??;
    println!(
        "{:>8} {:>12} {:>9} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9}",
        "rate/s",
        "delivered/s",
        "deliv %",
        "p50 µs",
        "p95 µs",
        "p99 µs",
        "p99.9 µs",
        "dups",
        "corrupt"
    );
    for r in &results {
        println!(
            "{:>8} {:>12.0} {:>9.3} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>6} {:>9}",
            r.offered_rate,
            r.delivered_per_s,
            r.delivered_fraction * 100.0,
            r.p50_us,
            r.p95_us,
            r.p99_us,
            r.p999_us,
            r.duplicates,
            r.corrupted
        );
    }
    let c = finished.counters;
    println!(
        "relay: {} frames, {} relayed, {} duplicates, {} deliveries, {} malformed, {} slow subscribers dropped",
        c.frames,
        c.relayed,
        c.duplicates,
        c.deliveries,
        c.bad_magic + c.bad_checksum + c.oversize + c.bad_command + c.undecodable,
        c.dropped_subscribers
    );
    if let Some(l) = finished.latency {
        println!(
            "relay latency (arrival to write): p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs over {} deliveries",
            l.p50_ns as f64 / 1e3,
            l.p99_ns as f64 / 1e3,
            l.p999_ns as f64 / 1e3,
            l.count
        );
    }
    Ok(())
}

mod report {
    use super::*;
    use plotters::prelude::*;
    use std::process::{Child, Command, Stdio};

    /// One row of the table.
    #[derive(Debug, Clone, Serialize)]
    pub struct Row {
        server: String,
        load: LoadResult,
        /// Server CPU over the run, in cores.
        server_cpu: f64,
        /// Server CPU per delivered frame, µs.
        server_cpu_us_per_delivery: f64,
        rss_mb: f64,
        /// Global allocations in the measured window (after the warm-up),
        /// as counted: a ratio rounded to 0.000 hid a few.
        allocations: Option<u64>,
        /// The same per message relayed in the window.
        allocations_per_message: f64,
        /// The server's minor page faults in the measured window.
        page_faults: u64,
    }

    /// (utime + stime in seconds, minor faults) of a process.
    pub fn proc_stat(pid: u32) -> Option<(f64, u64)> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let f: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((ticks / hz, f.get(7)?.parse().ok()?))
    }

    fn rss_mb(pid: u32) -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    pub struct Server(pub Child);

    impl Server {
        /// SIGTERM, then everything it printed (its last line is its
        /// summary).
        pub fn stop(&mut self) -> String {
            // SAFETY: a signal to our own child's pid.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let mut out = String::new();
            if let Some(o) = self.0.stdout.as_mut() {
                let _ = o.read_to_string(&mut out);
            }
            out
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    pub fn start(r: &ReportArgs, server: &str, port: u16) -> std::io::Result<Server> {
        let mut c = Command::new(&r.relay_bin);
        c.args(["--cpu", "0", "--decode", &r.decode])
            .args(["--publishers", &format!("127.0.0.1:{port}")])
            .args(["--subscribers", &format!("127.0.0.1:{}", port + 1)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        match server {
            "tokio" => c.args(["--runtime", "tokio"]),
            "turbo-nort" => c.args(["--runtime", "sprint", "--level", "turbo", "--no-rt"]),
            // Between Basic and Turbo, on the relay's own latency.
            "adaptive" => c
                .args(["--runtime", "sprint", "--level", "basic"])
                .env("SPRINT_ADAPTIVE", "true")
                .env("SPRINT_ADAPTIVE_OBJECTIVE", "relay_latency p99 < 50us")
                .env("SPRINT_ADAPTIVE_MIN_LEVEL", "basic")
                .env("SPRINT_ADAPTIVE_MAX_LEVEL", "turbo"),
            level => c.args(["--runtime", "sprint", "--level", level]),
        };
        let child = Server(c.spawn().map_err(|e| {
            std::io::Error::other(format!(
                "cannot start {} (build it: cargo build --release -p sprint-relay): {e}",
                r.relay_bin
            ))
        })?);
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port + 1)).is_err() {
            if Instant::now() > until {
                return Err(std::io::Error::other(format!(
                    "{server} did not start listening"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(child)
    }

    fn point(r: &ReportArgs, server: &str, rate: u64, port: u16) -> std::io::Result<Row> {
        let mut s = start(r, server, port)?;
        let pid = s.0.id();
        let (cpu0, _) = proc_stat(pid).unwrap_or_default();
        let t0 = Instant::now();
        // The server's faults from the end of the warm-up (connections and
        // their buffers are set up by then), and a mark of its allocations.
        let at_measure = std::sync::Arc::new(std::sync::Mutex::new(None));
        let at = at_measure.clone();
        let args = LoadArgs {
            publishers: format!("127.0.0.1:{port}").parse().unwrap(),
            subscribers: format!("127.0.0.1:{}", port + 1).parse().unwrap(),
            rate,
            seconds: r.seconds,
            pubs: 4,
            subs: 16,
            cpu: 1,
            seq_base: 0,
        };
        // On a thread of its own: it pins itself to CPU 1, and the servers
        // this thread starts must not inherit that.
        let load = std::thread::spawn(move || {
            load_marked(&args, move || {
                *at.lock().unwrap_or_else(|e| e.into_inner()) = proc_stat(pid);
                // SAFETY: a signal to the child's pid.
                unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
            })
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the generator panicked")));
        let wall = t0.elapsed().as_secs_f64();
        let (cpu1, faults1) = proc_stat(pid).unwrap_or_default();
        let faults0 = at_measure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(faults1, |(_, f)| f);
        let rss = rss_mb(pid);
        // SAFETY: signals to the child's pid: a last allocation mark, then
        // stop.
        unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(50));
        let out = s.stop();
        let load = load?;
        let lines: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let marks: Vec<u64> = lines.iter().filter_map(|v| v["mark"].as_u64()).collect();
        // Allocations in the measured window, per message relayed in it.
        let allocations = match marks.as_slice() {
            [a, b, ..] => Some(b - a),
            _ => None,
        };
        let allocations_per_message = match allocations {
            Some(n) => n as f64 / load.messages.max(1) as f64,
            None => f64::NAN,
        };
        let deliveries = (load.delivered_per_s * r.seconds).max(1.0);
        Ok(Row {
            server: server.to_string(),
            server_cpu: (cpu1 - cpu0) / wall,
            server_cpu_us_per_delivery: (cpu1 - cpu0) * 1e6 / deliveries,
            rss_mb: rss,
            allocations,
            allocations_per_message,
            page_faults: faults1 - faults0,
            load,
        })
    }

    fn plot(rows: &[Row], out: &str) -> Result<(), Box<dyn std::error::Error>> {
        let servers: Vec<&str> = {
            let mut v: Vec<&str> = rows.iter().map(|r| r.server.as_str()).collect();
            v.dedup();
            v
        };
        let colors = [
            &BLACK,
            &RED,
            &BLUE,
            &GREEN,
            &MAGENTA,
            &CYAN,
            &RGBColor(200, 120, 0),
        ];
        // p99 against offered load.
        let path = format!("{out}/p99_vs_load.svg");
        let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_rate = rows.iter().map(|r| r.load.offered_rate).max().unwrap_or(1) as f64;
        let max_p99 = rows.iter().map(|r| r.load.p99_us).fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption("relay p99 latency against offered load", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..max_rate * 1.05, (1f64..max_p99 * 2.0).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("offered transactions/s")
            .y_desc("p99 µs (log)")
            .draw()?;
        for (k, s) in servers.iter().enumerate() {
            let c = colors[k % colors.len()];
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.server == *s)
                .map(|r| (r.load.offered_rate as f64, r.load.p99_us.max(1.0)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(*s)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE)
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        // Latency CDF per server at each one's highest rate delivered in full.
        let path = format!("{out}/latency_cdf.svg");
        let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_us = rows.iter().map(|r| r.load.p999_us).fold(10.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "relay latency CDF (each at its highest rate delivered ≥ 99.9 %)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((1f64..max_us * 2.0).log_scale(), 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("latency µs (log)")
            .y_desc("fraction")
            .draw()?;
        for (k, s) in servers.iter().enumerate() {
            let c = colors[k % colors.len()];
            let Some(best) = rows
                .iter()
                .filter(|r| r.server == *s && r.load.delivered_fraction >= 0.999)
                .max_by_key(|r| r.load.offered_rate)
            else {
                continue;
            };
            chart
                .draw_series(LineSeries::new(
                    best.load.cdf.iter().map(|(x, y)| (x.max(1.0), *y)),
                    c.stroke_width(2),
                ))?
                .label(format!("{s} @ {}/s", best.load.offered_rate))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE)
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }

    /// A server, the highest rate it sustained, and the first rate it did
    /// not with what happened there.
    type Saturation = (String, u64, Option<(u64, String)>);

    pub fn run(r: &ReportArgs) {
        if let Err(e) = std::fs::create_dir_all(&r.out) {
            eprintln!("report: cannot create {}: {e}", r.out);
            std::process::exit(1);
        }
        let mut rows = Vec::new();
        let total = r.servers.len() * r.rates.len();
        let mut port = 18_333u16;
        // Per server: the highest rate kept up with and the first one
        // that was not, with what happened there.
        let mut saturation: Vec<Saturation> = Vec::new();
        let mut done = 0;
        for server in &r.servers {
            let mut rates = r.rates.clone();
            let (mut sustained, mut failed) = (0u64, None);
            let mut k = 0;
            while k < rates.len() {
                let rate = rates[k];
                k += 1;
                done += 1;
                eprintln!(
                    "[{done}/{}] {server} at {rate}/s ({} s)",
                    total.max(done),
                    r.seconds
                );
                port += 2;
                let ok = match point(r, server, rate, port) {
                    Ok(row) => {
                        let l = &row.load;
                        let ok =
                            l.delivered_fraction >= 0.999 && l.p99_us <= r.keep_up_p99_ms * 1e3;
                        if !ok && failed.is_none() {
                            failed = Some((
                                rate,
                                format!(
                                    "{:.1} % delivered, {} subscriber(s) dropped as slow, p99 {:.1} ms",
                                    l.delivered_fraction * 100.0,
                                    l.closed_subscribers,
                                    l.p99_us / 1e3
                                ),
                            ));
                        }
                        rows.push(row);
                        ok
                    }
                    Err(e) => {
                        eprintln!("  {server} at {rate}/s failed: {e}");
                        if failed.is_none() {
                            failed = Some((rate, e.to_string()));
                        }
                        false
                    }
                };
                if ok && failed.is_none() {
                    sustained = sustained.max(rate);
                }
                // The ladder: past the listed rates, a quarter more each
                // step (rounded to 10 000/s) while the server keeps up.
                if k == rates.len() && ok && failed.is_none() && r.until_fail > 0 {
                    let next = (rate * 5 / 4).div_ceil(10_000) * 10_000;
                    if next <= r.until_fail {
                        rates.push(next);
                    }
                }
            }
            saturation.push((server.clone(), sustained, failed));
        }
        println!(
            "{:>11} {:>8} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9} {:>7} {:>10} {:>7}",
            "server",
            "rate/s",
            "delivered/s",
            "deliv %",
            "p50 µs",
            "p95 µs",
            "p99 µs",
            "p99.9 µs",
            "CPU",
            "µs/deliv",
            "RSS MB",
            "allocs",
            "faults"
        );
        for x in &rows {
            let l = &x.load;
            println!(
                "{:>11} {:>8} {:>12.0} {:>8.3} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>7.2} {:>9.3} {:>7.1} {:>10} {:>7}",
                x.server, l.offered_rate, l.delivered_per_s, l.delivered_fraction * 100.0,
                l.p50_us, l.p95_us, l.p99_us, l.p999_us, x.server_cpu,
                x.server_cpu_us_per_delivery, x.rss_mb,
                x.allocations.map_or("-".to_string(), |n| n.to_string()), x.page_faults
            );
            if l.closed_subscribers > 0 {
                println!(
                    "{:>11} the relay dropped {} subscriber(s) as slow",
                    "", l.closed_subscribers
                );
            }
            if l.duplicates + l.corrupted > 0 || (l.missing > 0 && l.delivered_fraction > 0.999) {
                println!(
                    "{:>11} integrity: {} duplicates, {} corrupted, {} missing",
                    "", l.duplicates, l.corrupted, l.missing
                );
            }
        }
        let gen: Vec<String> = rows
            .iter()
            .map(|x| {
                format!(
                    "{}@{}: {:.2} cores, {:.0} % of its time idle, send lag p99 {:.1} µs",
                    x.server,
                    x.load.offered_rate,
                    x.load.generator_cpu,
                    x.load.generator_idle * 100.0,
                    x.load.send_lag_p99_us
                )
            })
            .collect();
        println!("generator: {}", gen.join("; "));
        println!(
            "saturation (the highest rate kept up with: >= 99.9 % delivered at p99 <= {} ms; and the first one not):",
            r.keep_up_p99_ms
        );
        for (server, sustained, failed) in &saturation {
            match failed {
                Some((rate, why)) => {
                    println!("{server:>11}: sustained {sustained}/s; at {rate}/s: {why}")
                }
                None => println!("{server:>11}: sustained {sustained}/s, every rate tried"),
            }
        }
        let json = format!("{}/report.json", r.out);
        if let Err(e) = std::fs::write(
            &json,
            serde_json::to_string_pretty(&rows).unwrap_or_default(),
        ) {
            eprintln!("report: cannot write {json}: {e}");
        }
        if let Err(e) = plot(&rows, &r.out) {
            eprintln!("report: plots failed: {e}");
        }
        eprintln!(
            "wrote {json}, {0}/p99_vs_load.svg and {0}/latency_cdf.svg",
            r.out
        );
    }
}
