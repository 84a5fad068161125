//! The demo: starts Sprint at a level given on the command line, prints the
//! plan it applied, runs a burst of work across the workers (spawns,
//! cross-worker channels, timers, a blocking job) and prints what each
//! worker did.
//!
//! `cargo run --release -p sprint-examples --bin demo -- --level aggressive`

use clap::Parser;
use sprint::sync::mpsc;
use sprint::{Builder, Level};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Run Sprint at a level and show what it did")]
struct Args {
    /// basic, standard, aggressive, enterprise or turbo.
    #[arg(long, default_value = "standard")]
    level: Level,
    /// Worker threads (default: one per planned CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// Tasks to spawn.
    #[arg(long, default_value_t = 200_000)]
    tasks: u64,
}

fn main() {
    let args = Args::parse();
    let mut builder = Builder::new().level(args.level);
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: {e}");
            std::process::exit(2);
        }
    };
    let cfg = rt.config();
    println!(
        "Sprint demo at level {} (level from {})",
        cfg.level,
        cfg.sources()["level"]
    );
    print!("plan: {}", rt.plan());
    println!(
        "coop budget {}, idle spin {} us, stack {} KiB, blocking threads up to {}",
        cfg.coop_budget,
        cfg.idle_spin_us,
        cfg.stack_size / 1024,
        cfg.blocking_threads(rt.plan().workers.len())
    );
    let workers = rt.handle().workers();
    let tasks = args.tasks;
    let start = Instant::now();
    let total = rt.block_on(async move {
        let (tx, mut rx) = mpsc::channel::<u64>(1024);
        let per_worker = tasks / workers as u64;
        for w in 0..workers {
            let tx = tx.clone();
            sprint::spawn_on(w, async move {
                let mut handles = Vec::with_capacity(1024);
                let mut sum = 0;
                for i in 0..per_worker {
                    handles.push(sprint::spawn_local(async move {
                        sprint::yield_now().await;
                        i
                    }));
                    if handles.len() == 1024 {
                        for h in handles.drain(..) {
                            sum += h.await.expect("demo task");
                        }
                    }
                }
                for h in handles.drain(..) {
                    sum += h.await.expect("demo task");
                }
                sprint::time::sleep(Duration::from_millis(5)).await;
                tx.send(sum).await.expect("the collector is alive");
            })
            .expect("worker index is in range");
        }
        drop(tx);
        let blocking = sprint::spawn_blocking(|| std::thread::current().name().map(str::to_owned));
        let mut total = 0;
        while let Some(s) = rx.recv().await {
            total += s;
        }
        let name = blocking.await.expect("blocking job").unwrap_or_default();
        println!("a blocking job ran on {name}");
        total
    });
    let elapsed = start.elapsed();
    println!(
        "ran {} tasks in {:.1} ms ({:.0} ns per spawn+join across the workers); checksum {}",
        tasks - tasks % workers as u64,
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / tasks as f64,
        total
    );
    println!(
        "{:>8} {:>5} {:>7} {:>10} {:>9} {:>7} {:>7} {:>8} {:>7}",
        "worker", "cpu", "pinned", "polls", "spawned", "steals", "parks", "unparks", "timers"
    );
    for s in rt.worker_stats() {
        let cpu = rt.plan().workers[s.index].cpu;
        println!(
            "{:>8} {:>5} {:>7} {:>10} {:>9} {:>7} {:>7} {:>8} {:>7}",
            s.index,
            cpu,
            s.pinned,
            s.polls,
            s.spawned,
            s.steals,
            s.parks,
            s.unparks,
            s.timers_fired
        );
    }
}
