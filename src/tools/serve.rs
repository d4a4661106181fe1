//! `serve`: a replay server that speaks EventStreams' framing, for demos and tests.
//!
//! Serves `/v2/stream/<names>` from an NDJSON(.gz) file: `event: message`, an `id:` line with a
//! Kafka-style offset (the line number), and `data:`; resumes after `Last-Event-ID`, starts at
//! `?since=`, and can inject the faults the archiver must survive (disconnects, cuts in the middle
//! of an event, stalls, error statuses, slow rates).
//!
//! It is built on `std::net::TcpListener` with a minimal HTTP/1.1 request reader rather than on
//! tiny_http, because fault injection needs to close or freeze the socket at a chosen byte, and
//! tiny_http keeps keep-alive connections open on its own. It does not aim to be a general server:
//! one thread per connection, the whole input in memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cli::ServeArgs;
use crate::tools::Error;

/// Largest request head accepted; EventStreams clients send a few hundred bytes.
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;
/// A client that does not finish its request head in this time is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames are sent in HTTP chunks of about this size when no rate limit applies.
const CHUNK_BYTES: usize = 16 * 1024;
/// A stalled connection is held at most this long, so test servers never leak threads for ever.
const MAX_STALL: Duration = Duration::from_secs(3600);

/// The events to serve: all lines of the input, back to back, with their boundaries and their
/// `meta.dt` in milliseconds (`i64::MIN` when missing, so such events sort first).
struct Events {
    bytes: Vec<u8>,
    lines: Vec<(usize, usize)>,
    dt_ms: Vec<i64>,
}

impl Events {
    fn load(path: &Path) -> Result<Events, Error> {
        let context = || format!("reading {}", path.display());
        let mut file = BufReader::new(File::open(path).map_err(|e| Error::new(context(), e))?);
        // Peek at the gzip magic without consuming it.
        let is_gzip = file
            .fill_buf()
            .map_err(|e| Error::new(context(), e))?
            .starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn BufRead> = if is_gzip {
            Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(file)))
        } else {
            Box::new(file)
        };
        let mut events = Events {
            bytes: Vec::new(),
            lines: Vec::new(),
            dt_ms: Vec::new(),
        };
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::new(context(), e))?
                == 0
            {
                break;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.is_empty() {
                continue;
            }
            let start = events.bytes.len();
            events.bytes.extend_from_slice(text);
            events.lines.push((start, events.bytes.len()));
            events.dt_ms.push(dt_ms_of(text).unwrap_or(i64::MIN));
        }
        Ok(events)
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn data(&self, idx: usize) -> &[u8] {
        let (start, end) = self.lines[idx];
        &self.bytes[start..end]
    }

    /// The index of the first event whose `meta.dt` is at or after `since_ms`, as a Kafka
    /// timestamp seek does: events of that very millisecond are sent (again).
    fn first_since(&self, since_ms: i64) -> usize {
        self.dt_ms
            .iter()
            .position(|&dt| dt >= since_ms)
            .unwrap_or(self.len())
    }
}

fn dt_ms_of(data: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(data).ok()?;
    let meta = crate::event::inspect(text).ok()?;
    crate::event::parse_dt_ms(&meta.dt?)
}

/// State shared by all connections: what makes "first request" and "once" faults happen once.
struct Shared {
    args: ServeArgs,
    events: Events,
    n_requests: AtomicU64,
    stalled: AtomicBool,
}

/// Binds, prints `listening on ADDR:PORT`, and serves until killed.
pub fn run(args: ServeArgs) -> Result<(), Error> {
    let events = Events::load(&args.input)?;
    let listener = TcpListener::bind((args.addr.as_str(), args.port))
        .map_err(|e| Error::new(format!("binding {}:{}", args.addr, args.port), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::new("reading the bound address", e))?;
    log::info!(
        "serving {} events from {}",
        events.len(),
        args.input.display()
    );
    {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on {local}")
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::new("writing standard output", e))?;
    }
    let shared = Arc::new(Shared {
        args,
        events,
        n_requests: AtomicU64::new(0),
        stalled: AtomicBool::new(false),
    });
    for connection in listener.incoming() {
        let socket = match connection {
            Ok(socket) => socket,
            Err(e) => {
                log::warn!("accepting a connection: {e}");
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let peer = socket
                .peer_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string());
            if let Err(e) = handle_connection(socket, &shared) {
                log::debug!("connection from {peer} ended: {e}");
            }
        });
    }
    Ok(())
}

/// The parts of a request this server looks at.
#[derive(Debug, Default, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    query: String,
    last_event_id: Option<String>,
}

/// Reads a request head (up to the empty line) and picks out what we need.
fn read_request(socket: &mut TcpStream) -> io::Result<Request> {
    socket.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the request was complete",
            ));
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST_HEAD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
    parse_request_head(&String::from_utf8_lossy(&head))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed request line"))
}

fn parse_request_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    parts.next()?.strip_prefix("HTTP/1.")?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        last_event_id: None,
    };
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("last-event-id")
        {
            request.last_event_id = Some(value.trim().to_string());
        }
    }
    Some(request)
}

