//! The `report` mode: the relay server (`--relay-bin`) on CPU 0 at each
//! level and on tokio, at rising offered rates (and past them, with
//! `--until-fail`, while a server keeps up), the generator on CPU 1.
//! Around each load run it reads the server's CPU, page faults, resident
//! memory and allocation marks; then it prints the table (throughput,
//! latency percentiles, server CPU, RSS, global allocations per message,
//! page faults), the generator's own slack and each server's saturation
//! point, and writes `report.json` and the plots.
//!
//! The other modes that print a report are beside it: `step`
//! ([`step`]), `demo` ([`demo`]); the relay as a child process is
//! [`process`], the plots [`plot`].

pub mod demo;
mod plot;
pub mod process;
pub mod step;

use crate::measure::LoadResult;
use crate::{load, LoadArgs, ReportArgs};
use process::{proc_stat, rss_mb, start};
use serde::Serialize;
use std::time::{Duration, Instant};

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
        load::run_marked(&args, move || {
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
                    let ok = l.delivered_fraction >= 0.999 && l.p99_us <= r.keep_up_p99_ms * 1e3;
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
    if let Err(e) = plot::plot(&rows, &r.out) {
        eprintln!("report: plots failed: {e}");
    }
    eprintln!(
        "wrote {json}, {0}/p99_vs_load.svg and {0}/latency_cdf.svg",
        r.out
    );
}
