//! The hyper and axum examples as a user runs them, in child processes: a
//! real HTTP/1.1 client (over a plain TCP socket) gets answers, and SIGTERM
//! during a slow request stops the accepting at once, lets that request
//! finish, closes its keep-alive connection, and the process exits 0 well
//! within the drain deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child if the test fails before it exits.
struct Server {
    child: Child,
    out: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str) -> Server {
    let mut child = Command::new(bin)
        .args(["--addr", "127.0.0.1:0", "--drain-ms", "10000"])
        .env_remove("SPRINT_LEVEL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let line = next_line(&mut out);
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .trim()
        .parse()
        .unwrap();
    Server { child, out, addr }
}

fn next_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    line
}

/// Sends a keep-alive GET for `path` on a new connection.
fn get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    c
}

/// Reads one response with a Content-Length body: status line and body.
fn response(c: &mut TcpStream) -> (String, String) {
    let mut r = BufReader::new(c);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status.trim().to_owned(), String::from_utf8(body).unwrap())
}

fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sigterm_drains_the_slow_request_and_exits_0(bin: &str, hello: &str) {
    let mut s = start(bin);
    let mut c = get(s.addr, "/");
    assert_eq!(
        response(&mut c),
        ("HTTP/1.1 200 OK".to_owned(), hello.to_owned())
    );
    drop(c);

    let mut slow = get(s.addr, "/slow?ms=1500");
    let line = next_line(&mut s.out);
    assert!(line.starts_with("slow request started"), "{line:?}");
    let signalled = Instant::now();
    // SAFETY: kill sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) }, 0);
    // Every worker stops accepting: the port refuses new connections.
    wait_until(
        Duration::from_secs(5),
        "the port refuses connections",
        || TcpStream::connect(s.addr).is_err(),
    );
    // The request in flight is answered in full...
    assert_eq!(
        response(&mut slow),
        ("HTTP/1.1 200 OK".to_owned(), "slept 1500 ms\n".to_owned())
    );
    // ...and its keep-alive connection is then closed by the server.
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");

    let deadline = Duration::from_secs(10);
    wait_until(deadline, "the server exits", || {
        s.child.try_wait().unwrap().is_some()
    });
    let status = s.child.wait().unwrap();
    let mut out = String::new();
    s.out.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    s.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("drained; exiting"), "{out}");
    assert!(!err.contains("dropped"), "nothing was cut: {err}");
    assert!(signalled.elapsed() < deadline);
}

#[test]
fn hyper_server_drains_on_sigterm() {
    sigterm_drains_the_slow_request_and_exits_0(
        env!("CARGO_BIN_EXE_hyper_server"),
        "Hello from Sprint\n",
    );
}

#[test]
fn axum_app_drains_on_sigterm() {
    sigterm_drains_the_slow_request_and_exits_0(
        env!("CARGO_BIN_EXE_axum_app"),
        "Hello from axum on Sprint\n",
    );
}
