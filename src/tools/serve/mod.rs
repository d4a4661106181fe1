//! `serve`: a stand-in for stream.wikimedia.org that replays archives, for demos, tests and
//! programs written for EventStreams (browser EventSource, Python sseclient, Node eventsource).
//!
//! Serves `/v2/stream/{streams}` (comma-separated) from archive directories and NDJSON(.gz)
//! files: the events whose `meta.stream` is one of the streams, merged across inputs in
//! `meta.dt` order and read from the files as they are sent (never loaded whole). Ids carry
//! per-topic-partition timestamps (or offsets), and `Last-Event-ID`, `since`, `Accept:
//! application/json`, CORS, `/_info` and a per-IP connection limit behave as on the real
//! service. It can inject the faults the archiver must survive (disconnects, cuts in the middle
//! of an event, stalls, error statuses, slow rates).
//!
//! Its parts: `http` the request head and responses, `source` reading and merging inputs,
//! `position` EventStreams ids and resume, `fault` the fault plans. This file serves the
//! connections: one thread each, on a plain `std::net::TcpListener`.

mod fault;
mod http;
mod position;
mod source;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use self::fault::{hold_until_closed, plan, wait_unless_closed};
use self::http::{CORS_HEADERS, query_param, read_request, respond, respond_error, write_chunk};
pub use self::position::IdMarks;
use self::position::{Positions, parse_last_event_id};
use self::source::{Catalog, Merge};
use crate::httpd::LogLimiter;
use crate::tools::Error;

/// What `serve` serves and which faults it injects.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Archive directories and NDJSON(.gz) files.
    pub inputs: Vec<PathBuf>,
    pub addr: String,
    pub port: u16,
    pub retry_ms: Option<u64>,
    pub rate: Option<f64>,
    pub disconnect_every: Option<u64>,
    pub cut_mid_event: bool,
    pub stall_after: Option<u64>,
    pub status_first: Option<u16>,
    /// `--status-later CODE`: the second and third requests are answered with CODE.
    pub status_later: Option<u16>,
    /// The `Retry-After` of 429 and 503 answers, in seconds.
    pub retry_after_secs: u64,
    pub keepalive: Duration,
    /// What the ids carry.
    pub id_marks: IdMarks,
    /// More connections from one address get 429.
    pub max_connections_per_ip: Option<usize>,
    /// `--chaos SEED`: random disconnects, cuts and stalls, reproducible from the seed.
    pub chaos_seed: Option<u64>,
}

/// At most this many connections are served at once, one thread each; more are answered 503.
/// Enough for every test and demo, and a bound on threads and file descriptors.
const MAX_CONNECTIONS: usize = 256;
/// After a failed accept (no file descriptors left), wait this long, doubling up to the max.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Frames are sent in HTTP chunks of about this size when no rate limit applies.
const CHUNK_BYTES: usize = 16 * 1024;

/// State shared by all connections: what makes "first request" and "once" faults happen once,
/// and the connections per client address.
struct Shared {
    args: Config,
    catalog: Catalog,
    n_requests: AtomicU64,
    stalled: AtomicBool,
    connections: Mutex<HashMap<IpAddr, usize>>,
    /// Connections being served, for `MAX_CONNECTIONS`.
    n_connections: Arc<AtomicUsize>,
}

/// Counts a client's open connection while it lives.
struct ConnectionSlot<'a> {
    shared: &'a Shared,
    ip: IpAddr,
}

impl Drop for ConnectionSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut connections) = self.shared.connections.lock()
            && let Some(n) = connections.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                connections.remove(&self.ip);
            }
        }
    }
}

