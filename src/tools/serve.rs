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
//! It is built on `std::net::TcpListener` with a minimal HTTP/1.1 request reader rather than on
//! tiny_http, because fault injection needs to close or freeze the socket at a chosen byte, and
//! tiny_http keeps keep-alive connections open on its own. One thread per connection.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::archive;
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
/// Lines read from the start of each input to learn which streams it holds.
const STREAM_SCAN_LINES: usize = 1000;
/// Read buffer per open input file.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The inputs: per input, its files in order; and the stream names found in them.
struct Catalog {
    sources: Vec<Vec<PathBuf>>,
    streams: BTreeSet<String>,
}

impl Catalog {
    fn load(inputs: &[PathBuf]) -> Result<Catalog, Error> {
        let mut sources = Vec::new();
        let mut streams = BTreeSet::new();
        for input in inputs {
            let context = || format!("reading {}", input.display());
            let metadata = std::fs::metadata(input).map_err(|e| Error::new(context(), e))?;
            let files = if metadata.is_dir() {
                let listing = archive::list_archive(input).map_err(Error::from_archive)?;
                listing.events.into_iter().map(|(path, _)| path).collect()
            } else {
                vec![input.clone()]
            };
            let mut reader = SourceReader::new(files.clone());
            for _ in 0..STREAM_SCAN_LINES {
                let Some(event) = reader.next_event(&mut HashMap::new()) else {
                    break;
                };
                streams.insert(event.stream.unwrap_or_default());
            }
            sources.push(files);
        }
        streams.remove("");
        Ok(Catalog { sources, streams })
    }

    /// Whether a stream name in a URL is served: `recentchange` is `mediawiki.recentchange`.
    fn knows(&self, name: &str) -> bool {
        self.streams.is_empty()
            || self.streams.contains(name)
            || self.streams.contains(&format!("mediawiki.{name}"))
    }
}

/// One event as read from an input.
struct Event {
    data: Vec<u8>,
    /// `meta.dt` in milliseconds; `i64::MIN` when missing, so such events sort first.
    dt_ms: i64,
    stream: Option<String>,
    topic: String,
    partition: i64,
    offset: i64,
}

/// Reads the events of one input's files in order, streaming from gzip or plain NDJSON.
struct SourceReader {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(PathBuf, Box<dyn BufRead + Send>)>,
    line: Vec<u8>,
}

impl SourceReader {
    fn new(files: Vec<PathBuf>) -> SourceReader {
        SourceReader {
            files: files.into_iter(),
            current: None,
            line: Vec::new(),
        }
    }

    fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
        let mut file = BufReader::with_capacity(READ_BUFFER_BYTES, File::open(path)?);
        // Peek at the gzip magic without consuming it.
        let is_gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        Ok(match is_gzip {
            true => Box::new(BufReader::with_capacity(
                READ_BUFFER_BYTES,
                flate2::bufread::MultiGzDecoder::new(file),
            )),
            false => Box::new(file),
        })
    }

    /// The next non-empty line, across files. A file that cannot be read to its end (the torn
    /// tail of an open `.part` file, damage) ends early with a log line.
    fn next_line(&mut self) -> Option<&[u8]> {
        loop {
            if self.current.is_none() {
                let path = self.files.next()?;
                match SourceReader::open(&path) {
                    Ok(reader) => self.current = Some((path, reader)),
                    Err(e) => {
                        log::warn!("skipping {}: {e}", path.display());
                        continue;
                    }
                }
            }
            let (path, reader) = self.current.as_mut().expect("opened above");
            self.line.clear();
            match reader.read_until(b'\n', &mut self.line) {
                Ok(0) => self.current = None,
                Ok(_) => {
                    while self.line.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                        self.line.pop();
                    }
                    if !self.line.is_empty() {
                        return Some(&self.line);
                    }
                }
                Err(e) => {
                    log::warn!("{}: stopped reading: {e}", path.display());
                    self.current = None;
                }
            }
        }
    }

    /// The next event; offsets missing from `meta` are counted per topic in `counters`.
    fn next_event(&mut self, counters: &mut HashMap<String, i64>) -> Option<Event> {
        let line = self.next_line()?;
        let text = String::from_utf8_lossy(line);
        let meta = crate::event::inspect(&text).unwrap_or_default();
        let stream = meta.stream.as_deref().map(String::from);
        let topic = match (&meta.topic, &stream) {
            (Some(topic), _) => topic.to_string(),
            (None, Some(stream)) => format!("eqiad.{stream}"),
            (None, None) => "eqiad.unknown".to_string(),
        };
        let counter = counters.entry(topic.clone()).or_insert(0);
        let offset = meta.offset.unwrap_or(*counter);
        *counter = offset + 1;
        Some(Event {
            dt_ms: meta
                .dt
                .as_deref()
                .and_then(crate::event::parse_dt_ms)
                .unwrap_or(i64::MIN),
            partition: meta.partition.unwrap_or(0),
            stream,
            topic,
            offset,
            data: line.to_vec(),
        })
    }
}

