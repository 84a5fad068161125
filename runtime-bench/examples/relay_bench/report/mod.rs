//! The `report` mode: every server (`--servers`: tokio, monoio, glommio
//! and Sprint's levels, each the same relay code in the relay server
//! binary `--relay-bin`, its runtime's thread pinned to CPU 0) at each
//! offered rate (`--rates`), the generator on CPU 1, over `--runs` runs
//! INTERLEAVED: each run takes every rate in turn and every server once
//! at each, the servers' order rotated from one run to the next, so that
//! whatever disturbs the machine for a while falls on several servers and
//! not on all the runs of one. Around each load run it reads the server's
//! CPU, page faults, resident memory and allocation marks.
//!
//! The generator measures its own busy share (its time sending and
//! reading, against its CPU time): a run where it is over
//! `--generator-bound-pct` is *generator-bound*, its figures limited by
//! the generator rather than the relay; each point says which side
//! limited it, and the summary marks generator-bound cells (‡).
//!
//! The generator measures its own lateness (its send lag p99), and the
//! report how long the server's thread on CPU 0 waited, runnable, for
//! that CPU: a run where the first is over `--disturbed-lag-us`, or the
//! second over `--disturbed-wait-pct` of the time, is *disturbed* (the
//! generator or the server did not get its CPU on time, so the latency
//! measured is partly something else's) and is left out of the medians,
//! and listed. The tables
//! ([`tables`]) give, for each server and rate, the median and the range
//! over the runs kept, then the summary in the shape of issue 15's
//! table; `--until-fail` goes on past the listed rates, in each run, with
//! the servers that kept up, and the saturation line gives each server's
//! highest rate kept up in each run. `report.json` holds every run's row
//! (`summary.json` the points), and the plots show each point's median
//! run.
//!
//! The other modes that print a report are beside it: `step`
//! ([`step`]), `demo` ([`demo`]); the relay as a child process is
//! [`process`], the plots [`plot`].

pub mod demo;
mod plot;
pub mod process;
pub mod step;
mod tables;

use crate::measure::LoadResult;
use crate::{load, LoadArgs, ReportArgs};
use process::{proc_stat, rss_mb, run_queue_wait_s, start};
use serde::Serialize;
use std::time::{Duration, Instant};

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    server: String,
    /// The run it belongs to, from 0.
    run: usize,
    /// The generator's send lag p99 was over `--disturbed-lag-us`: left
    /// out of the medians.
    disturbed: bool,
    /// The generator was busy over `--generator-bound-pct` of its time:
    /// this run's figures are limited by the generator, not the relay.
    generator_bound: bool,
    load: LoadResult,
    /// Server CPU over the run, in cores.
    server_cpu: f64,
    /// Share of the measured window the server's thread on CPU 0 spent
    /// runnable but waiting for it (taken by something else): over
    /// `--disturbed-wait-pct`, the run is disturbed.
    server_wait_share: f64,
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
        cpu: r.generator_cpu,
        seq_base: 0,
        send_tick_us: r.send_tick_us,
    };
    // On a thread of its own: it pins itself to CPU 1, and the servers
    // this thread starts must not inherit that.
    let load = std::thread::spawn(move || {
        load::run_marked(&args, move || {
            *at.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((proc_stat(pid), run_queue_wait_s(pid), Instant::now()));
            // SAFETY: a signal to the child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
        })
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("the generator panicked")));
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, faults1) = proc_stat(pid).unwrap_or_default();
    let wait1 = run_queue_wait_s(pid);
    let mark = *at_measure.lock().unwrap_or_else(|e| e.into_inner());
    let faults0 = mark.and_then(|(s, _, _)| s).map_or(faults1, |(_, f)| f);
    let server_wait_share = match mark {
        Some((_, Some(w0), t)) => (wait1.unwrap_or(w0) - w0) / t.elapsed().as_secs_f64().max(1e-3),
        _ => 0.0,
    };
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
        run: 0,
        disturbed: false,
        generator_bound: false,
        server_cpu: (cpu1 - cpu0) / wall,
        server_wait_share,
        server_cpu_us_per_delivery: (cpu1 - cpu0) * 1e6 / deliveries,
        rss_mb: rss,
        allocations,
        allocations_per_message,
        page_faults: faults1 - faults0,
        load,
    })
}

