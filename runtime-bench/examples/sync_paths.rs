//! Instruction counts of the uncontended paths of `sprint::sync`: the
//! cross-worker flavour beside the local one (and tokio's item), for
//! callgrind, where wall time is too noisy to show tens of instructions.
//! Each path runs `n` times on the main thread (no runtime: uncontended,
//! nothing waits) inside `run`, and callgrind counts only `run`:
//!
//! ```text
//! cargo build --release -p sprint-bench --example sync_paths
//! for p in mutex local_mutex tokio_mutex semaphore local_semaphore tokio_semaphore \
//!          notify local_notify tokio_notify mpsc local_mpsc tokio_mpsc; do
//!   printf '%s ' $p; valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     --collect-atstart=no --toggle-collect='*sync_paths::run*' \
//!     target/release/examples/sync_paths $p 100000 2>&1 | grep -o 'Collected : [0-9]*'
//! done
//! ```
//!
//! Divide by `n` for instructions per operation.

use futures::FutureExt;
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "mutex".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    run(&what, n);
}

/// One lock-and-unlock (acquire-and-release, notify-and-consume,
/// send-and-receive) per round.
#[inline(never)]
fn run(what: &str, n: u64) {
    macro_rules! lock_rounds {
        ($m:expr) => {{
            let m = $m;
            for _ in 0..n {
                let mut g = m.lock().now_or_never().expect("uncontended");
                *g += 1;
            }
            black_box(&m);
        }};
    }
    macro_rules! acquire_rounds {
        ($s:expr) => {{
            let s = $s;
            for _ in 0..n {
                drop(s.acquire().now_or_never().expect("free").expect("open"));
            }
        }};
    }
    macro_rules! notify_rounds {
        ($n:expr) => {{
            let notify = $n;
            for _ in 0..n {
                notify.notify_one();
                notify.notified().now_or_never().expect("the stored permit");
            }
        }};
    }
    macro_rules! channel_rounds {
        ($ch:expr) => {{
            let (tx, mut rx) = $ch;
            for i in 0..n {
                tx.try_send(i).expect("room");
                black_box(rx.try_recv().expect("a value"));
            }
        }};
    }
    match what {
        "mutex" => lock_rounds!(sprint::sync::Mutex::new(0u64)),
        "local_mutex" => lock_rounds!(sprint::sync::local::Mutex::new(0u64)),
        "tokio_mutex" => lock_rounds!(tokio::sync::Mutex::new(0u64)),
        "semaphore" => acquire_rounds!(sprint::sync::Semaphore::new(1)),
        "local_semaphore" => acquire_rounds!(sprint::sync::local::Semaphore::new(1)),
        "tokio_semaphore" => acquire_rounds!(tokio::sync::Semaphore::new(1)),
        "notify" => notify_rounds!(sprint::sync::Notify::new()),
        "local_notify" => notify_rounds!(sprint::sync::local::Notify::new()),
        "tokio_notify" => notify_rounds!(tokio::sync::Notify::new()),
        "mpsc" => channel_rounds!(sprint::sync::mpsc::channel(8)),
        "local_mpsc" => channel_rounds!(sprint::sync::mpsc::local::channel(8)),
        "tokio_mpsc" => channel_rounds!(tokio::sync::mpsc::channel(8)),
        other => panic!(
            "unknown path {other}; use [local_|tokio_]mutex, [local_|tokio_]semaphore, \
             [local_|tokio_]notify or [local_|tokio_]mpsc"
        ),
    }
}
