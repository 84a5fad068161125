//! The relay as a server process: on Sprint at a level, or on tokio's
//! current-thread runtime, monoio's legacy (epoll) driver or a glommio
//! executor, on one CPU (`--cpu`), until SIGINT or SIGTERM; then it prints
//! what it counted as one JSON line (the benchmark harness reads it).
//! `--runtime tokio|monoio|glommio` needs the feature of that name
//! (`tokio` is on by default; `--list-runtimes` prints what this binary
//! has).
//!
//! `cargo run --release -p sprint-relay -- --runtime sprint --level turbo`

use clap::Parser;
use sprint::memory::counting::{self, Counting};
use sprint_relay::server::{self, Addrs};
use sprint_relay::{RelayConfig, SlowPolicy};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

// Counts global allocations, so the harness can report them per message.
#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Parser)]
#[command(about = "A Bitcoin transaction relay on Sprint, tokio, monoio or glommio")]
struct Args {
    /// `sprint`, `tokio`, `monoio` or `glommio`.
    #[arg(long, default_value = "sprint")]
    runtime: String,
    /// Print the runtimes this binary was built with, one a line, and
    /// exit.
    #[arg(long)]
    list_runtimes: bool,
    /// Sprint's level.
    #[arg(long, default_value = "standard")]
    level: String,
    /// Where publishers connect.
    #[arg(long, default_value = "127.0.0.1:8333")]
    publishers: std::net::SocketAddr,
    /// Where subscribers connect.
    #[arg(long, default_value = "127.0.0.1:8334")]
    subscribers: std::net::SocketAddr,
    /// Serve /metrics here (Sprint only).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Decode transactions (`on`) or key duplicates by the payload hash
    /// (`off`: no allocation per message).
    #[arg(long, default_value = "on")]
    decode: String,
    /// Slow subscribers: `drop` or `skip`.
    #[arg(long, default_value = "drop")]
    slow: SlowPolicy,
    /// Bytes each subscriber's queue holds.
    #[arg(long, default_value_t = 4 << 20)]
    queue_bytes: usize,
    /// Milliseconds a subscriber's queue may stay over half full (the
    /// publishers waiting meanwhile) before it counts as slow.
    #[arg(long, default_value_t = 500)]
    slow_after_ms: u64,
    /// Transactions remembered for duplicate detection.
    #[arg(long, default_value_t = 1_000_000)]
    seen: usize,
    /// Publishers served at once; more are refused (closed, counted).
    #[arg(long, default_value_t = 1_024)]
    max_publishers: usize,
    /// Subscribers served at once; more are refused (closed, counted).
    #[arg(long, default_value_t = 4_096)]
    max_subscribers: usize,
    /// Seconds a publisher may go without completing a frame (from its
    /// connection or its previous frame) before it is closed.
    #[arg(long, default_value_t = 120)]
    publisher_idle_s: u64,
    /// Seconds a frame in progress may take beyond its size at
    /// --min-frame-rate before its publisher is closed.
    #[arg(long, default_value_t = 10)]
    frame_grace_s: u64,
    /// The slowest a frame in progress may arrive, in bytes per second.
    #[arg(long, default_value_t = 10_000)]
    min_frame_rate: u64,
    /// Milliseconds a connection's queue or buffer stays idle before its
    /// memory is given back.
    #[arg(long, default_value_t = 2_000)]
    trim_after_ms: u64,
    /// The Bitcoin network: mainnet, testnet, testnet4, signet or regtest
    /// (its magic frames the publishers' and the peers' messages).
    #[arg(long, default_value = "mainnet")]
    network: sprint_relay::p2p::Network,
    /// Listen for Bitcoin P2P peers here (nodes, other relays). Without it
    /// and without --connect the relay speaks only to publishers and
    /// subscribers.
    #[arg(long)]
    p2p: Option<std::net::SocketAddr>,
    /// Connect to a Bitcoin P2P peer (repeatable); reconnects when it goes.
    #[arg(long = "connect", value_name = "HOST:PORT")]
    connect: Vec<String>,
    /// Seconds a peer has to complete the handshake.
    #[arg(long, default_value_t = 60)]
    handshake_timeout_s: u64,
    /// Seconds between pings to a peer.
    #[arg(long, default_value_t = 120)]
    ping_interval_s: u64,
    /// Peers at once (inbound beyond it are refused).
    #[arg(long, default_value_t = 1_024)]
    max_peers: usize,
    /// The CPU to run on.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// Sprint: workers to run on, each with its own listeners on the same
    /// ports (SO_REUSEPORT) and its share of the connections; the workers
    /// decide together which transactions are new, over Sprint's mesh.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    workers: u16,
    /// Sprint with `--workers` above 1: the CPUs to pin the workers to,
    /// comma-separated (by default the level's placement decides).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// Sprint: busy-poll without the real-time class (SCHED_OTHER).
    #[arg(long)]
    no_rt: bool,
}

