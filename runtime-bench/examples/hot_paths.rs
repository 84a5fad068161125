//! Runs one hot path a fixed number of times, for instruction counts under
//! callgrind (deterministic where wall time is noisy):
//!
//! `valgrind --tool=callgrind target/release/examples/hot_paths spawn_join 100000`

use sprint::{Builder, Level};
use sprint_bench::{ping_pong_local, spawn_join};

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "spawn_join".into());
    let iters: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rt = Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(1)
        .build()
        .expect("runtime");
    let elapsed = rt.block_on(async move {
        sprint::spawn_on(0, async move {
            let local = sprint::spawn_local(async move {
                match what.as_str() {
                    "spawn_join" => spawn_join(iters, || sprint::spawn_local(async {})).await,
                    "ping_pong" => ping_pong_local(iters, sprint::spawn_local).await,
                    other => panic!("unknown hot path {other}; use spawn_join or ping_pong"),
                }
            });
            local.await.expect("hot path")
        })
        .expect("worker 0")
        .await
        .expect("hot path")
    });
    println!(
        "{:.1} ns per iteration",
        elapsed.as_nanos() as f64 / iters as f64
    );
}
