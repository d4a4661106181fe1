//! The HTTP/1.1 side of `serve`: reading a request head with bounds, the parts of it we use,
//! complete responses (EventStreams-style JSON errors) and chunks of a streamed body.
//!
//! Hand-made on `std::net::TcpStream`, because fault injection must close or freeze the socket
//! at a chosen byte, which a server library that manages keep-alive connections itself hides. Finding and parsing the head is `httpd`'s, shared with the health endpoint.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::httpd::{self, reason_phrase};

/// Largest request head accepted; EventStreams clients send a few hundred bytes.
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;
/// A client that does not finish its request head within this time of its connection is
/// dropped: one deadline from accept, not per read, so that trickling bytes buys no time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The parts of a request this server looks at.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) last_event_id: Option<String>,
    /// `Accept: application/json` asks for NDJSON instead of SSE.
    pub(super) wants_json: bool,
    pub(super) user_agent: Option<String>,
}

/// Reads a request head (up to the empty line) by `REQUEST_TIMEOUT` after `accepted_at`, and
/// picks out what we need.
pub(super) fn read_request(socket: &mut TcpStream, accepted_at: Instant) -> io::Result<Request> {
    let deadline = accepted_at + REQUEST_TIMEOUT;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(end) = httpd::head_end(&head) {
            break end;
        }
        if head.len() > MAX_REQUEST_HEAD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no complete request head in time",
            ));
        }
        socket.set_read_timeout(Some(left))?;
        let n = socket.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the request was complete",
            ));
        }
        head.extend_from_slice(&buf[..n]);
    };
    parse_request_head(&String::from_utf8_lossy(&head[..end]))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed request line"))
}

/// The parts of a request head that `serve` looks at.
pub(super) fn parse_request_head(text: &str) -> Option<Request> {
    let head = httpd::parse(text)?;
    Some(Request {
        method: head.method.to_string(),
        path: head.path().to_string(),
        query: head.query().to_string(),
        last_event_id: head.header("last-event-id").map(String::from),
        user_agent: head.header("user-agent").map(String::from),
        // EventSource sends `text/event-stream`; only an explicit JSON preference switches.
        wants_json: head.header("accept").is_some_and(|value| {
            value.contains("application/json") && !value.contains("text/event-stream")
        }),
    })
}

pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(idx + 1..idx + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                idx += 3;
            }
            b'+' => {
                out.push(b' ');
                idx += 1;
            }
            byte => {
                out.push(byte);
                idx += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Headers every response carries: browsers on other origins may read the stream, as on
/// stream.wikimedia.org.
pub(super) const CORS_HEADERS: &str = "Access-Control-Allow-Origin: *\r\n\
    Access-Control-Allow-Headers: Last-Event-ID, Accept\r\n";

/// The `Retry-After` that 429 and 503 answers carry (`--retry-after`), set once at start: one
/// value for the whole server, read by every connection thread.
pub(super) static RETRY_AFTER_SECS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(1);

/// Writes a complete response and closes.
pub(super) fn respond(
    socket: &mut TcpStream,
    code: u16,
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    let retry_after = match code {
        429 | 503 => format!(
            "Retry-After: {}\r\n",
            RETRY_AFTER_SECS.load(std::sync::atomic::Ordering::Relaxed)
        ),
        _ => String::new(),
    };
    let headers = format!("{CORS_HEADERS}{retry_after}");
    httpd::write_response(socket, code, content_type, &headers, body, false)?;
    socket.shutdown(Shutdown::Both)
}

/// An error in the shape of EventStreams' (HyperSwitch) JSON error bodies, for a request with
/// `method` (lower case in the body, as theirs).
pub(super) fn respond_error(
    socket: &mut TcpStream,
    code: u16,
    (method, uri): (&str, &str),
    detail: &str,
) -> io::Result<()> {
    let body = serde_json::json!({
        "type": "https://mediawiki.org/wiki/HyperSwitch/errors/".to_string()
            + &reason_phrase(code).to_lowercase().replace(' ', "_"),
        "title": reason_phrase(code),
        "method": method.to_ascii_lowercase(),
        "detail": detail,
        "uri": uri,
        "status": code,
    });
    respond(socket, code, "application/problem+json", &body.to_string())
}

pub(super) fn write_chunk(socket: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
    chunk.extend_from_slice(bytes);
    chunk.extend_from_slice(b"\r\n");
    socket.write_all(&chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_parsing() {
        let head = "GET /v2/stream/recentchange?since=5 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nlast-event-id: [{\"offset\":3}]\r\n\r\n";
        let request = parse_request_head(head).expect("valid");
        assert_eq!(request.path, "/v2/stream/recentchange");
        assert_eq!(request.query, "since=5");
        assert_eq!(
            percent_decode("2024-11-23T09%3A00%3A03Z").as_deref(),
            Some("2024-11-23T09:00:03Z")
        );
        assert_eq!(percent_decode("a+b%2Bc").as_deref(), Some("a b+c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%e"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
        assert!(request.wants_json);
        assert_eq!(request.last_event_id.as_deref(), Some("[{\"offset\":3}]"));
        assert!(parse_request_head("garbage\r\n\r\n").is_none());
        let sse = parse_request_head("GET / HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n");
        assert!(!sse.expect("valid").wants_json);
    }
}
