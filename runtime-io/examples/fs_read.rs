//! Reads one page-cached file in fixed-size chunks with `read_at_owned`,
//! on the io_uring driver (ring READs) and on the epoll driver (the
//! blocking pool), interleaved, and prints each driver's median time per
//! read and its spread (lowest to highest of the rounds).
//!
//! ```text
//! cargo run --release -p sprint-io --example fs_read [chunk_kib] [file_mib] [rounds]
//! ```

use sprint_core::config::IoDriver;
use sprint_core::Level;
use sprint_io::fs::File;
use std::time::{Duration, Instant};

fn rt(driver: IoDriver) -> sprint::Runtime {
    sprint::Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(1)
        .configure(move |c| {
            c.io_driver = driver;
            c.uring_sqpoll = false;
            c.rt_policy = sprint_core::config::RtPolicy::None;
        })
        .build()
        .expect("a runtime")
}

/// One pass over the file: the time per read.
fn pass(driver: IoDriver, path: &std::path::Path, chunk: usize, size: u64) -> Duration {
    let rt = rt(driver);
    rt.block_on(async {
        sprint_core::spawn({
            let path = path.to_owned();
            async move {
                let f = File::open(&path).await.expect("open");
                let mut buf = Vec::with_capacity(chunk);
                let (mut off, mut reads) = (0u64, 0u32);
                let start = Instant::now();
                while off < size {
                    let (r, b) = f.read_at_owned(buf, off).await;
                    let n = r.expect("read");
                    assert!(n > 0, "the file ended early");
                    off += n as u64;
                    reads += 1;
                    buf = b;
                }
                start.elapsed() / reads
            }
        })
        .await
        .expect("the reading task")
    })
}

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (chunk_kib, file_mib, rounds) = (arg(1, 64), arg(2, 256), arg(3, 5));
    let chunk = (chunk_kib << 10) as usize;
    let size = file_mib << 20;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("data");
    std::fs::write(&path, vec![0x5au8; size as usize]).expect("the file");
    let mut drivers = vec![IoDriver::Epoll];
    if sprint_io::driver::uring_available().is_ok() {
        drivers.push(IoDriver::Uring);
    }
    // A first pass fills the page cache.
    pass(IoDriver::Epoll, &path, chunk, size);
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); drivers.len()];
    for _ in 0..rounds {
        for (i, d) in drivers.iter().enumerate() {
            times[i].push(pass(*d, &path, chunk, size));
        }
    }
    println!("read_at_owned, {chunk_kib} KiB chunks of a {file_mib} MiB page-cached file, {rounds} interleaved rounds");
    for (d, t) in drivers.iter().zip(&mut times) {
        t.sort();
        let where_ = match d {
            IoDriver::Uring => "io_uring READ",
            IoDriver::Epoll => "epoll: blocking pool",
        };
        println!(
            "{where_:>22}: median {:>8.2?} per read (lowest {:.2?}, highest {:.2?})",
            t[t.len() / 2],
            t[0],
            t[t.len() - 1]
        );
    }
}
