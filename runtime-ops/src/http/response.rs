//! Responses: a scrape's, and the short plain-text ones for everything
//! else. Every response has a `Content-Length`, so that keep-alive needs
//! no chunking.

use super::request::{Method, Request};
use std::fmt;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The response to `req`, and whether the connection stays open after it.
pub(crate) fn answer(
    req: &Request<'_>,
    render: impl FnOnce() -> Result<String, fmt::Error>,
) -> (Vec<u8>, bool) {
    // A body would be read as the next request: answer, then close.
    let keep = req.keep_alive && !req.has_body;
    let head_only = req.method == Method::Head;
    let (status, body, content_type) = match (req.method, req.path) {
        (Method::Other, _) => (405, "only GET and HEAD\n".to_string(), None),
        (_, "/metrics") => match render() {
            Ok(body) => (200, body, Some(OPENMETRICS)),
            Err(_) => (500, "encoding failed\n".to_string(), None),
        },
        _ => (404, "not found: try /metrics\n".to_string(), None),
    };
    let mut out = head(
        status,
        content_type.unwrap_or("text/plain; charset=utf-8"),
        body.len(),
        if !keep {
            Some("close")
        } else if req.http10 {
            Some("keep-alive")
        } else {
            None
        },
    );
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    (out, keep)
}

/// A plain-text response after which the connection closes.
pub(crate) fn response(status: u16, body: &str) -> Vec<u8> {
    let mut out = head(
        status,
        "text/plain; charset=utf-8",
        body.len(),
        Some("close"),
    );
    out.extend_from_slice(body.as_bytes());
    out
}

fn head(status: u16, content_type: &str, len: usize, connection: Option<&str>) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    };
    let mut h = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n"
    );
    if status == 405 {
        h.push_str("Allow: GET, HEAD\r\n");
    }
    if let Some(c) = connection {
        h.push_str("Connection: ");
        h.push_str(c);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}
