//! `/metrics` under attack, over real sockets: a request line without end,
//! pipelined requests whose responses are never read, thousands of
//! slowloris connections, idle half-requests, responses never read, and
//! the process out of descriptors. The tests that change the descriptor
//! limit or count the process's threads, descriptors and resident memory from /proc
//! (which other tests running beside them would disturb) run alone in a
//! child process. Each prints its figures on a line that starts with
//! `ATTACK` (`-- --nocapture` shows them).

mod common;

use sprint::config::RtPolicy;
use sprint::metrics::export::{Limits, Server};
use sprint::{Builder, Level, Runtime};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "SPRINT_METRICS_ATTACK_CHILD";

/// Runs `body` in a child process that runs only the test `name`, and
/// shows its output; the child is killed if it outlives two minutes.
fn in_child(name: &str, body: fn()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    print!("{out}");
    eprint!("{err}");
    match status {
        Some(s) => assert!(s.success(), "child {name} failed: {s}"),
        None => panic!("child {name} still ran after 120 s"),
    }
}

/// A field of /proc/self/status, as its first number.
fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Anonymous resident memory (heap, stacks): what a client could make
/// grow. File pages (the test binary's code, faulted in as new paths run)
/// are left out: they vary by a few MiB from run to run.
fn anon_kib() -> u64 {
    status("RssAnon:")
}

fn threads() -> u64 {
    status("Threads:")
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

/// Raises the soft descriptor limit to the hard one (no privilege
/// needed); returns it.
fn raise_nofile() -> u64 {
    let mut lim = nofile();
    lim.rlim_cur = lim.rlim_max;
    set_nofile(lim);
    lim.rlim_cur
}

/// A runtime serving /metrics with the default limits.
fn runtime() -> Runtime {
    Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(1)
        .configure(|c| {
            c.rt_policy = RtPolicy::None;
            c.metrics_addr = Some("127.0.0.1:0".into());
        })
        .build()
        .unwrap()
}

/// A server of its own on `rt`, with `limits`.
fn server(rt: &Runtime, limits: Limits) -> Server {
    Server::start_with("127.0.0.1:0", rt.observed().clone(), limits).unwrap()
}

/// Timeouts no test waits for: what a test sees is the cap's doing, or the
/// design's, never a timeout's.
fn patient() -> Limits {
    Limits {
        read_timeout: Duration::from_secs(600),
        write_timeout: Duration::from_secs(600),
        ..Limits::default()
    }
}

/// Bytes received and not yet read on `s` (FIONREAD).
fn unread(s: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the valid pointer.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0);
    n as usize
}

/// The send queue of the server's end of the connection whose client end
/// is `client` (bytes written and not yet acknowledged), from
/// /proc/net/tcp. Read a line at a time: the table lists every socket on
/// the machine (megabytes of TIME_WAIT after a few runs), and reading it
/// whole would grow this process's heap in the middle of a measurement.
fn server_send_queue(client: &TcpStream) -> usize {
    use std::io::BufRead;
    let (local, peer) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
    let table = std::io::BufReader::new(std::fs::File::open("/proc/net/tcp").unwrap());
    let port = |a: &str| u16::from_str_radix(a.rsplit(':').next().unwrap(), 16).unwrap();
    table
        .lines()
        .skip(1)
        .find_map(|l| {
            let l = l.unwrap();
            let f: Vec<&str> = l.split_whitespace().collect();
            (port(f[1]) == peer.port() && port(f[2]) == local.port())
                .then(|| usize::from_str_radix(f[4].split(':').next().unwrap(), 16).unwrap())
        })
        .unwrap_or(0)
}

/// Waits until `s` is closed by its peer (FIN or RST), or `within` ends;
/// whether it was.
fn closed_by_peer(s: &TcpStream, within: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, within.as_millis() as libc::c_int) };
    n == 1 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// One `GET /metrics` on a connection of its own: the status and body, or
/// what went wrong within 20 s.
fn scrape(addr: SocketAddr) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(20)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("reading the response: {e} (got {} bytes)", out.len()))?;
    let (head, body) = out.split_once("\r\n\r\n").ok_or("no head")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    Ok((code, body.to_string()))
}

