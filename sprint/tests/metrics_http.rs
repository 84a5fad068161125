//! The HTTP that `/metrics` speaks, over a real socket: keep-alive and
//! pipelining in order, `Connection: close`, HTTP/1.0, HEAD, and the
//! statuses for what it does not serve (404, 405, 400, 431, 505).

use sprint::config::RtPolicy;
use sprint::metrics::export::{Limits, Server};
use sprint::{Builder, Level, Runtime};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn runtime() -> Runtime {
    Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(1)
        .configure(|c| c.rt_policy = RtPolicy::None)
        .build()
        .unwrap()
}

fn connect(server: &Server) -> BufReader<TcpStream> {
    let s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    BufReader::new(s)
}

/// A response read by its Content-Length: status, head (lower case) and
/// body.
fn response(r: &mut BufReader<TcpStream>, head_only: bool) -> (u16, String, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "the response ended in its head: {head}"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0; if head_only { 0 } else { len }];
    r.read_exact(&mut body).unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

/// Whether the server closed the connection (nothing more comes).
fn at_end(r: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).is_ok() && rest.is_empty()
}

#[test]
fn keep_alive_pipelining_and_close() {
    let rt = runtime();
    let server = Server::start("127.0.0.1:0", rt.observed().clone()).unwrap();
    let mut c = connect(&server);
    // Three requests in one write: answered in order on one connection.
    c.get_mut()
        .write_all(
            b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /other HTTP/1.1\r\nHost: t\r\n\r\n\
              HEAD /metrics?x=1 HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let (status, head, body) = response(&mut c, false);
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(response(&mut c, false).0, 404);
    let (status, head, _) = response(&mut c, true);
    assert_eq!(status, 200);
    assert!(!head.contains("connection: close"), "{head}");
    // Still open: one more, which asks to close.
    c.get_mut()
        .write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, head, _) = response(&mut c, false);
    assert_eq!(status, 200);
    assert!(head.contains("connection: close"), "{head}");
    assert!(at_end(&mut c));

    // HTTP/1.0 closes unless it asks to keep the connection.
    let mut c = connect(&server);
    c.get_mut()
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .unwrap();
    assert_eq!(response(&mut c, false).0, 200);
    assert!(at_end(&mut c));
    let mut c = connect(&server);
    c.get_mut()
        .write_all(b"GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (_, head, _) = response(&mut c, false);
    assert!(head.contains("connection: keep-alive"), "{head}");
    c.get_mut().write_all(b"GET /x HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(response(&mut c, false).0, 404);
    assert!(at_end(&mut c));
}

#[test]
fn what_it_does_not_serve_gets_a_status() {
    let rt = runtime();
    let server = Server::start("127.0.0.1:0", rt.observed().clone()).unwrap();
    // Another method: 405 with Allow, and the connection stays.
    let mut c = connect(&server);
    c.get_mut()
        .write_all(b"DELETE /metrics HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n")
        .unwrap();
    let (status, head, _) = response(&mut c, false);
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, head"), "{head}");
    assert_eq!(response(&mut c, false).0, 200);
    // A request with a body is answered, then its connection closed: the
    // body is never read as a request.
    let mut c = connect(&server);
    c.get_mut()
        .write_all(
            b"POST /metrics HTTP/1.1\r\nContent-Length: 27\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
        )
        .unwrap();
    assert_eq!(response(&mut c, false).0, 405);
    assert!(at_end(&mut c));
    // Malformed, another version, too large: a status, then the close.
    for (request, want) in [
        (b"GET /metrics\r\n\r\n".to_vec(), 400),
        (b"GET /metrics HTTP/2.0\r\n\r\n".to_vec(), 505),
        (
            [
                &b"GET /metrics HTTP/1.1\r\nX-Big: "[..],
                &[b'x'; 9 * 1024],
                b"\r\n\r\n",
            ]
            .concat(),
            431,
        ),
    ] {
        let mut c = connect(&server);
        c.get_mut().write_all(&request).unwrap();
        let (status, head, _) = response(&mut c, false);
        assert_eq!(status, want, "{}", String::from_utf8_lossy(&request[..20]));
        assert!(head.contains("connection: close"), "{head}");
    }
    assert_eq!(server.stats().bad_requests, 3);
}

#[test]
fn limits_it_cannot_run_with_are_refused_by_name() {
    let rt = runtime();
    for (limits, field) in [
        (
            Limits {
                max_connections: 0,
                ..Limits::default()
            },
            "max_connections",
        ),
        (
            Limits {
                max_head_bytes: 10,
                ..Limits::default()
            },
            "max_head_bytes",
        ),
        (
            Limits {
                read_timeout: Duration::ZERO,
                ..Limits::default()
            },
            "read_timeout",
        ),
    ] {
        let e = Server::start_with("127.0.0.1:0", rt.observed().clone(), limits).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(field), "{e}");
    }
}
