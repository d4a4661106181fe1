//! The small pieces of an HTTP/1.1 server that the health endpoint and `serve` share: finding
//! and parsing a request head within a size bound, writing a complete response, and a log line
//! limiter for errors that repeat (a full file table, no threads left).
//!
//! Parsing is pure and fuzzed (`fuzz/fuzz_targets/request_head.rs`). Sockets stay with the
//! callers, who set their own timeouts and connection limits.

use std::io::{self, Write};

/// The length of the request head at the start of `buf` (through its empty line), if complete.
/// Lines end in CRLF, or in a bare LF, which RFC 9112 allows a server to accept.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|idx| idx + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|idx| idx + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (one, other) => one.or(other),
    }
}

/// A parsed request head; it borrows the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: &'a str,
    /// The request target: path and query.
    pub target: &'a str,
    headers: &'a str,
}

impl<'a> Head<'a> {
    /// The path of the target, without the query.
    pub fn path(&self) -> &'a str {
        self.target.split(['?', '#']).next().unwrap_or_default()
    }

    /// The query of the target, without the `?`; empty when there is none.
    pub fn query(&self) -> &'a str {
        let after = self.target.split_once('?').map_or("", |(_, q)| q);
        after.split('#').next().unwrap_or_default()
    }

    /// The value of the first header called `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.split('\n').find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Parses a request head: `METHOD TARGET HTTP/1.x`, then header lines. `None` when the request
/// line is not of that shape.
pub fn parse(head: &str) -> Option<Head<'_>> {
    let (request_line, headers) = head.split_once('\n').unwrap_or((head, ""));
    let request_line = request_line.strip_suffix('\r').unwrap_or(request_line);
    let mut parts = request_line.split(' ');
    let method = parts.next().filter(|m| !m.is_empty())?;
    let target = parts.next().filter(|t| !t.is_empty())?;
    parts.next()?.strip_prefix("HTTP/1.")?;
    if parts.next().is_some() {
        return None;
    }
    Some(Head {
        method,
        target,
        headers,
    })
}

/// The reason phrase of a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes a complete response that closes the connection. `extra_headers` are whole lines,
/// each ending in CRLF. With `head_only` (a HEAD request) the body is left out.
pub fn write_response(
    out: &mut impl Write,
    code: u16,
    content_type: &str,
    extra_headers: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {extra_headers}Connection: close\r\n\r\n",
        reason_phrase(code),
        body.len()
    )?;
    if !head_only {
        out.write_all(body.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_found_and_parsed() {
        let text =
            "GET /v2/stream/rc?since=5#x HTTP/1.1\r\nHost: x\r\nlast-event-ID:  [1] \r\n\r\nbody";
        let end = head_end(text.as_bytes()).expect("complete");
        assert_eq!(&text[end..], "body");
        let head = parse(&text[..end]).expect("valid");
        assert_eq!(head.method, "GET");
        assert_eq!(head.path(), "/v2/stream/rc");
        assert_eq!(head.query(), "since=5");
        assert_eq!(head.header("Last-Event-ID"), Some("[1]"));
        assert_eq!(head.header("accept"), None);
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
        for bad in [
            "garbage\r\n\r\n",
            "GET /\r\n\r\n",
            " / HTTP/1.1\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
            "GET / HTTP/1.1 x\r\n\r\n",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn responses_close_and_head_leaves_out_the_body() {
        let mut out = Vec::new();
        write_response(&mut out, 200, "text/plain", "X: 1\r\n", "OK\n", false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 3\r\nX: 1\r\nConnection: close\r\n\r\nOK\n"));
        let mut out = Vec::new();
        write_response(&mut out, 404, "text/plain", "", "nope", true).unwrap();
        assert!(String::from_utf8(out).unwrap().ends_with("\r\n\r\n"));
    }
}
