//! The demo: starts Sprint at a level given on the command line, prints the
//! plan it applied and each worker's I/O driver (io_uring, or epoll and
//! why), runs a burst of work across the workers (spawns, cross-worker
//! channels, timers, a blocking job), echoes messages over TCP between
//! workers, and prints what each worker did.
//!
//! `cargo run --release -p sprint-examples --bin demo -- --level aggressive`

use clap::Parser;

/// The demo runs on mimalloc, the global allocator the levels recommend;
/// the runtime sets its reclaim policy per level.
#[global_allocator]
static GLOBAL: sprint::memory::MiMalloc = sprint::memory::MiMalloc;
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
    print!("plan: {}", rt.start_report().plan);
    println!(
        "coop budget {}, idle spin {} us, stack {} KiB, blocking threads up to {}",
        cfg.coop_budget,
        cfg.idle_spin_us,
        cfg.stack_size / 1024,
        cfg.blocking_threads(rt.start_report().plan.workers.len())
    );
    for (w, line) in rt.start_report().drivers().iter().enumerate() {
        println!("worker {w} I/O: {line}");
    }
    for line in rt.start_report().memory() {
        println!("memory: {line}");
    }
    for line in rt.start_report().tuning() {
        println!("tuning: {line}");
    }
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
    let (conns, rounds) = (8usize, 2_000usize);
    let start = Instant::now();
    let echoed = rt.block_on(async move {
        let listener = sprint::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let addr = listener.local_addr().expect("bound");
        let server = sprint::spawn_on(0, async move {
            for _ in 0..conns {
                let (s, _) = listener.accept().await.expect("accept");
                s.set_nodelay(true).expect("nodelay");
                sprint::spawn_local(async move {
                    let mut buf = [0u8; 256];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        if s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        })
        .expect("worker 0");
        let mut clients = Vec::new();
        for c in 0..conns {
            clients.push(
                sprint::spawn_on(c % workers.max(1), async move {
                    let s = sprint::net::TcpStream::connect(addr)
                        .await
                        .expect("connect");
                    s.set_nodelay(true).expect("nodelay");
                    let msg = [c as u8; 64];
                    let mut back = [0u8; 64];
                    for _ in 0..rounds {
                        s.write_all(&msg).await.expect("send");
                        let mut got = 0;
                        while got < 64 {
                            let n = s.read(&mut back[got..]).await.expect("receive");
                            assert!(n > 0, "the echo server closed the connection early");
                            got += n;
                        }
                        assert_eq!(back, msg, "the echo came back intact");
                    }
                    rounds
                })
                .expect("worker"),
            );
        }
        server.await.expect("server");
        let mut n = 0;
        for c in clients {
            n += c.await.expect("client");
        }
        n
    });
    let elapsed = start.elapsed();
    println!(
        "echoed {echoed} 64-byte messages over {conns} TCP connections in {:.1} ms ({:.1} us per round trip per connection)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 * conns as f64 / echoed as f64
    );
    for m in rt.handle().memory_stats() {
        println!(
            "worker {} arena: {} MiB committed of {} MiB, {} KiB used, {} MiB locked, {} task cells carved, {} in use, {} fallback allocations, bound to NUMA node {}",
            m.worker,
            m.arena.committed >> 20,
            m.arena.capacity >> 20,
            m.arena.used >> 10,
            m.arena.locked >> 20,
            m.slab.cells_carved,
            m.slab.cells_in_use,
            m.slab.fallback_allocations,
            m.bound_node.map_or("-".to_string(), |n| n.to_string())
        );
    }
    println!(
        "{:>8} {:>5} {:>7} {:>10} {:>9} {:>7} {:>7} {:>8} {:>7}",
        "worker", "cpu", "pinned", "polls", "spawned", "steals", "parks", "unparks", "timers"
    );
    for s in rt.worker_stats() {
        let cpu = rt.start_report().plan.workers[s.index].cpu;
        println!(
            "{:>8} {:>5} {:>7} {:>10} {:>9} {:>7} {:>7} {:>8} {:>7}",
            s.index,
            cpu,
            s.cpu.is_some(),
            s.polls,
            s.spawned,
            s.steals,
            s.parks,
            s.unparks,
            s.timers_fired
        );
    }
    let stats = rt.stats();
    println!(
        "{:>16} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "histogram", "samples", "p50 us", "p99 us", "p99.9 us", "max us"
    );
    for (name, h) in &stats.histograms {
        let us = |ns: u64| ns as f64 / 1e3;
        println!(
            "{:>16} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>10.1}",
            name,
            h.count,
            us(h.p50_ns),
            us(h.p99_ns),
            us(h.p999_ns),
            us(h.max_ns)
        );
    }
    let health = rt.health();
    if health.is_empty() {
        println!("health: no problems");
    }
    for p in health {
        println!("health: {p}");
    }
}
