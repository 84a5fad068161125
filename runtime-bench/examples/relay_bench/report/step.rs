//! The `step` mode: a load step (idle, a burst, idle) against the relay
//! server at fixed Basic, at fixed Turbo and with the adaptive controller
//! between them, the three interleaved over several runs. It prints the
//! median and spread of the burst's p99 and p95, the delivered share, and
//! the server's CPU while idle after the burst (where the adaptive
//! controller should have stepped down), then each adaptive run's path
//! through the levels.

use super::process;
use crate::{load, LoadArgs, ReportArgs, StepArgs};
use std::time::Duration;

/// Runs the step against each server and prints the table.
pub fn run(st: &StepArgs) -> std::io::Result<()> {
    let r = ReportArgs {
        relay_bin: st.relay_bin.clone(),
        rates: vec![st.rate],
        servers: vec![],
        seconds: st.burst,
        decode: "on".into(),
        out: String::new(),
        until_fail: 0,
        keep_up_p99_ms: 100.0,
        runs: 1,
        disturbed_lag_us: f64::INFINITY,
        disturbed_wait_pct: f64::INFINITY,
        generator_bound_pct: 50.0,
        per_run: false,
        send_tick_us: load::SEND_TICK_US,
        generator_cpu: 1,
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
            let mut s = process::start(&r, server, port)?;
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
                send_tick_us: load::SEND_TICK_US,
            };
            let burst = std::thread::spawn(move || load::run(&args))
                .join()
                .map_err(|_| std::io::Error::other("the generator panicked"))??;
            // Idle CPU once the load is gone: the second half of the idle
            // time (the adaptive controller needs its down-streaks).
            std::thread::sleep(Duration::from_secs_f64(st.after / 2.0));
            let (c0, _) = process::proc_stat(pid).unwrap_or_default();
            std::thread::sleep(Duration::from_secs_f64(st.after / 2.0));
            let (c1, _) = process::proc_stat(pid).unwrap_or_default();
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
