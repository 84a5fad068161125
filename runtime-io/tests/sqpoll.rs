//! SQPOLL under traffic: a Turbo-shaped worker (busy-polling, one CPU)
//! whose ring has a kernel submission thread on the spare CPU serves an
//! echo to a client thread, and a fan-out of writes, completely.

mod common;

use sprint_core::config::{IdleStrategy, IoDriver, RtPolicy};
use sprint_core::Level;
use sprint_io::net::TcpListener;
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn sqpoll_echo_and_fan_out_complete() {
    if !common::uring() {
        return;
    }
    if sprint_os::allowed_cpus().map_or(0, |c| c.len()) < 2 {
        common::skip("two-cpus", "SQPOLL needs a CPU beside the worker's");
        return;
    }
    let rt = sprint::Builder::new()
        .level(Level::Turbo)
        .read_env(false)
        .workers(1)
        .cpus(vec![0])
        .configure(|c| {
            c.io_driver = IoDriver::Uring;
            c.uring_sqpoll = true;
            c.uring_sqpoll_cpu = Some(1);
            c.rt_policy = RtPolicy::None;
            c.idle = IdleStrategy::BusyPoll;
            c.lock_memory = sprint_core::config::LockMemory::None;
            c.huge_pages = false;
        })
        .build()
        .unwrap();
    let report = rt.start_report().drivers().join("; ");
    eprintln!("{report}");
    let listener = rt
        .block_on(async { TcpListener::bind("127.0.0.1:0") })
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(async move {
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
    let client = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let start = std::time::Instant::now();
        for i in 0..2_000u32 {
            c.write_all(&i.to_le_bytes()).unwrap();
            let mut b = [0u8; 4];
            c.read_exact(&mut b).unwrap();
            assert_eq!(u32::from_le_bytes(b), i);
        }
        start.elapsed()
    });
    let took = client.join().unwrap();
    eprintln!("2000 round trips in {took:?}");
    rt.block_on(server).unwrap();
}
