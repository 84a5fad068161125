//! In steady state an I/O operation allocates nothing: the buffers come
//! from the worker's pool (or the kernel's provided-buffer ring), the
//! operation slots are preallocated, the wakers are the tasks'. A counting
//! global allocator checks it over a thousand echo round trips on each
//! driver. (Its own binary: the allocator is process-wide.)

use sprint_core::config::IoDriver;
use sprint_core::{Builder, Level};
use sprint_io::net::{TcpListener, TcpStream};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn echo_round_trips_allocate_nothing_in_steady_state() {
    let mut drivers = vec![IoDriver::Epoll];
    if sprint_io::driver::uring_available().is_ok() {
        drivers.push(IoDriver::Uring);
    }
    for d in drivers {
        let at_start = ALLOCS.load(Relaxed);
        let rt = Builder::new()
            .level(Level::Standard)
            .read_env(false)
            .workers(1)
            .configure(move |c| c.io_driver = d)
            .driver(sprint_io::driver::factory())
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
                        got += c.read(&mut back[got..]).await.unwrap();
                    }
                };
                for _ in 0..200 {
                    round_trip().await;
                }
                let before = ALLOCS.load(Relaxed);
                for _ in 0..1000 {
                    round_trip().await;
                }
                let allocs = ALLOCS.load(Relaxed) - before;
                c.shutdown(std::net::Shutdown::Write).await.unwrap();
                server.await.unwrap();
                allocs
            })
            .unwrap()
            .await
            .unwrap()
        });
        assert!(
            ALLOCS.load(Relaxed) > at_start,
            "the counter sees the runtime's own allocations"
        );
        eprintln!("{d}: {allocs} allocations over 1,000 round trips");
        assert!(
            allocs < 10,
            "{d}: {allocs} allocations over 1,000 round trips (4,000 I/O operations)"
        );
    }
}