/// Where an EventStreams id points: an offset, or a timestamp in milliseconds.
#[derive(Debug, PartialEq, Eq)]
enum Position {
    Offset(u64),
    Timestamp(i64),
}

/// The position in the first usable entry of an id such as `[{"topic":…,"offset":41}]`.
fn position_from_id(id: &str) -> Option<Position> {
    let value: serde_json::Value = serde_json::from_str(id).ok()?;
    value.as_array()?.iter().find_map(|entry| {
        let offset = entry["offset"].as_u64().map(Position::Offset);
        offset.or_else(|| entry["timestamp"].as_i64().map(Position::Timestamp))
    })
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// Writes a complete non-stream response and closes.
fn respond_error(socket: &mut TcpStream, code: u16, reason: &str, detail: &str) -> io::Result<()> {
    let body = format!(
        "{{\"type\":\"about:blank\",\"title\":{},\"status\":{code},\"detail\":{}}}",
        serde_json::Value::from(reason),
        serde_json::Value::from(detail)
    );
    let retry_after = if code == 429 || code == 503 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    write!(
        socket,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\n{retry_after}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    socket.flush()?;
    socket.shutdown(Shutdown::Both)
}

fn handle_connection(mut socket: TcpStream, shared: &Shared) -> io::Result<()> {
    let request = read_request(&mut socket)?;
    let request_idx = shared.n_requests.fetch_add(1, Ordering::SeqCst);
    if let (0, Some(code)) = (request_idx, shared.args.status_first) {
        log::info!("answering the first request with {code} (--status-first)");
        return respond_error(
            &mut socket,
            code,
            reason_phrase(code),
            "injected by --status-first",
        );
    }
    if request.method != "GET" && request.method != "HEAD" {
        return respond_error(
            &mut socket,
            405,
            "Method Not Allowed",
            "only GET is supported",
        );
    }
    let Some(streams) = request
        .path
        .strip_prefix("/v2/stream/")
        .filter(|s| !s.is_empty())
    else {
        return respond_error(
            &mut socket,
            404,
            "Not Found",
            &format!("no route for {}", request.path),
        );
    };
    let topic = format!(
        "eqiad.mediawiki.{}",
        streams.split(',').next().unwrap_or(streams)
    );
    let start = match (&request.last_event_id, query_param(&request.query, "since")) {
        (Some(id), _) => match position_from_id(id) {
            Some(Position::Offset(offset)) => offset as usize + 1,
            Some(Position::Timestamp(ms)) => shared.events.first_since(ms),
            None => return respond_error(&mut socket, 400, "Bad Request", "invalid Last-Event-ID"),
        },
        (None, Some(since)) => match crate::cli::parse_since(since) {
            Ok(since_ms) => shared.events.first_since(since_ms),
            Err(_) => return respond_error(&mut socket, 400, "Bad Request", "invalid since"),
        },
        (None, None) => 0,
    };
    log::info!("{} {} from offset {start}", request.method, request.path);
    socket.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    if request.method == "HEAD" {
        return Ok(());
    }
    stream_events(socket, shared, &topic, start, request_idx)
}

fn write_chunk(socket: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
    chunk.extend_from_slice(bytes);
    chunk.extend_from_slice(b"\r\n");
    socket.write_all(&chunk)
}

/// Appends the SSE frame of an event to `out`; its id carries `position`.
fn frame(out: &mut Vec<u8>, topic: &str, position: Position, data: &[u8]) {
    out.extend_from_slice(b"event: message\nid: [{\"topic\":\"");
    out.extend_from_slice(topic.as_bytes());
    let position = match position {
        Position::Offset(offset) => format!("\"offset\":{offset}"),
        Position::Timestamp(ms) => format!("\"timestamp\":{ms}"),
    };
    out.extend_from_slice(format!("\",\"partition\":0,{position}}}]\ndata: ").as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

/// The id position of event `idx`: its offset, or its timestamp with `--id-timestamps`.
fn position(shared: &Shared, idx: usize) -> Position {
    match shared.args.id_timestamps {
        true => Position::Timestamp(shared.events.dt_ms[idx]),
        false => Position::Offset(idx as u64),
    }
}

/// How one connection ends: after how many events, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    disconnect_after: Option<u64>,
    cut_mid_event: bool,
    stall: bool,
}

/// The plan for connection `request_idx`: the fault flags as given, or under `--chaos SEED` a
/// reproducible random mix: 1 to 5000 events, then a clean close, a cut in the middle of an
/// event (half the time) or a stall (one connection in 25).
fn plan(args: &ServeArgs, request_idx: u64) -> Plan {
    let Some(seed) = args.chaos_seed else {
        return Plan {
            disconnect_after: args.disconnect_every,
            cut_mid_event: args.cut_mid_event,
            stall: false,
        };
    };
    let mut state = (seed ^ request_idx.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    Plan {
        disconnect_after: Some(1 + next() % 5000),
        cut_mid_event: next() % 2 == 0,
        stall: next() % 25 == 0,
    }
}

fn stream_events(
    mut socket: TcpStream,
    shared: &Shared,
    topic: &str,
    start: usize,
    request_idx: u64,
) -> io::Result<()> {
    let args = &shared.args;
    let plan = plan(args, request_idx);
    let mut batch = Vec::with_capacity(CHUNK_BYTES * 2);
    if let Some(retry) = args.retry_ms {
        batch.extend_from_slice(format!("retry: {retry}\n\n").as_bytes());
    }
    let started = Instant::now();
    for (n_sent, idx) in (0u64..).zip(start..shared.events.len()) {
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(n_sent as f64 / rate);
            let now = Instant::now();
            if due > now {
                write_chunk(&mut socket, &batch)?;
                batch.clear();
                std::thread::sleep(due - now);
            }
        }
        if plan.disconnect_after == Some(n_sent) {
            if plan.stall {
                write_chunk(&mut socket, &batch)?;
                log::info!("stalling after {n_sent} events (--chaos)");
                return hold_until_closed(&mut socket);
            }
            if plan.cut_mid_event {
                let mut next = Vec::new();
                frame(
                    &mut next,
                    topic,
                    position(shared, idx),
                    shared.events.data(idx),
                );
                batch.extend_from_slice(&next[..next.len() / 2]);
                write_chunk(&mut socket, &batch)?;
                log::info!("cutting the connection in the middle of event {idx} (--cut-mid-event)");
                return socket.shutdown(Shutdown::Both);
            }
            write_chunk(&mut socket, &batch)?;
            socket.write_all(b"0\r\n\r\n")?;
            log::info!("closing the connection after {n_sent} events (--disconnect-every)");
            return socket.shutdown(Shutdown::Both);
        }
        if args.stall_after == Some(n_sent) && !shared.stalled.swap(true, Ordering::SeqCst) {
            write_chunk(&mut socket, &batch)?;
            log::info!("stalling after {n_sent} events (--stall-after)");
            return hold_until_closed(&mut socket);
        }
        frame(
            &mut batch,
            topic,
            position(shared, idx),
            shared.events.data(idx),
        );
        if batch.len() >= CHUNK_BYTES {
            write_chunk(&mut socket, &batch)?;
            batch.clear();
        }
    }
    write_chunk(&mut socket, &batch)?;
    log::info!(
        "all {} events sent; keeping the stream open",
        shared.events.len()
    );
    loop {
        std::thread::sleep(args.keepalive);
        write_chunk(&mut socket, b":\n")?;
    }
}

/// Keeps a stalled socket open, sending nothing, until the client goes away.
fn hold_until_closed(socket: &mut TcpStream) -> io::Result<()> {
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    let started = Instant::now();
    let mut buf = [0u8; 512];
    while started.elapsed() < MAX_STALL {
        match socket.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_parsing() {
        let head = "GET /v2/stream/recentchange?since=5 HTTP/1.1\r\nHost: x\r\nlast-event-id: [{\"offset\":3}]\r\n\r\n";
        let request = parse_request_head(head).expect("valid");
        assert_eq!(request.path, "/v2/stream/recentchange");
        assert_eq!(query_param(&request.query, "since"), Some("5"));
        let id = request.last_event_id.as_deref().expect("id");
        assert_eq!(position_from_id(id), Some(Position::Offset(3)));
        assert!(parse_request_head("garbage\r\n\r\n").is_none());
    }

    #[test]
    fn ids_with_offsets_or_timestamps() {
        let by_time = "[{\"topic\":\"t\",\"partition\":0,\"timestamp\":5}]";
        assert_eq!(position_from_id(by_time), Some(Position::Timestamp(5)));
        let two = "[{\"topic\":\"t\",\"offset\":-1},{\"offset\":9}]";
        assert_eq!(position_from_id(two), Some(Position::Offset(9)));
        assert_eq!(position_from_id("nonsense"), None);
    }

    #[test]
    fn frames_look_like_wikimedia() {
        let mut out = Vec::new();
        frame(
            &mut out,
            "eqiad.mediawiki.recentchange",
            Position::Offset(7),
            b"{}",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: message\nid: [{\"topic\":\"eqiad.mediawiki.recentchange\",\"partition\":0,\"offset\":7}]\ndata: {}\n\n"
        );
    }

    #[test]
    fn chaos_plans_mix_all_faults_reproducibly() {
        let cli = crate::cli::parse_args(
            ["serve", "--input", "x", "--chaos", "3"].map(std::ffi::OsString::from),
        );
        let Ok(crate::cli::Command::Serve(args)) = cli else {
            panic!("serve args")
        };
        let plans: Vec<Plan> = (0..500).map(|idx| plan(&args, idx)).collect();
        assert!(
            plans
                .iter()
                .all(|p| p.disconnect_after.is_some_and(|n| (1..=5000).contains(&n)))
        );
        assert!(plans.iter().any(|p| p.stall) && plans.iter().any(|p| p.cut_mid_event));
        assert!(plans.iter().any(|p| !p.stall && !p.cut_mid_event));
        assert_eq!(plans[7], plan(&args, 7));
    }
}
