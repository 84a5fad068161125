//! Too many open files: in a child process (the limit is process-wide),
//! RLIMIT_NOFILE is lowered until connecting or accepting fails; the error
//! must be EMFILE as the OS said it, and the listener must work again once
//! descriptors are freed. Once per driver, and once with each parity of
//! the limit, so that either the connecting socket or the accepted one is
//! the descriptor that does not fit.

mod common;

use sprint_core::config::IoDriver;
use sprint_core::Level;
use sprint_io::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "EMFILE_CHILD_OF_THE_SPRINT_IO_TESTS";

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

fn child(d: IoDriver, spare: u64) {
    let rt = sprint::Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(1)
        .configure(move |c| c.io_driver = d)
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills a valid struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        // Lowering the soft limit needs no privilege.
        lim.rlim_cur = open_fds() + spare;
        // SAFETY: setrlimit with a valid struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let mut conns = Vec::new();
        let err = loop {
            let c = match TcpStream::connect(addr).await {
                Ok(c) => c,
                Err(e) => break e,
            };
            match listener.accept().await {
                Ok((s, _)) => conns.push((c, s)),
                Err(e) => {
                    drop(c);
                    break e;
                }
            }
            assert!(conns.len() < 100, "the limit never bit");
        };
        println!("ERROR {:?} {}", err.raw_os_error(), err);
        conns.clear();
        // Descriptors are free again: the listener still accepts. A
        // connection that could not be accepted waited in the backlog (its
        // client is gone by now), so accept until the new client's own.
        let c = TcpStream::connect(addr).await.unwrap();
        let me = c.local_addr().unwrap();
        let s = loop {
            let (s, peer) = listener.accept().await.unwrap();
            if peer == me {
                break s;
            }
        };
        c.write_all(b"ok").await.unwrap();
        let mut b = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            let n = s.read(&mut b[got..]).await.unwrap();
            assert!(n > 0, "the accepted stream ended before its data");
            got += n;
        }
        println!("RECOVERED {}", String::from_utf8_lossy(&b));
    });
}

#[test]
fn too_many_open_files_is_emfile_and_the_listener_recovers() {
    if let Some(v) = std::env::var_os(CHILD) {
        let v = v.to_str().unwrap();
        let (d, spare) = v.split_once(':').unwrap();
        return child(d.parse().unwrap(), spare.parse().unwrap());
    }
    let mut drivers = vec![IoDriver::Epoll];
    if common::uring() {
        drivers.push(IoDriver::Uring);
    }
    for (d, spare) in drivers.into_iter().flat_map(|d| [(d, 8), (d, 9)]) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "too_many_open_files_is_emfile_and_the_listener_recovers",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, format!("{d}:{spare}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A wedged child fails the test instead of hanging it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{d} (limit +{spare}): child still running after 60 s:\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{d} (limit +{spare}): child failed:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains(&format!("ERROR Some({})", libc::EMFILE)),
            "{d}: {stdout}"
        );
        assert!(stdout.contains("RECOVERED ok"), "{d}: {stdout}");
    }
}
