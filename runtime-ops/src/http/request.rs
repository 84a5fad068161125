//! Just enough HTTP/1.x to serve a scrape: the request head (request line
//! and headers, up to the empty line) is parsed from the connection's
//! input buffer whole, once it is there. A request that declares a body is
//! answered and its connection closed, so that a body is never taken for
//! the next request.

/// The methods the server tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    /// Any other method: answered 405.
    Other,
}

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    /// The path without its query string.
    pub(crate) path: &'a str,
    /// HTTP/1.0 (its connections close unless it asks to keep them).
    pub(crate) http10: bool,
    /// Whether the connection stays open after the response.
    pub(crate) keep_alive: bool,
    /// A `Content-Length` other than 0, or any `Transfer-Encoding`.
    pub(crate) has_body: bool,
}

/// What the input buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// Not a whole head yet.
    Partial,
    /// A head of `len` bytes (with the empty line that ends it).
    Complete { request: Request<'a>, len: usize },
    /// A head that is not HTTP/1.x: answer with this status and close.
    Invalid(u16),
}

/// Where the head that starts `buf` ends (after its empty line), if it is
/// all there. Lines end with CRLF, or a bare LF (RFC 9112 §2.2 lets a
/// server accept it).
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' {
            let line = &buf[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses the head at the start of `buf`. Empty lines before the request
/// line are skipped (RFC 9112 §2.2) and count in `len`.
pub(crate) fn parse(buf: &[u8]) -> Parsed<'_> {
    let skipped = buf
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(buf.len());
    let rest = &buf[skipped..];
    let Some(end) = head_end(rest) else {
        return Parsed::Partial;
    };
    let Ok(head) = std::str::from_utf8(&rest[..end]) else {
        return Parsed::Invalid(400);
    };
    let mut lines = head.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Invalid(400);
    };
    if !is_token(method) || target.is_empty() || target.bytes().any(|b| b.is_ascii_control()) {
        return Parsed::Invalid(400);
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        v if v.starts_with("HTTP/") => return Parsed::Invalid(505),
        _ => return Parsed::Invalid(400),
    };
    let mut keep_alive = !http10;
    let mut has_body = false;
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Parsed::Invalid(400);
        };
        // A name must be a token: no space before the colon, and no
        // obsolete line folding (a line that starts with a space).
        if !is_token(name) {
            return Parsed::Invalid(400);
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case("keep-alive") && http10 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<u64>() {
                Ok(0) => {}
                Ok(_) => has_body = true,
                Err(_) => return Parsed::Invalid(400),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        }
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    // Origin form (`/metrics?x`); the absolute form names a host first.
    let path = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .map_or(target, |t| t.find('/').map_or("/", |i| &t[i..]));
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Parsed::Complete {
        request: Request {
            method,
            path,
            http10,
            keep_alive,
            has_body,
        },
        len: skipped + end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Request<'_>, usize) {
        match parse(buf) {
            Parsed::Complete { request, len } => (request, len),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn a_scrape_is_parsed_with_its_length() {
        let buf = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nGET /next";
        let (r, len) = complete(buf);
        assert_eq!(len, buf.len() - "GET /next".len());
        assert_eq!(
            r,
            Request {
                method: Method::Get,
                path: "/metrics",
                http10: false,
                keep_alive: true,
                has_body: false,
            }
        );
    }

    #[test]
    fn a_head_is_partial_until_its_empty_line() {
        let full = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
        for n in 0..full.len() {
            assert_eq!(parse(&full[..n]), Parsed::Partial, "{n}");
        }
        assert!(matches!(parse(full), Parsed::Complete { .. }));
    }

    #[test]
    fn connection_options_and_versions() {
        let close = complete(b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").0;
        assert!(!close.keep_alive);
        let old = complete(b"GET / HTTP/1.0\r\n\r\n").0;
        assert!(old.http10 && !old.keep_alive);
        let old_kept = complete(b"GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n").0;
        assert!(old_kept.keep_alive);
        assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n"), Parsed::Invalid(505));
    }

    #[test]
    fn bare_line_feeds_and_leading_empty_lines_are_accepted() {
        let (r, len) = complete(b"\r\n\nHEAD /metrics HTTP/1.1\nHost: a\n\n");
        assert_eq!((r.method, r.path, len), (Method::Head, "/metrics", 35));
    }

    #[test]
    fn bodies_are_noticed() {
        assert!(
            complete(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
                .0
                .has_body
        );
        assert!(
            complete(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .0
                .has_body
        );
        assert!(
            !complete(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
                .0
                .has_body
        );
        assert_eq!(complete(b"PUT / HTTP/1.1\r\n\r\n").0.method, Method::Other);
    }

    #[test]
    fn malformed_heads_are_refused() {
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Parsed::Invalid(400),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn an_absolute_target_is_served_by_its_path() {
        assert_eq!(
            complete(b"GET http://h:1/metrics HTTP/1.1\r\n\r\n").0.path,
            "/metrics"
        );
        assert_eq!(complete(b"GET http://h:1 HTTP/1.1\r\n\r\n").0.path, "/");
    }
}
