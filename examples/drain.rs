//! Draining before shutdown: on the first SIGINT or SIGTERM,
//! `#[sprint::main]` wakes `sprint::shutdown`; every task watching it
//! finishes what it holds, and `main` returns within the drain deadline
//! (`drain = "5s"`), so the process exits 0 having cancelled nothing. Past
//! the deadline every task is cancelled and the process exits with 128 +
//! the signal; a second signal exits at once.
//!
//! `cargo run -p sprint-examples --bin drain` and press Ctrl-C.
//! (`DRAIN_WORK_MS` sets how long each worker's last request takes.)

use std::time::Duration;

#[sprint::main(level = "basic", workers = 2, drain = "5s")]
async fn main() {
    let work = Duration::from_millis(
        std::env::var("DRAIN_WORK_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100),
    );
    let mut workers = Vec::new();
    for w in 0..2 {
        let worker = sprint::spawn_on(w, async move {
            // Serving until shutdown is requested...
            sprint::shutdown::requested().await;
            println!("worker {w} draining");
            // ...then finishing the request in hand.
            sprint::time::sleep(work).await;
            println!("worker {w} drained");
        });
        workers.push(worker.expect("two workers"));
    }
    println!("ready: pid {}", std::process::id());
    for w in workers {
        w.await.expect("a worker that drains");
    }
    println!("main returns");
}
