//! The cost of Sprint's whole observability set on a relay-shaped path:
//! a publisher writes a 64-byte frame to a relay over a Unix socket, the
//! relay forwards it to four subscribers over their own sockets, each
//! subscriber records the frame's end-to-end latency (in a named Sprint
//! histogram) and acknowledges it, and the publisher sends the next frame
//! once all four have: the same path for every message, so that
//! instruction counts (callgrind) compare exactly.
//!
//! `--metrics on` runs with the built-in histograms, the stall detector,
//! the `/metrics` server and the end-to-end histogram; `off` with none of
//! them. `ci/bench-observability.sh` runs both under callgrind at two
//! message counts and prints instructions per message.

use clap::Parser;
use sprint::config::{IoDriver, RtPolicy};
use sprint::net::UnixStream;
use sprint::{Builder, Level};
use std::time::Instant;

#[derive(Parser)]
#[command(about = "A relay-shaped path with Sprint's observability on or off")]
struct Args {
    /// Messages relayed.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// `on` or `off`.
    #[arg(long, default_value = "on")]
    metrics: String,
    /// The histograms time one in this many operations (1: all).
    #[arg(long, default_value_t = 16)]
    sample_every: u32,
    /// `off`: the relay does not even measure its latency (the reference
    /// for what measuring it costs).
    #[arg(long, default_value = "on")]
    latency: String,
    /// The stall threshold, µs (default: the level's). Under callgrind,
    /// which runs the program some 50 times slower, the level's threshold
    /// is crossed by ordinary polls and each false stall's report (a
    /// formatted message and a log line) would be counted as the
    /// detector's cost; `ci/bench-observability.sh` raises it so that only
    /// the per-poll check is counted.
    #[arg(long)]
    stall_us: Option<u64>,
}

const SUBSCRIBERS: usize = 4;
const FRAME: usize = 64;

async fn read_frame(s: &UnixStream, buf: &mut [u8; FRAME]) -> bool {
    let mut got = 0;
    while got < FRAME {
        match s.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    true
}

fn main() {
    let args = Args::parse();
    let on = match args.metrics.as_str() {
        "on" => true,
        "off" => false,
        other => {
            eprintln!("--metrics must be on or off, not {other:?}");
            std::process::exit(2);
        }
    };
    let measure = args.latency != "off";
    let every = args.sample_every;
    let stall_us = args.stall_us;
    let rt = Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(1)
        .configure(move |c| {
            c.rt_policy = RtPolicy::None;
            // epoll: valgrind follows its system calls exactly.
            c.io_driver = IoDriver::Epoll;
            // Parking, not spinning: a spin runs as many instructions as
            // the (valgrind-slowed) clock allows, which would blur the
            // count.
            c.idle = sprint::config::IdleStrategy::Park;
            c.metrics = on;
            c.metrics_sample_every = every;
            if let Some(us) = stall_us {
                c.stall_threshold_us = us;
            }
            c.metrics_addr = on.then(|| "127.0.0.1:0".to_string());
        })
        .build()
        .unwrap_or_else(|e| {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(2);
        });
    let e2e = on.then(|| {
        sprint::metrics::histogram("relay_e2e_latency", "Frame end-to-end latency.")
            .unwrap_or_else(|e| unreachable!("a valid name: {e}"))
    });
    let epoch = Instant::now();
    let n = args.messages;
    let start = Instant::now();
    // Everything runs on the one worker (block_on only waits), so that
    // each message takes the same path whatever the timing.
    let body = async move {
        let (pub_tx, relay_rx) = UnixStream::pair().unwrap();
        let (ack_tx, mut ack_rx) = sprint::sync::mpsc::channel::<()>(SUBSCRIBERS);
        let mut outs = Vec::new();
        let mut subs = Vec::new();
        for _ in 0..SUBSCRIBERS {
            let (out, sub) = UnixStream::pair().unwrap();
            outs.push(out);
            let ack = ack_tx.clone();
            let e2e = e2e.clone();
            subs.push(sprint::spawn(async move {
                let mut buf = [0u8; FRAME];
                while read_frame(&sub, &mut buf).await {
                    // The relay measures its latency (unless told not
                    // to); with metrics on it records it.
                    if measure {
                        let sent = u64::from_le_bytes(buf[..8].try_into().unwrap());
                        let latency = (epoch.elapsed().as_nanos() as u64).saturating_sub(sent);
                        match &e2e {
                            Some(h) => h.record_ns(latency),
                            None => {
                                std::hint::black_box(latency);
                            }
                        }
                    }
                    if ack.send(()).await.is_err() {
                        break;
                    }
                }
            }));
        }
        drop(ack_tx);
        let relay = sprint::spawn(async move {
            let mut buf = [0u8; FRAME];
            while read_frame(&relay_rx, &mut buf).await {
                for o in &outs {
                    o.write_all(&buf).await.unwrap();
                }
            }
        });
        let mut frame = [0u8; FRAME];
        for _ in 0..n {
            let t = if measure {
                epoch.elapsed().as_nanos() as u64
            } else {
                0
            };
            frame[..8].copy_from_slice(&t.to_le_bytes());
            pub_tx.write_all(&frame).await.unwrap();
            for _ in 0..SUBSCRIBERS {
                ack_rx.recv().await.unwrap();
            }
        }
        drop(pub_tx);
        relay.await.unwrap();
        for s in subs {
            s.await.unwrap();
        }
    };
    rt.block_on(async move { sprint::spawn(body).await.unwrap() });
    let took = start.elapsed();
    let stats = rt.stats();
    println!(
        "metrics {}: {n} messages in {:.3} s ({:.0} ns/message); polls {}; e2e p50 {} ns p99 {} ns",
        args.metrics,
        took.as_secs_f64(),
        took.as_nanos() as f64 / n as f64,
        stats.workers.iter().map(|w| w.polls).sum::<u64>(),
        stats
            .histograms
            .get("relay_e2e_latency")
            .map_or(0, |s| s.p50_ns),
        stats
            .histograms
            .get("relay_e2e_latency")
            .map_or(0, |s| s.p99_ns),
    );
}