/// Binds, prints `listening on ADDR:PORT`, and serves until killed.
pub fn run(args: Config) -> Result<(), Error> {
    http::RETRY_AFTER_SECS.store(args.retry_after_secs, Ordering::Relaxed);
    let catalog = Catalog::load(&args.inputs)?;
    let listener = TcpListener::bind((args.addr.as_str(), args.port))
        .map_err(|e| Error::new(format!("binding {}:{}", args.addr, args.port), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::new("reading the bound address", e))?;
    let n_files: usize = catalog.sources.iter().map(Vec::len).sum();
    log::info!(
        "serving {n_files} files; streams: {}",
        catalog
            .streams
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on {local}")
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::new("writing standard output", e))?;
    }
    let shared = Arc::new(Shared {
        args,
        catalog,
        n_requests: AtomicU64::new(0),
        stalled: AtomicBool::new(false),
        connections: Mutex::new(HashMap::new()),
        n_connections: Arc::new(AtomicUsize::new(0)),
    });
    let mut accept_errors = LogLimiter::default();
    let mut spawn_errors = LogLimiter::default();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let socket = match listener.accept() {
            Ok((socket, _)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                socket
            }
            Err(e) => {
                // Out of file descriptors (or another accept failure): wait for connections to
                // end instead of spinning on the same error.
                if let Some(n_held_back) = accept_errors.allow() {
                    log::warn!(
                        "accepting a connection: {e}; retrying{}",
                        held_back(n_held_back)
                    );
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Some(slot) = Busy::take(&shared.n_connections) else {
            refuse_busy(socket);
            continue;
        };
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("serve".into())
            .spawn(move || {
                let _slot = slot;
                let peer = socket
                    .peer_addr()
                    .map_or_else(|_| "?".to_string(), |a| a.to_string());
                if let Err(e) = handle_connection(socket, &worker) {
                    log::debug!("connection from {peer} ended: {e}");
                }
            });
        // On failure the closure, and with it the socket, is dropped: the client sees a close.
        if let Err(e) = spawned
            && let Some(n_held_back) = spawn_errors.allow()
        {
            log::warn!(
                "no thread for a connection: {e}; closing it{}",
                held_back(n_held_back)
            );
        }
    }
}

/// ", N more like it" for a log line that stands for several.
fn held_back(n: u64) -> String {
    match n {
        0 => String::new(),
        n => format!(" ({n} more since the last report)"),
    }
}

/// Answers 503 without waiting on the client, and closes: every connection slot is taken.
fn refuse_busy(mut socket: TcpStream) {
    let _ = socket.set_nonblocking(true);
    let _ = respond(&mut socket, 503, "text/plain", "too many connections\n");
}

/// One of the `MAX_CONNECTIONS` connection slots, given back when dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn take(n_open: &Arc<AtomicUsize>) -> Option<Busy> {
        n_open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_CONNECTIONS).then_some(n + 1)
            })
            .ok()
            .map(|_| Busy(Arc::clone(n_open)))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handle_connection(mut socket: TcpStream, shared: &Shared) -> io::Result<()> {
    let request = read_request(&mut socket)?;
    let request_idx = shared.n_requests.fetch_add(1, Ordering::SeqCst);
    let uri = request.path.clone();
    log::info!(
        "request {} from User-Agent {:?}",
        request_idx + 1,
        request.user_agent.as_deref().unwrap_or("")
    );
    if let (0, Some(code)) = (request_idx, shared.args.status_first) {
        log::info!("answering the first request with {code} (--status-first)");
        return respond_error(&mut socket, code, &uri, "injected by --status-first");
    }
    if let (1 | 2, Some(code)) = (request_idx, shared.args.status_later) {
        log::info!(
            "answering request {} with {code} (--status-later)",
            request_idx + 1
        );
        return respond_error(&mut socket, code, &uri, "injected by --status-later");
    }
    match request.method.as_str() {
        "GET" | "HEAD" => {}
        "OPTIONS" => return respond(&mut socket, 204, "text/plain", ""),
        _ => return respond_error(&mut socket, 405, &uri, "only GET is supported"),
    }
    if request.path == "/_info" {
        let info = serde_json::json!({
            "name": "wikistream-archiver serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "replays archived Wikimedia EventStreams",
            "streams": shared.catalog.streams,
        });
        return respond(&mut socket, 200, "application/json", &info.to_string());
    }
    let Some(names) = request
        .path
        .strip_prefix("/v2/stream/")
        .filter(|s| !s.is_empty())
    else {
        return respond_error(
            &mut socket,
            404,
            &uri,
            &format!("no route for {}", request.path),
        );
    };
    let names: Vec<String> = names.split(',').map(String::from).collect();
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| n.is_empty() || !shared.catalog.knows(n))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let detail = format!("Invalid streams: {}", unknown.join(","));
        return respond_error(&mut socket, 400, &uri, &detail);
    }
    let since_ms = match query_param(&request.query, "since") {
        Some(since) => match crate::times::parse_ms_or_rfc3339(&since) {
            Ok(ms) => Some(ms),
            Err(_) => {
                return respond_error(&mut socket, 400, &uri, &format!("invalid since: {since}"));
            }
        },
        None => None,
    };
    let resume = match &request.last_event_id {
        Some(id) => match parse_last_event_id(id) {
            Some(entries) => entries,
            None => {
                return respond_error(
                    &mut socket,
                    400,
                    &uri,
                    &format!("invalid Last-Event-ID: {id}"),
                );
            }
        },
        None => Vec::new(),
    };
    let ip = socket.peer_addr()?.ip();
    let _slot = {
        let mut connections = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = connections.entry(ip).or_insert(0);
        if shared
            .args
            .max_connections_per_ip
            .is_some_and(|max| *n >= max)
        {
            drop(connections);
            log::info!("refusing {ip}: --max-connections-per-ip reached");
            return respond_error(
                &mut socket,
                429,
                &uri,
                "Too many concurrent connections from your client IP address",
            );
        }
        *n += 1;
        ConnectionSlot { shared, ip }
    };
    log::info!(
        "{} {} (since {since_ms:?}, Last-Event-ID {:?})",
        request.method,
        request.path,
        request.last_event_id
    );
    let content_type = match request.wants_json {
        true => "application/json",
        false => "text/event-stream; charset=utf-8",
    };
    write!(
        socket,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n{CORS_HEADERS}\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    if request.method == "HEAD" {
        return Ok(());
    }
    // As EventStreams does: a comment at once, so the client knows it is connected.
    if !request.wants_json {
        write_chunk(&mut socket, b":ok\n\n")?;
    }
    let positions = Positions::new(resume, since_ms);
    let seeking = !positions.is_start();
    let mut keepalive = Keepalive::new(request.wants_json, shared.args.keepalive);
    let mut sent = Ok(());
    let mut seek_past = |event: &source::ArchivedEvent| {
        if sent.is_ok() {
            sent = keepalive.tick(&mut socket);
        }
        positions.seek_past(event)
    };
    let started = Instant::now();
    let merge = Merge::new(
        &shared.catalog,
        names,
        seeking.then_some(&mut seek_past as &mut dyn FnMut(&source::ArchivedEvent) -> bool),
    );
    if seeking {
        log::info!("seeking took {:.3} s", started.elapsed().as_secs_f64());
    }
    sent?;
    stream_events(
        socket,
        shared,
        merge,
        positions,
        request.wants_json,
        request_idx,
    )
}

