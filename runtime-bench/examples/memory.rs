//! The memory benchmark: spawn+join and a relay-shaped message path, with
//! the worker's arena and without, beside tokio; per task and per message,
//! the time, the global allocations (a counting `#[global_allocator]` over
//! the system allocator) and the minor page faults of the worker thread in
//! the measured steady state.
//!
//! `cargo run --release -p sprint-bench --example memory -- --runs 3`

use clap::Parser;
use std::time::Instant;

use sprint::memory::counting::{self, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Parser)]
#[command(about = "Spawn and relay paths: time, global allocations, page faults")]
struct Args {
    /// Repetitions of the whole matrix.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Tasks per spawn+join run.
    #[arg(long, default_value_t = 200_000)]
    tasks: usize,
    /// Messages per relay run (each fans out to 8 subscribers).
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
}

const FANOUT: usize = 8;

/// This thread's minor page faults.
fn thread_faults() -> u64 {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) };
    r.ru_minflt as u64
}

#[derive(Clone, Copy, Default)]
struct Sample {
    ns: f64,
    allocs: f64,
    faults: f64,
}

type Tx = [u8; 256];

/// What a subscriber does with a message: little, so that the runtime's
/// own cost shows.
fn checksum(tx: &Tx) -> u64 {
    u64::from_le_bytes(tx[..8].try_into().unwrap_or([0; 8])) ^ tx[255] as u64
}

async fn sprint_spawn(tasks: usize) -> u64 {
    let mut handles = Vec::with_capacity(256);
    let mut sum = 0;
    for i in 0..tasks {
        handles.push(sprint::spawn_local(async move { i as u64 }));
        if handles.len() == 256 {
            for h in handles.drain(..) {
                sum += h.await.unwrap();
            }
        }
    }
    for h in handles.drain(..) {
        sum += h.await.unwrap();
    }
    sum
}

type SprintChan = (
    sprint::sync::mpsc::Sender<Tx>,
    sprint::sync::mpsc::Receiver<Tx>,
);

/// The channel is made outside the measured window (its 256 KiB buffer is
/// fresh memory whose first touch would count as faults of the run).
async fn sprint_relay(messages: usize, (tx, mut rx): SprintChan) -> u64 {
    let producer = sprint::spawn_local(async move {
        let mut m = [0u8; 256];
        for i in 0..messages {
            m[0] = i as u8;
            tx.send(m).await.unwrap();
        }
    });
    let mut total = 0u64;
    let mut subs = Vec::with_capacity(FANOUT);
    while let Some(m) = rx.recv().await {
        for s in 0..FANOUT {
            subs.push(sprint::spawn_local(async move { checksum(&m) ^ s as u64 }));
        }
        for h in subs.drain(..) {
            total = total.wrapping_add(h.await.unwrap());
        }
    }
    producer.await.unwrap();
    total
}

fn run_sprint(cfg: &str, args: &Args) -> (Sample, Sample) {
    let (level, arenas) = match cfg {
        "sprint-standard" => (sprint::Level::Standard, true),
        "sprint-standard-no-arena" => (sprint::Level::Standard, false),
        "sprint-enterprise" => (sprint::Level::Enterprise, true),
        "sprint-turbo" => (sprint::Level::Turbo, true),
        _ => unreachable!(),
    };
    let rt = sprint::Builder::new()
        .level(level)
        .read_env(false)
        .workers(1)
        .cpus(vec![0])
        .configure(move |c| {
            c.arenas = arenas;
            c.huge_pages = false;
        })
        .build()
        .expect("runtime");
    let (tasks, messages) = (args.tasks, args.messages);
    rt.block_on(async move {
        sprint::spawn_on(0, async move {
            // Warm up both paths, then measure the steady state.
            sprint_spawn(tasks / 4).await;
            sprint_relay(messages / 4, sprint::sync::mpsc::channel(1024)).await;
            let mut s = Sample::default();
            let (a0, f0, t0) = (counting::allocations(), thread_faults(), Instant::now());
            std::hint::black_box(sprint_spawn(tasks).await);
            s.ns = t0.elapsed().as_nanos() as f64 / tasks as f64;
            s.allocs = (counting::allocations() - a0) as f64 / tasks as f64;
            s.faults = (thread_faults() - f0) as f64;
            let chan = sprint::sync::mpsc::channel(1024);
            let (a0, f0, t0) = (counting::allocations(), thread_faults(), Instant::now());
            std::hint::black_box(sprint_relay(messages, chan).await);
            let r = Sample {
                ns: t0.elapsed().as_nanos() as f64 / messages as f64,
                allocs: (counting::allocations() - a0) as f64 / messages as f64,
                faults: (thread_faults() - f0) as f64,
            };
            (s, r)
        })
        .unwrap()
        .await
        .unwrap()
    })
}