fn fail(msg: String) -> ! {
    eprintln!("relay: {msg}");
    std::process::exit(2);
}

/// The runtimes this binary was built with.
const RUNTIMES: &[&str] = &[
    "sprint",
    #[cfg(feature = "tokio")]
    "tokio",
    #[cfg(feature = "monoio")]
    "monoio",
    #[cfg(feature = "glommio")]
    "glommio",
];

/// The error for a runtime this binary was built without.
#[cfg(not(all(feature = "tokio", feature = "monoio", feature = "glommio")))]
fn missing(runtime: &str) -> ! {
    fail(format!(
        "--runtime {runtime}: this relay was built without the `{runtime}` feature; \
         build it with: cargo build --release -p sprint-relay --features monoio,glommio \
         (tokio is on by default)"
    ))
}

/// Pins this thread (the one the runtime will run on) to `cpu`.
#[cfg(any(feature = "tokio", feature = "monoio"))]
fn pin(cpu: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        fail(format!("cannot pin to CPU {cpu}"));
    }
}

fn main() {
    let args = Args::parse();
    if args.list_runtimes {
        for r in RUNTIMES {
            println!("{r}");
        }
        return;
    }
    let decode = match args.decode.as_str() {
        "on" => true,
        "off" => false,
        d => fail(format!("--decode must be on or off, not {d:?}")),
    };
    let mut connect = Vec::new();
    for c in &args.connect {
        use std::net::ToSocketAddrs;
        match c.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => connect.push(a),
            Ok(None) => fail(format!("--connect {c}: no address")),
            Err(e) => fail(format!("--connect {c}: {e}")),
        }
    }
    let p2p = sprint_relay::p2p::P2pConfig {
        listen: args.p2p,
        connect,
        handshake_timeout: Duration::from_secs(args.handshake_timeout_s),
        ping_interval: Duration::from_secs(args.ping_interval_s),
        max_peers: args.max_peers,
        ..Default::default()
    };
    let cfg = RelayConfig {
        decode,
        magic: args.network.magic(),
        p2p,
        seen: args.seen,
        queue_bytes: args.queue_bytes,
        slow: args.slow,
        slow_after: Duration::from_millis(args.slow_after_ms),
        max_publishers: args.max_publishers,
        max_subscribers: args.max_subscribers,
        publisher_idle: Duration::from_secs(args.publisher_idle_s),
        frame_grace: Duration::from_secs(args.frame_grace_s),
        min_frame_rate: args.min_frame_rate,
        trim_after: Duration::from_millis(args.trim_after_ms),
        workers: usize::from(args.workers),
        ..RelayConfig::default()
    };
    if args.workers > 1 && args.runtime != "sprint" {
        fail(format!(
            "--workers {}: only the Sprint relay runs on several workers (--runtime sprint)",
            args.workers
        ));
    }
    let addrs = Addrs {
        publishers: args.publishers,
        subscribers: args.subscribers,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            fail(format!("cannot handle signal {sig}: {e}"));
        }
    }
    let (peers, network) = (args.p2p, args.network);
    let ready = move |a: Addrs| {
        // Tests and the benchmark parse this line: keep its shape.
        eprintln!(
            "relay: publishers on {}, subscribers on {}",
            a.publishers, a.subscribers
        );
        eprintln!("relay: network {}", network.name());
        if let Some(p) = peers {
            eprintln!("relay: Bitcoin P2P peers on {p}");
        }
    };
    // Stdout's buffer is allocated on first use: now, not in a window the
    // harness measures.
    let _ = std::io::stdout();
    // SIGUSR1 prints the allocations so far (the harness marks the start
    // and the end of its measured window with it), and the memory sample:
    // connections, resident bytes, and resident bytes per connection
    // above the start.
    match signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for _ in signals.forever() {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let live = &server::LIVE;
                    let _ = writeln!(
                        out,
                        "{{\"mark\":{},\"connections\":{},\"rss_bytes\":{},\"rss_per_connection\":{}}}",
                        counting::allocations(),
                        live.connections.load(Ordering::Relaxed),
                        live.rss.load(Ordering::Relaxed),
                        live.rss_per_connection.load(Ordering::Relaxed),
                    );
                    let _ = out.flush();
                }
            });
        }
        Err(e) => fail(format!("cannot handle SIGUSR1: {e}")),
    }
    let start_allocs = counting::allocations();
    let (finished, transitions) = match args.runtime.as_str() {
        "sprint" => {
            let level: sprint::Level = args
                .level
                .parse()
                .unwrap_or_else(|e| fail(format!("--level: {e}")));
            let (cpu, metrics, no_rt) = (args.cpu, args.metrics_addr.clone(), args.no_rt);
            let workers = usize::from(args.workers);
            let mut b = sprint::Builder::new().level(level).workers(workers);
            if workers == 1 {
                b = b.cpus(vec![cpu]);
            } else if !args.cpus.is_empty() {
                b = b.cpus(args.cpus.clone());
            }
            let rt = b
                .configure(move |c| {
                    c.metrics_addr = metrics;
                    if no_rt {
                        c.rt_policy = sprint::config::RtPolicy::None;
                    }
                })
                .build()
                .unwrap_or_else(|e| fail(format!("cannot start Sprint: {e}")));
            for line in rt.start_report().tuning() {
                eprintln!("relay: tuning: {line}");
            }
            let f = server::run_sprint(&rt, cfg, addrs, ready, stop);
            let stats = rt.stats();
            for t in &stats.transitions {
                eprintln!("relay: level {} -> {}: {}", t.from, t.to, t.reason);
            }
            let transitions = serde_json::json!({
                "count": stats.level_transitions,
                "path": stats.transitions.iter().map(|t| format!("{}->{}", t.from, t.to)).collect::<Vec<_>>(),
                "unavailable": stats.unavailable_levels,
            });
            (f, Some(transitions))
        }
        #[cfg(feature = "tokio")]
        "tokio" => {
            pin(args.cpu);
            (server::run_tokio(cfg, addrs, ready, stop), None)
        }
        #[cfg(feature = "monoio")]
        "monoio" => {
            pin(args.cpu);
            (server::run_monoio(cfg, addrs, ready, stop), None)
        }
        // glommio pins its executor's thread itself (Placement::Fixed).
        #[cfg(feature = "glommio")]
        "glommio" => (
            server::run_glommio(cfg, addrs, ready, stop, Some(args.cpu)),
            None,
        ),
        #[cfg(not(feature = "tokio"))]
        "tokio" => missing("tokio"),
        #[cfg(not(feature = "monoio"))]
        "monoio" => missing("monoio"),
        #[cfg(not(feature = "glommio"))]
        "glommio" => missing("glommio"),
        other => fail(format!(
            "--runtime must be one of {}, not {other:?}",
            RUNTIMES.join(", ")
        )),
    };
    let finished = finished.unwrap_or_else(|e| fail(format!("{e}")));
    let allocations = counting::allocations() - start_allocs;
    let out = serde_json::json!({
        "counters": finished.counters,
        "latency": finished.latency,
        "announce_last_peer": finished.announce_last_peer,
        "tx_served": finished.tx_served,
        "allocations": allocations,
        "adaptive": transitions,
    });
    println!("{out}");
}
