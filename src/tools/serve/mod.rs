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
//! Its parts: `http` the request head and responses, `route` what a request asks for, `stream`
//! sending the events of one connection, `source` reading and merging inputs, `position`
//! EventStreams ids and resume, `fault` the fault plans. This file accepts the connections:
//! one thread each, on a plain `std::net::TcpListener`.

mod fault;
mod http;
mod position;
mod route;
mod source;
mod stream;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use self::http::{read_request, respond, respond_error};
pub use self::position::IdMarks;
use self::route::{Route, route};
use self::source::Catalog;
use crate::logging::LogLimiter;
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
    /// More streams from one address get 429.
    pub max_connections_per_ip: usize,
    /// `--chaos SEED`: random disconnects, cuts and stalls, reproducible from the seed.
    pub chaos_seed: Option<u64>,
}

/// At most this many connections are served at once, one thread each; more are answered 503.
/// Enough for every test and demo, and a bound on threads and file descriptors.
const MAX_CONNECTIONS: usize = 256;
/// After a failed accept (no file descriptors left), wait this long, doubling up to the max.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a new client waits for the slot of a connection ended for it: that thread only has
/// to see its read fail.
const RECLAIM_WAIT: Duration = Duration::from_millis(100);

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
    /// Connections still waiting for their request head, oldest first (a second handle on
    /// each): when every slot is held, a new client takes the slot of the oldest one.
    waiting: Mutex<VecDeque<(u64, TcpStream)>>,
    n_accepted: AtomicU64,
}

impl Shared {
    /// Takes a connection slot; when all are held, ends the connection that has waited longest
    /// for its request head and takes its slot once its thread lets go (within `RECLAIM_WAIT`).
    fn take_slot(&self) -> Option<Busy> {
        if let Some(slot) = Busy::take(&self.n_connections) {
            return Some(slot);
        }
        let oldest = lock(&self.waiting).pop_front();
        let (_, socket) = oldest?;
        let _ = socket.shutdown(Shutdown::Both);
        let until = Instant::now() + RECLAIM_WAIT;
        while Instant::now() < until {
            if let Some(slot) = Busy::take(&self.n_connections) {
                return Some(slot);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// Connection `id` has its request head, or gave up on it.
    fn done_waiting(&self, id: u64) {
        lock(&self.waiting).retain(|(waiting, _)| *waiting != id);
    }
}

/// `mutex` locked, even after a thread panicked while holding it (the data stays usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a client's open connection while it lives.
struct ConnectionSlot<'a> {
    shared: &'a Shared,
    ip: IpAddr,
}

impl<'a> ConnectionSlot<'a> {
    /// A slot for a connection from `ip`, unless `--max-connections-per-ip` are open already.
    fn take(shared: &'a Shared, ip: IpAddr) -> Option<ConnectionSlot<'a>> {
        let mut connections = lock(&shared.connections);
        let n = connections.entry(ip).or_insert(0);
        if *n >= shared.args.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot { shared, ip })
    }
}

impl Drop for ConnectionSlot<'_> {
    fn drop(&mut self) {
        let mut connections = lock(&self.shared.connections);
        if let Some(n) = connections.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                connections.remove(&self.ip);
            }
        }
    }
}

/// Binds, prints `listening on ADDR:PORT`, and serves until killed.
#[inline(never)] // an entry point of main.rs: see `config::from_args`
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
        waiting: Mutex::new(VecDeque::new()),
        n_accepted: AtomicU64::new(0),
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
        let accepted_at = Instant::now();
        let Some(slot) = shared.take_slot() else {
            refuse_busy(socket);
            continue;
        };
        // On failure the thread's closure, and with it the socket, is dropped: the client
        // sees a close.
        if let Err(e) = spawn_connection(&shared, socket, slot, accepted_at)
            && let Some(n_held_back) = spawn_errors.allow()
        {
            log::warn!(
                "no thread for a connection: {e}; closing it{}",
                held_back(n_held_back)
            );
        }
    }
}

/// Serves `socket` on a thread of its own, holding `slot`; it waits for its request head
/// among `Shared::waiting` until it has it.
fn spawn_connection(
    shared: &Arc<Shared>,
    socket: TcpStream,
    slot: Busy,
    accepted_at: Instant,
) -> io::Result<()> {
    let id = shared.n_accepted.fetch_add(1, Ordering::Relaxed);
    if let Ok(handle) = socket.try_clone() {
        lock(&shared.waiting).push_back((id, handle));
    }
    let worker = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("serve".into())
        .spawn(move || {
            let _slot = slot;
            let peer = socket
                .peer_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string());
            if let Err(e) = handle_connection(socket, &worker, id, accepted_at) {
                log::debug!("connection from {peer} ended: {e}");
            }
        });
    if spawned.is_err() {
        shared.done_waiting(id);
    }
    spawned.map(drop)
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

fn handle_connection(
    mut socket: TcpStream,
    shared: &Shared,
    id: u64,
    accepted_at: Instant,
) -> io::Result<()> {
    let request = read_request(&mut socket, accepted_at);
    shared.done_waiting(id);
    let request = request?;
    let request_idx = shared.n_requests.fetch_add(1, Ordering::SeqCst);
    let uri = request.path.clone();
    log::info!(
        "request {} from User-Agent {:?}",
        request_idx + 1,
        request.user_agent.as_deref().unwrap_or("")
    );
    if let Some((code, flag)) = injected_status(&shared.args, request_idx) {
        log::info!("answering request {} with {code} ({flag})", request_idx + 1);
        let detail = format!("injected by {flag}");
        return respond_error(&mut socket, code, (&request.method, &uri), &detail);
    }
    let wanted = match route(&request, &shared.catalog) {
        Route::Preflight => return respond(&mut socket, 204, "text/plain", ""),
        Route::Info(info) => return respond(&mut socket, 200, "application/json", &info),
        Route::Refuse { code, detail } => {
            return respond_error(&mut socket, code, (&request.method, &uri), &detail);
        }
        Route::Stream(wanted) => wanted,
    };
    let ip = socket.peer_addr()?.ip();
    let Some(_slot) = ConnectionSlot::take(shared, ip) else {
        log::info!("refusing {ip}: --max-connections-per-ip reached");
        let detail = "Too many concurrent connections from your client IP address";
        return respond_error(&mut socket, 429, (&request.method, &uri), detail);
    };
    log::info!(
        "{} {} (since {:?}, Last-Event-ID {:?})",
        request.method,
        request.path,
        wanted.since_ms,
        request.last_event_id
    );
    stream::serve(socket, shared, &request, *wanted, request_idx)
}

/// The status `--status-first` or `--status-later` answers request `request_idx` with, and
/// the flag that asks for it.
fn injected_status(args: &Config, request_idx: u64) -> Option<(u16, &'static str)> {
    match (request_idx, args.status_first, args.status_later) {
        (0, Some(code), _) => Some((code, "--status-first")),
        (1 | 2, _, Some(code)) => Some((code, "--status-later")),
        _ => None,
    }
}