/// Keep-alive comments while a connection seeks or skips, so that a client's idle timeout
/// never fires before its first event. A failed write is kept for the caller.
struct Keepalive {
    /// NDJSON has no comments to send.
    enabled: bool,
    every: Duration,
    last: Instant,
}

impl Keepalive {
    fn new(json: bool, every: Duration) -> Keepalive {
        Keepalive {
            enabled: !json,
            // Well inside any idle timeout a client would set.
            every: every.min(Duration::from_secs(1)),
            last: Instant::now(),
        }
    }

    fn tick(&mut self, socket: &mut TcpStream) -> io::Result<()> {
        if self.enabled && self.last.elapsed() >= self.every {
            self.last = Instant::now();
            write_chunk(socket, b":\n")?;
        }
        Ok(())
    }
}

/// Appends the SSE frame of an event with id `id`, or its NDJSON line, to `out`.
fn frame(out: &mut Vec<u8>, id: Option<&str>, data: &[u8]) {
    if let Some(id) = id {
        out.extend_from_slice(b"event: message\nid: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\ndata: ");
    }
    out.extend_from_slice(data);
    out.extend_from_slice(if id.is_some() { b"\n\n" } else { b"\n" });
}

fn stream_events(
    mut socket: TcpStream,
    shared: &Shared,
    mut merge: Merge,
    mut positions: Positions,
    json: bool,
    request_idx: u64,
) -> io::Result<()> {
    let args = &shared.args;
    let plan = plan(args, request_idx);
    let mut batch = Vec::with_capacity(CHUNK_BYTES * 2);
    if let (Some(retry), false) = (args.retry_ms, json) {
        batch.extend_from_slice(format!("retry: {retry}\n\n").as_bytes());
    }
    let started = Instant::now();
    let mut n_sent = 0u64;
    let mut n_skipped = 0u64;
    let mut keepalive = Keepalive::new(json, args.keepalive);
    while let Some(event) = merge.next() {
        if positions.skips(&event) {
            n_skipped += 1;
            if n_skipped.is_multiple_of(1024) {
                keepalive.tick(&mut socket)?;
            }
            continue;
        }
        if let Some(rate) = args.rate {
            let due = started + Duration::from_secs_f64(n_sent as f64 / rate);
            let now = Instant::now();
            if due > now {
                write_chunk(&mut socket, &batch)?;
                batch.clear();
                std::thread::sleep(due - now);
            }
        }
        let id = (!json).then(|| positions.id_after(&event, args.id_marks));
        if plan.disconnect_after == Some(n_sent) {
            if plan.stall {
                write_chunk(&mut socket, &batch)?;
                log::info!("stalling after {n_sent} events (--chaos)");
                return hold_until_closed(&mut socket);
            }
            if plan.cut_mid_event {
                let mut next = Vec::new();
                frame(&mut next, id.as_deref(), &event.data);
                batch.extend_from_slice(&next[..next.len() / 2]);
                write_chunk(&mut socket, &batch)?;
                log::info!("cutting the connection in the middle of an event (--cut-mid-event)");
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
        frame(&mut batch, id.as_deref(), &event.data);
        n_sent += 1;
        if batch.len() >= CHUNK_BYTES {
            write_chunk(&mut socket, &batch)?;
            batch.clear();
        }
    }
    write_chunk(&mut socket, &batch)?;
    log::info!("all {n_sent} events sent; keeping the stream open");
    if json {
        // NDJSON has no comments to keep the connection alive with.
        return hold_until_closed(&mut socket);
    }
    loop {
        if wait_unless_closed(&mut socket, args.keepalive)? {
            return Ok(());
        }
        write_chunk(&mut socket, b":\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_look_like_wikimedia() {
        let mut out = Vec::new();
        frame(&mut out, Some("[{\"offset\":7}]"), b"{}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: message\nid: [{\"offset\":7}]\ndata: {}\n\n"
        );
        let mut out = Vec::new();
        frame(&mut out, None, b"{}");
        assert_eq!(out, b"{}\n");
    }
}