/// In one run, a server's highest rate kept up with and the first one
/// that was not, with what happened there.
#[derive(Debug, Clone, Default)]
struct Kept {
    sustained: u64,
    failed: Option<(u64, String)>,
}

/// Whether the servers' runtimes are all in the relay binary: a clear
/// error (how to build it) if not.
fn check_runtimes(r: &ReportArgs) -> Result<(), String> {
    let build = "cargo build --release -p sprint-relay --features monoio,glommio";
    let out = std::process::Command::new(&r.relay_bin)
        .arg("--list-runtimes")
        .output()
        .map_err(|e| format!("cannot run {}: {e}; build it with: {build}", r.relay_bin))?;
    if !out.status.success() {
        return Err(format!(
            "{} does not list its runtimes (an older build?); rebuild it with: {build}",
            r.relay_bin
        ));
    }
    let has = String::from_utf8_lossy(&out.stdout);
    let has: Vec<&str> = has.lines().collect();
    let runtime = |s: &str| match s {
        "tokio" | "monoio" | "glommio" => s.to_string(),
        _ => "sprint".to_string(),
    };
    let missing: Vec<String> = r
        .servers
        .iter()
        .map(|s| runtime(s))
        .filter(|rt| !has.contains(&rt.as_str()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} was built without {} (it has {}); build it with: {build}",
            r.relay_bin,
            missing.join(", "),
            has.join(", ")
        ))
    }
}

/// Why a loaded machine disturbs the runs even when the other work on it
/// is niced, if the kernel groups processes by session: with
/// `sched_autogroup_enabled`, a nice value counts only within its
/// session, and each session shares a CPU equally with the generator's
/// (measured: the generator's busy loop got 0.35 of its CPU beside two
/// niced processes of other sessions, and every run was disturbed).
fn autogroup_note() -> Option<&'static str> {
    let on = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .is_ok_and(|v| v.trim() == "1");
    on.then_some(
        "note: kernel.sched_autogroup_enabled is 1: other sessions' work shares the CPUs \
         with this run equally whatever its nice value; for undisturbed runs keep the machine \
         otherwise idle, or have the other sessions write 19 to /proc/self/autogroup (or set \
         the sysctl to 0 while this runs)",
    )
}