fn scrape_ok(addr: SocketAddr) -> String {
    let (code, body) = scrape(addr).unwrap();
    assert_eq!(code, 200);
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile(lim: libc::rlimit) {
    // SAFETY: setrlimit reads a valid struct; the soft limit stays within
    // the hard one. Only the calling child process sees it.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

#[test]
fn a_request_line_without_end_is_cut_at_the_head_limit() {
    in_child(
        "a_request_line_without_end_is_cut_at_the_head_limit",
        || {
            let rt = runtime();
            let addr = rt.metrics_addr().unwrap();
            scrape_ok(addr);
            let before = anon_kib();
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(b"GET /").unwrap();
            // At most 64 MiB of the 1 GB line: the server must have hung up
            // long before.
            let chunk = vec![b'a'; 64 << 10];
            let mut sent = 5u64;
            let err = loop {
                if sent >= 64 << 20 {
                    break None;
                }
                match s.write(&chunk) {
                    Ok(n) => sent += n as u64,
                    Err(e) => break Some(e),
                }
            };
            let after = anon_kib();
            println!("ATTACK huge-line sent {sent} bytes before the close; RssAnon {before} KiB -> {after} KiB");
            let e = err.unwrap_or_else(|| {
                panic!("the server took {sent} bytes of one request line without hanging up")
            });
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::BrokenPipe
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                ),
                "the write failed, but not because the server closed: {e}"
            );
            assert!(
                after.saturating_sub(before) < 1 << 10,
                "RssAnon grew from {before} KiB to {after} KiB"
            );
            let body = scrape_ok(addr);
            assert!(
                body.contains("\nsprint_metrics_server_bad_requests_total 1\n"),
                "{body}"
            );
        },
    );
}

#[test]
fn thousands_of_slowloris_connections_cost_no_thread_and_leave_scrapes_served() {
    in_child(
        "thousands_of_slowloris_connections_cost_no_thread_and_leave_scrapes_served",
        || {
            let nofile = raise_nofile();
            let rt = runtime();
            let server = server(&rt, patient());
            let addr = server.addr();
            scrape_ok(addr);
            let (threads_before, fds_before, before) = (threads(), open_fds(), anon_kib());
            // Each connection costs this process a descriptor on the client
            // side, and one on the server side while the server holds it.
            let n = 3_000.min((nofile.saturating_sub(fds_before + 200)) / 2);
            assert!(n >= 500, "RLIMIT_NOFILE {nofile} is too low for the test");
            let mut conns = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(20)).unwrap();
                // A request line that never ends; the server may already
                // have closed this connection, which is fine.
                let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: slow");
                conns.push(s);
            }
            let (threads_during, fds_during, during) = (threads(), open_fds(), anon_kib());
            let scraped = scrape(addr);
            let server_fds = fds_during - fds_before - n;
            println!(
                "ATTACK slowloris {n} connections: threads {threads_before} -> {threads_during}; the server holds {server_fds} of them; RssAnon {before} KiB -> {during} KiB"
            );
            let (code, _) = scraped.unwrap();
            assert_eq!(code, 200);
            assert!(
                threads_during <= threads_before + 2,
                "threads {threads_before} -> {threads_during} with {n} connections"
            );
            assert!(
                server_fds <= 64 + 4,
                "the server holds {server_fds} connections"
            );
            // The held connections' head buffers (64 x 8 KiB) and the
            // client's own Vec of streams.
            assert!(
                during.saturating_sub(before) < 2 << 10,
                "RssAnon grew from {before} KiB to {during} KiB"
            );
            let stats = server.stats();
            assert!(stats.evictions >= n - 64, "{stats:?}");
            assert_eq!(stats.timeouts, 0, "{stats:?}");
            drop(conns);
        },
    );
}