/// All inputs merged by `meta.dt` (ties keep input order), only the requested streams.
struct Merge {
    sources: Vec<SourceReader>,
    heads: Vec<Option<Event>>,
    wanted: Vec<String>,
    counters: HashMap<String, i64>,
}

impl Merge {
    fn new(catalog: &Catalog, wanted: Vec<String>) -> Merge {
        let mut merge = Merge {
            sources: catalog
                .sources
                .iter()
                .cloned()
                .map(SourceReader::new)
                .collect(),
            heads: Vec::new(),
            wanted,
            counters: HashMap::new(),
        };
        merge.heads = (0..merge.sources.len())
            .map(|idx| merge.pull(idx))
            .collect();
        merge
    }

    /// The next wanted event of source `idx`.
    fn pull(&mut self, idx: usize) -> Option<Event> {
        loop {
            let event = self.sources[idx].next_event(&mut self.counters)?;
            let wanted = match &event.stream {
                None => true,
                Some(stream) => self.wanted.iter().any(|name| {
                    stream == name || stream.strip_prefix("mediawiki.") == Some(name.as_str())
                }),
            };
            if wanted {
                return Some(event);
            }
        }
    }

    fn next(&mut self) -> Option<Event> {
        let idx = (0..self.heads.len())
            .filter(|&idx| self.heads[idx].is_some())
            .min_by_key(|&idx| self.heads[idx].as_ref().map(|e| e.dt_ms))?;
        let event = self.heads[idx].take();
        self.heads[idx] = self.pull(idx);
        event
    }
}

/// State shared by all connections: what makes "first request" and "once" faults happen once,
/// and the connections per client address.
struct Shared {
    args: ServeArgs,
    catalog: Catalog,
    n_requests: AtomicU64,
    stalled: AtomicBool,
    connections: Mutex<HashMap<IpAddr, usize>>,
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
pub fn run(args: ServeArgs) -> Result<(), Error> {
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
    /// `Accept: application/json` asks for NDJSON instead of SSE.
    wants_json: bool,
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
        ..Request::default()
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("last-event-id") {
            request.last_event_id = Some(value.trim().to_string());
        } else if name.eq_ignore_ascii_case("accept") {
            // EventSource sends `text/event-stream`; only an explicit JSON preference switches.
            request.wants_json =
                value.contains("application/json") && !value.contains("text/event-stream");
        }
    }
    Some(request)
}

/// A position in one topic-partition, as in EventStreams ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// The last offset received: resume after it.
    Offset(i64),
    /// A time in milliseconds: resume at the first event at or after it (Kafka's seek by time,
    /// which sends events of that very millisecond again).
    Timestamp(i64),
}

/// One entry of an id: `{"topic":…,"partition":…,"offset"|"timestamp":…}`. A missing topic
/// applies to every topic (older clients store `[{"offset":N}]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    topic: Option<String>,
    partition: i64,
    mark: Mark,
}

/// The entries of a `Last-Event-ID`; None when it is not an EventStreams id.
fn parse_last_event_id(id: &str) -> Option<Vec<Entry>> {
    let value: serde_json::Value = serde_json::from_str(id).ok()?;
    let entries: Vec<Entry> = value
        .as_array()?
        .iter()
        .filter_map(|entry| {
            let mark = match (entry["offset"].as_i64(), entry["timestamp"].as_i64()) {
                // Kafka's "no position yet": this entry does not constrain anything.
                (Some(offset), _) if offset >= 0 => Mark::Offset(offset),
                (_, Some(ms)) => Mark::Timestamp(ms),
                _ => return None,
            };
            Some(Entry {
                topic: entry["topic"].as_str().map(String::from),
                partition: entry["partition"].as_i64().unwrap_or(0),
                mark,
            })
        })
        .collect();
    (!value.as_array()?.is_empty()).then_some(entries)
}