fn run_tokio(args: &Args) -> (Sample, Sample) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let (tasks, messages) = (args.tasks, args.messages);
    local.block_on(&rt, async move {
        async fn spawn(tasks: usize) -> u64 {
            let mut handles = Vec::with_capacity(256);
            let mut sum = 0;
            for i in 0..tasks {
                handles.push(tokio::task::spawn_local(async move { i as u64 }));
                if handles.len() == 256 {
                    for h in handles.drain(..) {
                        sum += h.await.unwrap();
                    }
                }
            }
            for h in handles.drain(..) {
                sum += h.await.unwrap();
            }
            sum
        }
        type Chan = (
            tokio::sync::mpsc::Sender<Tx>,
            tokio::sync::mpsc::Receiver<Tx>,
        );
        async fn relay(messages: usize, (tx, mut rx): Chan) -> u64 {
            let producer = tokio::task::spawn_local(async move {
                let mut m = [0u8; 256];
                for i in 0..messages {
                    m[0] = i as u8;
                    tx.send(m).await.unwrap();
                }
            });
            let mut total = 0u64;
            let mut subs = Vec::with_capacity(FANOUT);
            while let Some(m) = rx.recv().await {
                for s in 0..FANOUT {
                    subs.push(tokio::task::spawn_local(
                        async move { checksum(&m) ^ s as u64 },
                    ));
                }
                for h in subs.drain(..) {
                    total = total.wrapping_add(h.await.unwrap());
                }
            }
            producer.await.unwrap();
            total
        }
        spawn(tasks / 4).await;
        relay(messages / 4, tokio::sync::mpsc::channel(1024)).await;
        let (a0, f0, t0) = (counting::allocations(), thread_faults(), Instant::now());
        std::hint::black_box(spawn(tasks).await);
        let s = Sample {
            ns: t0.elapsed().as_nanos() as f64 / tasks as f64,
            allocs: (counting::allocations() - a0) as f64 / tasks as f64,
            faults: (thread_faults() - f0) as f64,
        };
        let chan = tokio::sync::mpsc::channel(1024);
        let (a0, f0, t0) = (counting::allocations(), thread_faults(), Instant::now());
        std::hint::black_box(relay(messages, chan).await);
        let r = Sample {
            ns: t0.elapsed().as_nanos() as f64 / messages as f64,
            allocs: (counting::allocations() - a0) as f64 / messages as f64,
            faults: (thread_faults() - f0) as f64,
        };
        (s, r)
    })
}

fn med(v: &mut [f64]) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!("{:.2} ({:.2}–{:.2})", v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let args = Args::parse();
    let configs = [
        "sprint-standard",
        "sprint-standard-no-arena",
        "sprint-enterprise",
        "sprint-turbo",
        "tokio-current-thread",
    ];
    let mut results: Vec<Vec<(Sample, Sample)>> = vec![Vec::new(); configs.len()];
    for r in 0..args.runs {
        for (i, c) in configs.iter().enumerate() {
            let res = if *c == "tokio-current-thread" {
                run_tokio(&args)
            } else {
                run_sprint(c, &args)
            };
            eprintln!(
                "run {r} {c}: spawn {:.1} ns, {:.3} allocs, {} faults; relay {:.1} ns, {:.3} allocs, {} faults",
                res.0.ns, res.0.allocs, res.0.faults, res.1.ns, res.1.allocs, res.1.faults
            );
            results[i].push(res);
        }
    }
    println!(
        "\n{} runs, median (lowest–highest). spawn+join: {} tasks in batches of 256; relay: {} messages of 256 bytes through a bounded channel, each fanned out to {FANOUT} spawned subscribers and joined.\n",
        args.runs, args.tasks, args.messages
    );
    println!("| runtime | spawn+join ns/task | global allocs/task | page faults (spawn run) | relay ns/message | global allocs/message | page faults (relay run) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (c, rs) in configs.iter().zip(results.iter()) {
        let col = |f: &dyn Fn(&(Sample, Sample)) -> f64| {
            let mut v: Vec<f64> = rs.iter().map(f).collect();
            med(&mut v)
        };
        println!(
            "| {c} | {} | {} | {} | {} | {} | {} |",
            col(&|r| r.0.ns),
            col(&|r| r.0.allocs),
            col(&|r| r.0.faults),
            col(&|r| r.1.ns),
            col(&|r| r.1.allocs),
            col(&|r| r.1.faults),
        );
    }
}