pub fn run(r: &ReportArgs) {
    if let Err(e) = std::fs::create_dir_all(&r.out) {
        eprintln!("report: cannot create {}: {e}", r.out);
        std::process::exit(1);
    }
    if let Err(e) = check_runtimes(r) {
        eprintln!("report: {e}");
        std::process::exit(1);
    }
    if let Some(note) = autogroup_note() {
        eprintln!("report: {note}");
    }
    let runs = r.runs.max(1);
    let n = r.servers.len();
    let mut rows = Vec::new();
    // (run, server, rate, why) of each point that did not run.
    let mut failures: Vec<(usize, String, u64, String)> = Vec::new();
    // Per run, per server (in `r.servers`' order).
    let mut kept: Vec<Vec<Kept>> = vec![vec![Kept::default(); n]; runs];
    let total = runs * n * r.rates.len();
    let mut port = 18_333u16;
    let mut done = 0;
    for (run, kept) in kept.iter_mut().enumerate() {
        // The servers' order, rotated by one each run.
        let order: Vec<usize> = (0..n).map(|i| (i + run) % n.max(1)).collect();
        let mut rates = r.rates.clone();
        let mut k = 0;
        while k < rates.len() {
            let rate = rates[k];
            k += 1;
            // Past the listed rates (`--until-fail`), only the servers
            // that have kept up so far in this run.
            let ladder = k > r.rates.len();
            for &i in &order {
                let server = &r.servers[i];
                let state = &mut kept[i];
                if ladder && state.failed.is_some() {
                    continue;
                }
                done += 1;
                eprintln!(
                    "[run {}/{runs}] [{done}/{}] {server} at {rate}/s ({} s)",
                    run + 1,
                    total.max(done),
                    r.seconds
                );
                port = port.checked_add(2).unwrap_or(18_335);
                match point(r, server, rate, port) {
                    Ok(mut row) => {
                        row.run = run;
                        row.generator_bound =
                            row.load.generator_busy * 100.0 > r.generator_bound_pct;
                        row.disturbed = row.load.send_lag_p99_us > r.disturbed_lag_us
                            || row.server_wait_share * 100.0 > r.disturbed_wait_pct;
                        let l = &row.load;
                        let ok =
                            l.delivered_fraction >= 0.999 && l.p99_us <= r.keep_up_p99_ms * 1e3;
                        if row.disturbed {
                            eprintln!(
                                "  disturbed: the generator's send lag p99 was {:.0} µs, the server waited for a CPU {:.1} % of the time",
                                l.send_lag_p99_us,
                                row.server_wait_share * 100.0
                            );
                        }
                        if ok && state.failed.is_none() {
                            state.sustained = state.sustained.max(rate);
                        } else if state.failed.is_none() {
                            state.failed = Some((
                                rate,
                                format!(
                                    "{:.1} % delivered, {} subscriber(s) dropped as slow, p99 {:.1} ms, generator busy {:.0} %{}{}",
                                    l.delivered_fraction * 100.0,
                                    l.closed_subscribers,
                                    l.p99_us / 1e3,
                                    l.generator_busy * 100.0,
                                    if row.generator_bound { " (generator-bound)" } else { "" },
                                    if row.disturbed { " (disturbed)" } else { "" }
                                ),
                            ));
                        }
                        rows.push(row);
                    }
                    Err(e) => {
                        eprintln!("  {server} at {rate}/s failed: {e}");
                        if state.failed.is_none() {
                            state.failed = Some((rate, e.to_string()));
                        }
                        failures.push((run, server.clone(), rate, e.to_string()));
                    }
                }
            }
            // The ladder: past the listed rates, a quarter more each step
            // (rounded to 10 000/s) while a server keeps up.
            if k == rates.len() && r.until_fail > 0 && kept.iter().any(|s| s.failed.is_none()) {
                let next = (rate * 5 / 4).div_ceil(10_000) * 10_000;
                if next <= r.until_fail {
                    rates.push(next);
                }
            }
        }
    }
    if r.per_run {
        print_rows(&rows);
    }
    let points = tables::points(&rows, &r.servers);
    tables::print_points(
        &points,
        &rows,
        r.disturbed_lag_us,
        r.disturbed_wait_pct,
        r.generator_bound_pct,
    );
    print_problems(&rows);
    if rows.iter().any(|x| x.disturbed) {
        if let Some(note) = autogroup_note() {
            println!("{note}");
        }
    }
    for (run, server, rate, why) in &failures {
        println!("  run {} {server} at {rate}/s did not run: {why}", run + 1);
    }
    let gen: Vec<String> = r
        .servers
        .iter()
        .map(|s| {
            let of = |f: fn(&Row) -> f64| {
                tables::Spread::of(rows.iter().filter(|x| &x.server == s).map(f))
                    .map_or("—".to_string(), |v| v.cell(2))
            };
            format!(
                "{s}: {} cores, busy {} % (turns with work: {} % of wall-clock time)",
                of(|x| x.load.generator_cpu),
                of(|x| x.load.generator_busy * 100.0),
                of(|x| x.load.generator_busy_wall * 100.0)
            )
        })
        .collect();
    println!(
        "generator over every run (CPU: a busy-polling loop takes its whole core; busy: its time sending and reading, against its CPU time): {}",
        gen.join("; ")
    );
    println!(
        "saturation (the highest rate kept up with: >= 99.9 % delivered at p99 <= {} ms; per run, and the first rate not):",
        r.keep_up_p99_ms
    );
    for (i, server) in r.servers.iter().enumerate() {
        let each: Vec<String> = kept
            .iter()
            .map(|run| match &run[i].failed {
                Some((rate, why)) => format!("{}/s (at {rate}/s: {why})", run[i].sustained),
                None => format!("{}/s (every rate tried)", run[i].sustained),
            })
            .collect();
        println!("{server:>11}: {}", each.join("; "));
    }
    tables::print_summary(&points, &r.servers, &r.rates, r.generator_bound_pct);
    let json = format!("{}/report.json", r.out);
    if let Err(e) = std::fs::write(
        &json,
        serde_json::to_string_pretty(&rows).unwrap_or_default(),
    ) {
        eprintln!("report: cannot write {json}: {e}");
    }
    let summary = format!("{}/summary.json", r.out);
    if let Err(e) = std::fs::write(
        &summary,
        serde_json::to_string_pretty(&points).unwrap_or_default(),
    ) {
        eprintln!("report: cannot write {summary}: {e}");
    }
    if let Err(e) = plot::plot(&tables::median_runs(&rows, &points), &r.out) {
        eprintln!("report: plots failed: {e}");
    }
    eprintln!(
        "wrote {json}, {summary}, {0}/p99_vs_load.svg and {0}/latency_cdf.svg (each point's median run)",
        r.out
    );
}