/// Where a connection starts, per topic-partition, and the positions its ids report.
struct Positions {
    resume: Vec<Entry>,
    since_ms: Option<i64>,
    /// The latest position per topic-partition, in first-seen order, for the `id:` lines.
    latest: Vec<(String, i64, Mark)>,
}

impl Positions {
    fn new(resume: Vec<Entry>, since_ms: Option<i64>) -> Positions {
        let latest = resume
            .iter()
            .filter_map(|e| Some((e.topic.clone()?, e.partition, e.mark)))
            .collect();
        Positions {
            resume,
            since_ms,
            latest,
        }
    }

    /// Whether `event` comes before the start position.
    fn skips(&self, event: &Event) -> bool {
        let entry = self.resume.iter().find(|e| {
            e.partition == event.partition && e.topic.as_deref().is_none_or(|t| t == event.topic)
        });
        match entry.map(|e| e.mark) {
            Some(Mark::Offset(offset)) => event.offset <= offset,
            Some(Mark::Timestamp(ms)) => event.dt_ms < ms,
            None => self.since_ms.is_some_and(|since| event.dt_ms < since),
        }
    }

    /// Records `event` as sent and returns its id line's JSON.
    fn id_after(&mut self, event: &Event, timestamps: bool) -> String {
        let mark = match timestamps {
            true => Mark::Timestamp(event.dt_ms),
            false => Mark::Offset(event.offset),
        };
        match self
            .latest
            .iter_mut()
            .find(|(topic, partition, _)| *topic == event.topic && *partition == event.partition)
        {
            Some(entry) => entry.2 = mark,
            None => self
                .latest
                .push((event.topic.clone(), event.partition, mark)),
        }
        // Written by hand to keep EventStreams' key order: topic, partition, position.
        let entries: Vec<String> = self
            .latest
            .iter()
            .map(|(topic, partition, mark)| {
                let (key, value) = match mark {
                    Mark::Offset(offset) => ("offset", offset),
                    Mark::Timestamp(ms) => ("timestamp", ms),
                };
                format!(
                    "{{\"topic\":{},\"partition\":{partition},\"{key}\":{value}}}",
                    serde_json::Value::from(topic.as_str())
                )
            })
            .collect();
        format!("[{}]", entries.join(","))
    }
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// Headers every response carries: browsers on other origins may read the stream, as on
/// stream.wikimedia.org.
const CORS_HEADERS: &str = "Access-Control-Allow-Origin: *\r\n\
    Access-Control-Allow-Headers: Last-Event-ID, Accept\r\n";

/// Writes a complete response and closes.
fn respond(socket: &mut TcpStream, code: u16, content_type: &str, body: &str) -> io::Result<()> {
    let retry_after = if code == 429 || code == 503 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    write!(
        socket,
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{CORS_HEADERS}{retry_after}Connection: close\r\n\r\n{body}",
        reason_phrase(code),
        body.len()
    )?;
    socket.flush()?;
    socket.shutdown(Shutdown::Both)
}

/// An error in the shape of EventStreams' (HyperSwitch) JSON error bodies.
fn respond_error(socket: &mut TcpStream, code: u16, uri: &str, detail: &str) -> io::Result<()> {
    let body = serde_json::json!({
        "type": "https://mediawiki.org/wiki/HyperSwitch/errors/".to_string()
            + &reason_phrase(code).to_lowercase().replace(' ', "_"),
        "title": reason_phrase(code),
        "method": "get",
        "detail": detail,
        "uri": uri,
        "status": code,
    });
    respond(socket, code, "application/problem+json", &body.to_string())
}

fn handle_connection(mut socket: TcpStream, shared: &Shared) -> io::Result<()> {
    let request = read_request(&mut socket)?;
    let request_idx = shared.n_requests.fetch_add(1, Ordering::SeqCst);
    let uri = request.path.clone();
    if let (0, Some(code)) = (request_idx, shared.args.status_first) {
        log::info!("answering the first request with {code} (--status-first)");
        return respond_error(&mut socket, code, &uri, "injected by --status-first");
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
        Some(since) => match crate::cli::parse_since(since) {
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
    let positions = Positions::new(resume, since_ms);
    let merge = Merge::new(&shared.catalog, names);
    stream_events(
        socket,
        shared,
        merge,
        positions,
        request.wants_json,
        request_idx,
    )
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
    while let Some(event) = merge.next() {
        if positions.skips(&event) {
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
        let id = (!json).then(|| positions.id_after(&event, !args.id_offsets));
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

/// Waits `duration` while watching for the client to go away (so its connection stops counting
/// against `--max-connections-per-ip` at once); returns true when it did.
fn wait_unless_closed(socket: &mut TcpStream, duration: Duration) -> io::Result<bool> {
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let until = Instant::now() + duration;
    let mut buf = [0u8; 512];
    while Instant::now() < until {
        match socket.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Keeps a stalled socket open, sending nothing, until the client goes away.
fn hold_until_closed(socket: &mut TcpStream) -> io::Result<()> {
    wait_unless_closed(socket, MAX_STALL).map(|_| ())
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
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

    fn event(topic: &str, offset: i64, dt_ms: i64) -> Event {
        Event {
            data: b"{}".to_vec(),
            dt_ms,
            stream: None,
            topic: topic.to_string(),
            partition: 0,
            offset,
        }
    }

    #[test]
    fn request_head_parsing() {
        let head = "GET /v2/stream/recentchange?since=5 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nlast-event-id: [{\"offset\":3}]\r\n\r\n";
        let request = parse_request_head(head).expect("valid");
        assert_eq!(request.path, "/v2/stream/recentchange");
        assert_eq!(query_param(&request.query, "since"), Some("5"));
        assert!(request.wants_json);
        let id = request.last_event_id.as_deref().expect("id");
        let entries = parse_last_event_id(id).expect("entries");
        assert_eq!(entries[0].mark, Mark::Offset(3));
        assert_eq!(entries[0].topic, None);
        assert!(parse_request_head("garbage\r\n\r\n").is_none());
        let sse = parse_request_head("GET / HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n");
        assert!(!sse.expect("valid").wants_json);
    }

    #[test]
    fn resume_per_topic_partition() {
        let id = r#"[{"topic":"eqiad.rc","partition":0,"timestamp":1000},{"topic":"codfw.rc","partition":0,"offset":7},{"topic":"x","partition":0,"offset":-1}]"#;
        let entries = parse_last_event_id(id).expect("entries");
        assert_eq!(entries.len(), 2);
        let positions = Positions::new(entries, Some(5000));
        assert!(positions.skips(&event("eqiad.rc", 1, 999)));
        assert!(!positions.skips(&event("eqiad.rc", 1, 1000)));
        assert!(positions.skips(&event("codfw.rc", 7, 9000)));
        assert!(!positions.skips(&event("codfw.rc", 8, 0)));
        // A topic-partition without an entry starts at `since`.
        assert!(positions.skips(&event("other", 0, 4999)));
        assert!(!positions.skips(&event("other", 0, 5000)));
        assert_eq!(parse_last_event_id("nonsense"), None);
        assert_eq!(parse_last_event_id("[]"), None);
    }

    #[test]
    fn ids_list_every_topic_partition_seen() {
        let mut positions = Positions::new(Vec::new(), None);
        let first = positions.id_after(&event("eqiad.rc", 5, 1000), true);
        assert_eq!(
            first,
            r#"[{"topic":"eqiad.rc","partition":0,"timestamp":1000}]"#
        );
        positions.id_after(&event("codfw.rc", 9, 1001), false);
        let third = positions.id_after(&event("eqiad.rc", 6, 1002), false);
        let value: serde_json::Value = serde_json::from_str(&third).expect("json");
        assert_eq!(value[0]["offset"], 6);
        assert_eq!(value[1]["topic"], "codfw.rc");
        // An id this server wrote resumes right after the event it belongs to.
        let resumed = Positions::new(parse_last_event_id(&third).expect("entries"), None);
        assert!(resumed.skips(&event("eqiad.rc", 6, 0)));
        assert!(!resumed.skips(&event("eqiad.rc", 7, 0)));
    }

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