#[test]
fn pipelined_requests_never_read_hold_no_other_scrape() {
    in_child("pipelined_requests_never_read_hold_no_other_scrape", || {
        let rt = runtime();
        let server = server(&rt, patient());
        let addr = server.addr();
        scrape_ok(addr);
        let requests = b"GET /metrics HTTP/1.1\r\nHost: pipe\r\n\r\n".repeat(20_000);
        let before = anon_kib();
        let mut p = TcpStream::connect(addr).unwrap();
        p.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while sent < requests.len() {
            match p.write(&requests[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("pipelining: {e}"),
            }
        }
        // Scrape until the server has filled the pipelining client's socket
        // and its own: the queues on both ends stay the same across three
        // scrapes in a row (the server writes to the pipeliner at every
        // turn it can). Then scrape ten more times.
        let until = Instant::now() + Duration::from_secs(60);
        let (mut same, mut last, mut scrapes) = (0, (0, 0), 0);
        while same < 3 {
            assert!(
                Instant::now() < until,
                "the pipelined responses never filled the sockets"
            );
            scrape_ok(addr);
            scrapes += 1;
            let now = (unread(&p), server_send_queue(&p));
            same = if now == last && now.0 > 0 {
                same + 1
            } else {
                0
            };
            last = now;
        }
        for _ in 0..10 {
            scrape_ok(addr);
        }
        let after = anon_kib();
        println!(
            "ATTACK pipelining {} requests sent, never read: {} bytes of responses unread and {} queued by the server when it stopped, {scrapes} scrapes before and 10 after; RssAnon {before} KiB -> {after} KiB",
            sent / 38, last.0, last.1
        );
        assert!(
            after.saturating_sub(before) < 1 << 10,
            "RssAnon grew from {before} KiB to {after} KiB"
        );
        assert!(
            !closed_by_peer(&p, Duration::ZERO),
            "the pipeliner was closed: a timeout?"
        );
    });
}

#[test]
fn an_idle_half_request_is_closed_at_the_read_timeout() {
    let rt = runtime();
    let timeout = Duration::from_millis(300);
    let server = server(
        &rt,
        Limits {
            read_timeout: timeout,
            ..patient()
        },
    );
    let start = Instant::now();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /metr").unwrap();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the half request was not closed: {e}"),
    }
    assert!(start.elapsed() >= timeout, "closed before its timeout");
    assert_eq!(server.stats().timeouts, 1);
    let out = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || out.starts_with("HTTP/1.1 408 "), "{out}");

    // An idle keep-alive connection closes after the same timeout.
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let answered = Instant::now();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(answered.elapsed() >= timeout - Duration::from_millis(50));
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
    assert!(!out.contains("Connection: close"), "{out}");
    assert_eq!(server.stats().timeouts, 2);
}

#[test]
fn a_response_never_read_is_dropped_at_the_write_timeout() {
    let rt = runtime();
    let timeout = Duration::from_millis(300);
    let server = server(
        &rt,
        Limits {
            write_timeout: timeout,
            ..patient()
        },
    );
    let mut p = TcpStream::connect(server.addr()).unwrap();
    p.set_nonblocking(true).unwrap();
    let requests = b"GET /metrics HTTP/1.1\r\nHost: pipe\r\n\r\n".repeat(2_000);
    let mut sent = 0;
    while sent < requests.len() {
        match p.write(&requests[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("pipelining: {e}"),
        }
    }
    assert!(
        closed_by_peer(&p, Duration::from_secs(30)),
        "a client that reads nothing still held its connection after 30 s"
    );
    assert_eq!(server.stats().timeouts, 1);
    scrape_ok(server.addr());
}

#[test]
fn out_of_descriptors_the_server_pauses_accepting_and_then_serves() {
    in_child(
        "out_of_descriptors_the_server_pauses_accepting_and_then_serves",
        || {
            use std::os::fd::AsRawFd;
            let rt = runtime();
            let server = server(&rt, patient());
            let addr = server.addr();
            scrape_ok(addr);
            // The client's socket exists before descriptors run out:
            // connecting it needs none, accepting it needs one.
            let client =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            let saved = nofile();
            let lowest_free = std::fs::File::open("/dev/null").unwrap().as_raw_fd();
            set_nofile(libc::rlimit {
                rlim_cur: lowest_free as libc::rlim_t,
                ..saved
            });
            client.connect(&addr.into()).unwrap();
            // It fails, pauses and tries again: it does not give up.
            common::wait_until(
                Duration::from_secs(30),
                "the server failed to accept twice",
                || server.stats().accept_errors >= 2,
            );
            set_nofile(saved);
            let mut s = TcpStream::from(client);
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
            let stats = server.stats();
            println!("ATTACK out of descriptors: {stats:?}");
            assert_eq!(stats.connections, 2, "{stats:?}");
        },
    );
}