/// Every run's row, in the order run (`--per-run`).
fn print_rows(rows: &[Row]) {
    println!(
        "{:>4} {:>11} {:>8} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>9} {:>7} {:>10} {:>7} {:>8} {:>7}",
        "run",
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
        "faults",
        "lag µs",
        "busy %"
    );
    for x in rows {
        let l = &x.load;
        println!(
            "{:>4} {:>11} {:>8} {:>12.0} {:>8.3} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>7.2} {:>9.3} {:>7.1} {:>10} {:>7} {:>7.0}{} {:>6.0}{}",
            x.run + 1, x.server, l.offered_rate, l.delivered_per_s, l.delivered_fraction * 100.0,
            l.p50_us, l.p95_us, l.p99_us, l.p999_us, x.server_cpu,
            x.server_cpu_us_per_delivery, x.rss_mb,
            x.allocations.map_or("-".to_string(), |n| n.to_string()), x.page_faults,
            l.send_lag_p99_us, if x.disturbed { "*" } else { " " },
            l.generator_busy * 100.0, if x.generator_bound { "‡" } else { " " }
        );
    }
}

/// Runs where the relay dropped subscribers as slow, or what the
/// subscribers got was not what was sent.
fn print_problems(rows: &[Row]) {
    for x in rows {
        let l = &x.load;
        let at = format!("  run {} {} at {}/s:", x.run + 1, x.server, l.offered_rate);
        if l.closed_subscribers > 0 {
            println!(
                "{at} the relay dropped {} subscriber(s) as slow",
                l.closed_subscribers
            );
        }
        if l.reads_timestamped < 1.0 {
            println!(
                "{at} {:.1} % of the subscribers' reads had no kernel timestamp: their latency ends at the read",
                (1.0 - l.reads_timestamped) * 100.0
            );
        }
        if l.duplicates + l.corrupted + l.reordered > 0
            || (l.missing > 0 && l.delivered_fraction > 0.999)
        {
            println!(
                "{at} integrity: {} duplicates, {} corrupted, {} reordered, {} missing",
                l.duplicates, l.corrupted, l.reordered, l.missing
            );
        }
    }
}
