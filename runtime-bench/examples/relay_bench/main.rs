//! The relay's load generator and benchmark report.
//!
//! `load`: one thread (pin it to the other core) drives 4 publishers and
//! 16 subscribers over TCP with mio. Sends are paced open-loop: message
//! `i` is due at `start + i / rate` whatever the relay does. Latency is
//! measured from that intended time, so a stall cannot hide queued
//! messages (no coordinated omission), to the frame's arrival in the
//! subscriber's socket (the kernel's receive timestamp), into an HDR
//! histogram. Frames are
//! built before the run, each transaction carrying its sequence number;
//! every subscriber counts every frame once by that number (losses,
//! duplicates and per-publisher reordering are counted), checks every
//! frame's header and a deterministic sample (1 in 64 per subscriber)
//! byte for byte. The generator reports its own busy share: over half,
//! the run is marked generator-bound.
//!
//! `report`: runs the relay server (`--relay-bin`, the same relay code on
//! every runtime) on CPU 0 on tokio, monoio, glommio and at Sprint's
//! levels, at rising offered rates, with the generator on CPU 1, over
//! several interleaved runs; leaves out the runs where the generator was
//! itself late (disturbed); prints the median and range of each measure
//! and a summary in issue 15's shape, and writes JSON and SVG plots.
//!
//! `demo` (the README's first command) and `step` are described in
//! their modules. This file is the command line; the parts:
//!
//! - [`load`]: the generator (connections, the send and read loop);
//! - [`arrival`]: when what a subscriber reads arrived (the kernel's
//!   receive timestamp);
//! - [`frames`]: the frames sent, laid out per publisher, and the sample
//!   checked byte for byte;
//! - [`measure`]: what a run measures (pacing, latency histograms,
//!   delivery and integrity accounting, the generator's own lag and busy
//!   share);
//! - [`report`]: the modes that run the relay and print tables and plots
//!   (`report`, `step`, `demo`).
//!
//! `cargo run --release -p sprint-bench --example relay_bench -- report`

mod arrival;
mod frames;
mod load;
mod measure;
mod report;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;

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
    /// Run the relay on tokio, monoio, glommio and at Sprint's levels at
    /// rising rates, over interleaved runs.
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
    /// Sends go out in ticks of this many µs: every transaction due
    /// within a tick is sent at its start (0: each at its own time).
    #[arg(long, default_value_t = load::SEND_TICK_US)]
    send_tick_us: u64,
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
        default_value = "10000,25000,50000,100000,200000"
    )]
    rates: Vec<u64>,
    /// Servers: tokio, monoio, glommio and Sprint's levels (also
    /// turbo-nort and adaptive; `standard:w2`: Standard on 2 workers,
    /// pinned to CPUs 0 and 1). monoio and glommio need the relay built
    /// with `--features monoio,glommio`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tokio,monoio,glommio,basic,standard,enterprise,turbo"
    )]
    servers: Vec<String>,
    /// Runs, interleaved: each run takes every rate, and every server
    /// once at each rate, the servers' order rotated each run.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// A run whose generator sent late (its send lag p99) by more than
    /// this many µs is disturbed: listed, and left out of the medians.
    #[arg(long, default_value_t = 200.0)]
    disturbed_lag_us: f64,
    /// A run whose server's threads waited for a CPU (runnable, while
    /// something else had it) more than this share of the measured
    /// window, in %, is disturbed too.
    #[arg(long, default_value_t = 1.0)]
    disturbed_wait_pct: f64,
    /// A run whose generator was busy (sending and reading) over this
    /// share of its time, in %, is generator-bound: its
    /// figures are the generator's limit, not the relay's. Marked (‡),
    /// not left out.
    #[arg(long, default_value_t = 50.0)]
    generator_bound_pct: f64,
    /// Also print every run's row (RSS, allocations, page faults too).
    #[arg(long)]
    per_run: bool,
    /// Seconds measured per point.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Relay decoding on or off.
    #[arg(long, default_value = "on")]
    decode: String,
    /// The generator's CPU. The servers run on CPU 0 (`LEVEL:wN` on CPUs
    /// 0 to N-1): on a machine with more CPUs than workers, put it past
    /// them (`--servers standard,standard:w2,standard:w4
    /// --generator-cpu 4`); on this 2-CPU machine a second worker shares
    /// CPU 1 with it.
    #[arg(long, default_value_t = 1)]
    generator_cpu: usize,
    /// After the listed rates, keep raising the rate by a quarter, in each
    /// run, for the servers that keep up (see `--keep-up-p99-ms`), to
    /// find their saturation points, up to this rate; 0 stops at the
    /// listed rates.
    #[arg(long, default_value_t = 0)]
    until_fail: u64,
    /// A server keeps up at a rate when it delivers at least 99.9 % with
    /// p99 latency under this many ms (above it, a backlog is building:
    /// a server that reads less than it is sent leaves the backlog in TCP
    /// and still delivers everything, late).
    #[arg(long, default_value_t = 100.0)]
    keep_up_p99_ms: f64,
    /// The generator's send tick, µs (see `load --send-tick-us`).
    #[arg(long, default_value_t = load::SEND_TICK_US)]
    send_tick_us: u64,
    /// Where the JSON and the plots go.
    #[arg(long, default_value = "target/relay-report")]
    out: String,
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Load(a) => match load::run(&a) {
            Ok(r) => println!("{}", serde_json::to_string(&r).unwrap()),
            Err(e) => {
                eprintln!("relay_bench load: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Report(r) => report::run(&r),
        Cmd::Step(st) => {
            if let Err(e) = report::step::run(&st) {
                eprintln!("relay_bench step: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Demo(d) => {
            if let Err(e) = report::demo::run(&d) {
                eprintln!("relay_bench demo: {e}");
                std::process::exit(1);
            }
        }
    }
}
