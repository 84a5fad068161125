//! Runs one hot path a fixed number of times, for instruction counts under
//! callgrind (deterministic where wall time is noisy):
//!
//! `valgrind --tool=callgrind target/release/examples/hot_paths spawn_join 100000 [level]`
//!
//! The level is a level's name (`standard` when not given), followed by
//! any of `-nort` (no real-time class), `-epoll` (the epoll driver) and
//! `-park` (idle by parking), e.g. `standard-epoll-park`. Under valgrind,
//! use `-epoll`: a worker parked in `io_uring_enter` holds valgrind's
//! thread lock and the process hangs.

use sprint::config::{IdleStrategy, IoDriver, RtPolicy};
use sprint::{Builder, Level};
use sprint_bench::{ping_pong_local, spawn_join};

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "spawn_join".into());
    let iters: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let level = args.next().unwrap_or_else(|| "standard".into());
    let mut words = level.split('-');
    let level = match words.next() {
        Some("basic") => Level::Basic,
        Some("standard") => Level::Standard,
        Some("aggressive") => Level::Aggressive,
        Some("enterprise") => Level::Enterprise,
        Some("turbo") => Level::Turbo,
        other => {
            panic!("unknown level {other:?}; use basic, standard, aggressive, enterprise or turbo")
        }
    };
    let changes: Vec<String> = words.map(str::to_owned).collect();
    let rt = Builder::new()
        .level(level)
        .read_env(false)
        .workers(1)
        .configure(move |c| {
            for change in &changes {
                match change.as_str() {
                    "nort" => c.rt_policy = RtPolicy::None,
                    "epoll" => c.io_driver = IoDriver::Epoll,
                    "park" => c.idle = IdleStrategy::Park,
                    other => panic!("unknown change {other}; use nort, epoll or park"),
                }
            }
        })
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
