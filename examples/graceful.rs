//! Graceful shutdown: `#[sprint::main]` turns SIGINT and SIGTERM into a
//! shutdown that cancels every task and runs its `Drop`s (the default
//! SIGTERM action would skip them all), then exits with 128 + the signal.
//!
//! `cargo run -p sprint-examples --bin graceful` and press Ctrl-C.

use std::time::Duration;

struct Connection(usize);

impl Drop for Connection {
    fn drop(&mut self) {
        let thread = std::thread::current();
        println!(
            "connection {} closed on {}",
            self.0,
            thread.name().unwrap_or("?")
        );
    }
}

#[sprint::main(level = "basic", workers = 2)]
async fn main() {
    for w in 0..2 {
        sprint::spawn_on(w, async move {
            let _conn = Connection(w);
            loop {
                sprint::time::sleep(Duration::from_secs(3600)).await;
            }
        })
        .expect("two workers");
    }
    sprint::time::sleep(Duration::from_millis(50)).await;
    println!("ready: pid {}", std::process::id());
    std::future::pending::<()>().await;
}
