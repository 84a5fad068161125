//! In steady state an I/O operation allocates nothing: the buffers come
//! from the worker's pool (or the kernel's provided-buffer ring), the
//! operation slots are preallocated, the wakers are the tasks'. A counting
//! global allocator checks it over a thousand echo round trips on each
//! driver. (Its own binary: the allocator is process-wide.)

mod common;

use sprint_core::config::IoDriver;
use sprint_core::Level;
use sprint_io::net::{TcpListener, TcpStream};

use sprint_alloc::counting::{self, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

// No libtest harness in this binary (`harness = false`): the counter is
// process-wide, and libtest's main thread allocates beside a running test
// (its records of running tests, its warning about one past 60 s).
fn main() {
    echo_round_trips_allocate_nothing_in_steady_state();
    println!("test echo_round_trips_allocate_nothing_in_steady_state ... ok");
}

fn echo_round_trips_allocate_nothing_in_steady_state() {
    let mut drivers = vec![IoDriver::Epoll];
    if common::uring() {
        drivers.push(IoDriver::Uring);
    }
    for d in drivers {
        let at_start = counting::allocations();
        let rt = sprint::Builder::new()
            .level(Level::Standard)
            .read_env(false)
            .workers(1)
            .configure(move |c| {
                c.io_driver = d;
                // A poll past the stall threshold formats its log line (one
                // allocation): the cold path a loaded machine can reach,
                // not the I/O path's cost.
                c.stall_threshold_us = 10_000_000;
            })
            .build()
            .unwrap();
        let allocs = rt.block_on(async {
            sprint_core::spawn_on(0, async {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let server = sprint_core::spawn_local(async move {
                    let (s, _) = listener.accept().await.unwrap();
                    let mut buf = [0u8; 64];
                    loop {
                        let n = s.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        s.write_all(&buf[..n]).await.unwrap();
                    }
                });
                let c = TcpStream::connect(addr).await.unwrap();
                c.set_nodelay(true).unwrap();
                let msg = [0x5au8; 64];
                let mut back = [0u8; 64];
                let mut round_trip = async || {
                    c.write_all(&msg).await.unwrap();
                    let mut got = 0;
                    while got < 64 {
                        let n = c.read(&mut back[got..]).await.unwrap();
                        assert!(n > 0, "the echo ended early");
                        got += n;
                    }
                };
                for _ in 0..200 {
                    round_trip().await;
                }
                let before = counting::allocations();
                for _ in 0..1000 {
                    round_trip().await;
                }
                let allocs = counting::allocations() - before;
                c.shutdown(std::net::Shutdown::Write).await.unwrap();
                server.await.unwrap();
                allocs
            })
            .unwrap()
            .await
            .unwrap()
        });
        assert!(
            counting::allocations() > at_start,
            "the counter sees the runtime's own allocations"
        );
        eprintln!("{d}: {allocs} allocations over 1,000 round trips");
        assert!(
            allocs < 10,
            "{d}: {allocs} allocations over 1,000 round trips (4,000 I/O operations)"
        );
    }
}
