//! The `demo` mode, the README's first command: the relay on Sprint in
//! this process (worker on CPU 0, through the library), the generator on
//! CPU 1 at rising rates with fresh subscribers each, then the table of
//! what the generator measured and the relay's own counters and latency.

use crate::{load, DemoArgs, LoadArgs};
use std::net::SocketAddr;
use std::time::Duration;

/// Runs the demo and prints its table.
pub fn run(d: &DemoArgs) -> std::io::Result<()> {
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
        for line in rt.start_report().drivers() {
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
            send_tick_us: load::SEND_TICK_US,
        };
        seq_base += rate / 2 + (rate as f64 * d.seconds) as u64;
        let r = std::thread::spawn(move || load::run(&args))
            .join()
            .map_err(|_| std::io::Error::other("the generator panicked"))??;
        results.push(r);
    }
    stop.store(true, Ordering::Release);
    let finished = server
        .join()
        .map_err(|_| std::io::Error::other("the relay panicked"))??;
    println!(
        "{:>8} {:>12} {:>9} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9} {:>8}  bound by",
        "rate/s",
        "delivered/s",
        "deliv %",
        "p50 µs",
        "p95 µs",
        "p99 µs",
        "p99.9 µs",
        "dups",
        "corrupt",
        "gen busy"
    );
    for r in &results {
        println!(
            "{:>8} {:>12.0} {:>9.3} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>6} {:>9} {:>7.0}%  {}",
            r.offered_rate,
            r.delivered_per_s,
            r.delivered_fraction * 100.0,
            r.p50_us,
            r.p95_us,
            r.p99_us,
            r.p999_us,
            r.duplicates,
            r.corrupted,
            r.generator_busy * 100.0,
            if r.generator_busy > 0.5 {
                "generator"
            } else {
                "relay"
            }
        );
    }
    println!(
        "(gen busy: the generator's time sending and reading, against its CPU time; over 50 % the figures may be partly the generator's, and the row says so)"
    );
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
