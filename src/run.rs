//! `run`: the main loop. Connect, read, parse, sort events into archive / rejects / dropped,
//! checkpoint, rotate, reconnect with backoff, recover from write failures, and stop cleanly on
//! a signal or after `--max-events`.
//!
//! This is the only place that combines the client, the parser and the archive, and the only
//! place that sleeps, reads signals or reads the clock. It holds no policy of its own beyond the
//! order of these steps: backoff is in `client`, validation in `event`, rotation in
//! `archive::rotate`, file handling in `archive`.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::archive::{self, Archive, Cursor, DirLock, Resume, rotate};
use crate::cli::{Output, RunArgs, Source};
use crate::client::{self, Backoff, Client, Jitter, ReadOutcome};
use crate::console::{self, Printer};
use crate::event::{self, RecentIds, RejectReason};
use crate::filter::Filter;
use crate::sse::{self, Item};
use crate::stats::{Stats, WikiCounts};

/// First reconnect delay when the server sent no `retry:` (PROTOCOL.md: start about 1 s).
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest reconnect delay: a minute keeps load on a struggling server low and gaps short.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Body read buffer: a few events per read at typical sizes, small next to the gzip state.
const READ_BUFFER_BYTES: usize = 16 * 1024;
/// How many recent `meta.id`s are remembered to drop repeats. At 100 events/s this covers well
/// over a minute; resends after a reconnect concern the boundary millisecond only. 16 bytes each.
const DEDUP_WINDOW: usize = 8192;
/// Sleeps are cut into slices this long so that a signal is seen quickly.
const SLEEP_SLICE: Duration = Duration::from_millis(100);
/// After a write failure (e.g. disk full), wait this long before trying again from the checkpoint.
const WRITE_RETRY_DELAY: Duration = Duration::from_secs(5);
/// A repeating write failure is logged at most this often.
const WRITE_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Test hook: an RFC 3339 time the process clock starts at (it then runs at normal speed), so
/// tests can cross a rotation minute without waiting for it. Never set in production.
const FAKE_NOW_ENV: &str = "WIKISTREAM_ARCHIVER_FAKE_NOW";
/// How often the per-wiki counts are sorted and handed to `/status`: the status page polls
/// about this often, and sorting a thousand wikis each time costs little.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Why `run` failed.
#[derive(Debug)]
pub enum Error {
    /// The server or the configuration prevents archiving (e.g. 404 on the first connection).
    Client(client::Error),
    /// The archive directory or a file in it failed.
    Archive(archive::Error),
    /// Signal handlers could not be installed.
    Signals(io::Error),
    /// The health server could not start (e.g. the port is taken).
    Health(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Client(e) => write!(f, "{e}"),
            Error::Archive(e) => write!(f, "{e}"),
            Error::Signals(e) => write!(f, "installing signal handlers: {e}"),
            Error::Health(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<client::Error> for Error {
    fn from(e: client::Error) -> Error {
        Error::Client(e)
    }
}

impl From<archive::Error> for Error {
    fn from(e: archive::Error) -> Error {
        Error::Archive(e)
    }
}

/// Signal flags the loop polls.
struct Signals {
    /// SIGINT or SIGTERM: finish and exit. A second one ends the process at once.
    shutdown: Arc<AtomicBool>,
    /// SIGUSR1: complete the open file now.
    rotate: Arc<AtomicBool>,
}

fn install_signal_flags() -> Result<Signals, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&shutdown))
            .map_err(Error::Signals)?;
        signal_hook::flag::register(signal, Arc::clone(&shutdown)).map_err(Error::Signals)?;
    }
    let rotate = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGUSR1, Arc::clone(&rotate)).map_err(Error::Signals)?;
    Ok(Signals { shutdown, rotate })
}

/// The process clock: UTC now, shifted when the test hook asks for it.
#[derive(Debug, Clone, Copy)]
struct Clock {
    offset: time::Duration,
}

impl Clock {
    fn from_env() -> Clock {
        let offset = std::env::var(FAKE_NOW_ENV)
            .ok()
            .and_then(|text| {
                OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).ok()
            })
            .map_or(time::Duration::ZERO, |start| {
                start - OffsetDateTime::now_utc()
            });
        Clock { offset }
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset
    }
}

/// The stream URL for `source`.
pub fn source_url(source: &Source) -> String {
    match source {
        Source::Url(url) => url.clone(),
        Source::Streams { names, base_url } => {
            let slash = if base_url.ends_with('/') { "" } else { "/" };
            format!("{base_url}{slash}{}", names.join(","))
        }
    }
}

/// The file name label for `source`: stream names, or the last path segment of `--url`.
pub fn source_label(source: &Source) -> String {
    match source {
        Source::Streams { names, .. } => archive::stream_label(names),
        Source::Url(url) => {
            let path = url.split(['?', '#']).next().unwrap_or_default();
            let last = path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            let names: Vec<String> = last
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            archive::stream_label(&names)
        }
    }
}

/// Archives the stream described by `args` until a signal, `--max-events`, or a fatal error.
pub fn run(args: RunArgs) -> Result<(), Error> {
    let signals = install_signal_flags()?;
    let clock = Clock::from_env();
    let url = source_url(&args.source);
    let naming = match args.naming_wikistreamreader {
        true => archive::Naming::WikistreamReader,
        false => archive::Naming::Ours {
            label: source_label(&args.source),
        },
    };
    let cfg = archive::Config {
        dir: args.output_dir.clone(),
        naming,
        level: args.level,
        policy: args.rotation,
        on_ready: args.on_ready.clone(),
        retention: args.retention,
    };
    let printing_only = matches!(args.output, Output::Print(_));
    let _lock = match printing_only {
        true => None,
        false => Some(DirLock::acquire(&cfg.dir)?),
    };
    let client = Client::new(&url, &args.user_agent, args.ca_file.as_deref())?;
    let stats = Arc::new(Stats::default());
    stats
        .started_at_ms
        .store(unix_ms(clock.now()), Ordering::Relaxed);
    if printing_only {
        log::info!("printing {url}");
        let mut session = Session::new(None, Resume::default(), &args, clock, Arc::clone(&stats));
        let result = session.main_loop(&client, &url, &args, &signals, true);
        log::debug!("{}", stats.summary());
        return result;
    }
    if let Some(port) = args.status_port {
        let ip: std::net::IpAddr = args.status_addr.parse().expect("cli checked --status-addr");
        let bound = crate::health::spawn((ip, port).into(), Arc::clone(&stats), args.max_silence)
            .map_err(|e| Error::Health(format!("serving health on {ip}:{port}: {e}")))?;
        log::info!("serving /check, /metrics and /status on http://{bound}");
    }
    log::info!("archiving {url} into {}", args.output_dir.display());
    let mut started = false;
    let mut n_archived = 0;
    let mut last_error_logged: Option<Instant> = None;
    loop {
        let result = match Archive::open(cfg.clone()) {
            // At start (`started` false) an unusable directory or checkpoint needs a person:
            // the retry decision below reports it and exits.
            Err(e) => Err(Error::Archive(e)),
            Ok((mut archive, resume)) => {
                if let Err(e) = archive.apply_retention(clock.now()) {
                    log::warn!("retention: {e}");
                }
                let mut session =
                    Session::new(Some(archive), resume, &args, clock, Arc::clone(&stats));
                session.n_archived = n_archived;
                let result = session.main_loop(&client, &url, &args, &signals, !started);
                started = true;
                n_archived = session.n_archived;
                match result {
                    Ok(()) => session.close().map_err(Error::Archive),
                    // The archive is abandoned without finishing: the next attempt starts from
                    // the checkpoint, exactly as after a crash.
                    Err(e) => Err(e),
                }
            }
        };
        let retry = match &result {
            Ok(()) => false,
            Err(Error::Archive(e)) => {
                started && e.is_transient() && !signals.shutdown.load(Ordering::Relaxed)
            }
            Err(_) => false,
        };
        if !retry {
            log::info!("{}", stats.summary());
            return result;
        }
        if let Err(Error::Archive(e)) = &result {
            note_write_failure(&stats, clock, e, &mut last_error_logged);
        }
        sleep_unless(&signals.shutdown, WRITE_RETRY_DELAY);
    }
}

/// Logs a write failure at most once per `WRITE_ERROR_LOG_INTERVAL` and marks the archiver
/// unhealthy until a checkpoint succeeds again.
fn note_write_failure(
    stats: &Stats,
    clock: Clock,
    e: &archive::Error,
    last_logged: &mut Option<Instant>,
) {
    Stats::add(&stats.checkpoint_failures, 1);
    stats.connected.store(false, Ordering::Relaxed);
    if let Ok(mut text) = stats.write_error.try_lock() {
        *text = match e {
            archive::Error::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        };
    }
    let _ = stats.write_error_since.compare_exchange(
        0,
        clock.now().unix_timestamp(),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    if last_logged.is_none_or(|t| t.elapsed() >= WRITE_ERROR_LOG_INTERVAL) {
        log::error!(
            "{e}; nothing after the last checkpoint is kept, retrying every {} s from it",
            WRITE_RETRY_DELAY.as_secs()
        );
        *last_logged = Some(Instant::now());
    } else {
        log::debug!("still failing: {e}");
    }
}

/// Why a connection ended.
enum Disconnect {
    ServerClosed,
    Stalled(Duration),
    ReadFailed(io::Error),
    Shutdown,
    MaxEvents,
    ArchiveFailed(archive::Error),
    /// `tail`'s standard output was closed (`| head`).
    OutputClosed,
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::ServerClosed => write!(f, "server closed the stream"),
            Disconnect::Stalled(idle) => {
                write!(f, "no data for {} s (--idle-timeout)", idle.as_secs())
            }
            Disconnect::ReadFailed(e) => write!(f, "read failed: {e}"),
            Disconnect::Shutdown => write!(f, "shutting down on signal"),
            Disconnect::MaxEvents => write!(f, "reached --max-events"),
            Disconnect::ArchiveFailed(e) => write!(f, "archive failed: {e}"),
            Disconnect::OutputClosed => write!(f, "standard output closed"),
        }
    }
}

/// Options the session consults per event.
struct SessionConfig {
    keep_canary: bool,
    max_events: Option<u64>,
    gap_warn: Duration,
    checkpoint_interval: Option<Duration>,
}

/// One pass from a checkpoint: lives across connections until a write failure or the end.
struct Session {
    /// None for `tail`, which prints only.
    archive: Option<Archive>,
    /// `tail` and `run --tee`.
    printer: Option<Printer>,
    filter: Filter,
    stats: Arc<Stats>,
    /// Events per wiki for `/status`; None without a status port, where nobody reads them.
    wikis: Option<WikiCounts>,
    last_published: Instant,
    cfg: SessionConfig,
    clock: Clock,
    recent_ids: RecentIds,
    /// The id of the last event handled; an `id:` line of an event that never completed is not
    /// used, or a cut connection would skip that event on resume.
    resume_id: String,
    /// `meta.dt` of the last archived event, for gap warnings and the `since=` fallback.
    last_dt: String,
    server_retry: Option<Duration>,
    n_archived: u64,
    n_events_this_connection: u64,
    /// The next archived event is the first after a resume: compare its time with `last_dt`.
    check_gap: bool,
    /// Events were handled since the last checkpoint.
    dirty: bool,
    last_checkpoint: Instant,
    /// Set by `handle` when archiving must stop (a file error or `--max-events`).
    failure: Option<Disconnect>,
}

impl Session {
    fn new(
        archive: Option<Archive>,
        resume: Resume,
        args: &RunArgs,
        clock: Clock,
        stats: Arc<Stats>,
    ) -> Session {
        Session {
            archive,
            printer: args.output.print_format().map(Printer::stdout),
            filter: args.filter.clone(),
            stats,
            wikis: args.status_port.map(|_| WikiCounts::default()),
            last_published: Instant::now(),
            cfg: SessionConfig {
                keep_canary: args.keep_canary,
                max_events: args.max_events,
                gap_warn: args.gap_warn,
                checkpoint_interval: args.checkpoint_interval,
            },
            clock,
            recent_ids: RecentIds::with_keys(DEDUP_WINDOW, &resume.recent_ids),
            resume_id: resume.last_event_id,
            last_dt: resume.last_dt,
            server_retry: None,
            n_archived: 0,
            n_events_this_connection: 0,
            check_gap: false,
            dirty: false,
            last_checkpoint: Instant::now(),
            failure: None,
        }
    }

    /// The archive (none for `tail`) and the resume position that goes with what was written.
    fn archive_and_cursor(&mut self) -> Option<(&mut Archive, Cursor<'_>)> {
        let cursor = Cursor {
            last_event_id: &self.resume_id,
            last_dt: &self.last_dt,
            recent_ids: &self.recent_ids,
        };
        Some((self.archive.as_mut()?, cursor))
    }

    fn checkpoint(&mut self) -> Result<(), archive::Error> {
        if let Some((archive, cursor)) = self.archive_and_cursor() {
            archive.checkpoint(cursor)?;
        }
        self.dirty = false;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    fn rotate(&mut self, reason: rotate::Reason) -> Result<(), archive::Error> {
        let now = self.clock.now();
        if let Some((archive, cursor)) = self.archive_and_cursor()
            && let Some(path) = archive.rotate(reason, cursor, now)?
        {
            self.stats.rotations.add(reason.index());
            self.stats.note_completed(&path, unix_ms(now));
        }
        Ok(())
    }

    /// Completes every open file.
    fn close(&mut self) -> Result<(), archive::Error> {
        // The segment goes the way of every rotation (and is counted like one); then the rest.
        self.rotate(rotate::Reason::Shutdown)?;
        let now = self.clock.now();
        if let Some((archive, cursor)) = self.archive_and_cursor() {
            archive.close(cursor, now)?;
            let n_bytes = archive.bytes_written();
            self.stats.bytes_written.store(n_bytes, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Periodic work between reads: `--on-ready` children, SIGUSR1, minute rotation, checkpoints.
    fn housekeeping(&mut self, signals: &Signals) -> Result<(), archive::Error> {
        self.flush_printer();
        if let Some(wikis) = &self.wikis
            && self.last_published.elapsed() >= PUBLISH_INTERVAL
        {
            self.stats.try_set_top_wikis(wikis);
            self.last_published = Instant::now();
        }
        let Some(archive) = self.archive.as_mut() else {
            return Ok(());
        };
        archive.reap_children();
        if signals.rotate.swap(false, Ordering::Relaxed) {
            log::info!("SIGUSR1: completing the open file");
            self.rotate(rotate::Reason::Signal)?;
        }
        let now = self.clock.now();
        if let Some(reason) = self.archive.as_ref().and_then(|a| a.rotation_due(now)) {
            self.rotate(reason)?;
        }
        let interval_passed = self
            .cfg
            .checkpoint_interval
            .is_some_and(|i| self.last_checkpoint.elapsed() >= i);
        if self.dirty && interval_passed {
            self.checkpoint()?;
        }
        let Some(archive) = self.archive.as_mut() else {
            return Ok(());
        };
        self.stats
            .bytes_written
            .store(archive.bytes_written(), Ordering::Relaxed);
        let (open_file, open_bytes) = archive.open_file().unwrap_or(("", 0));
        self.stats
            .open_file_bytes
            .store(open_bytes, Ordering::Relaxed);
        self.stats.try_set_status_text(open_file, &self.resume_id);
        // Any checkpoint (periodic, new file, rotation) proves that writing works again.
        let n_checkpoints = archive.take_checkpoint_count();
        if n_checkpoints > 0 {
            Stats::add(&self.stats.checkpoints, n_checkpoints);
            self.stats.write_error_since.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    fn main_loop(
        &mut self,
        client: &Client,
        url: &str,
        args: &RunArgs,
        signals: &Signals,
        first_session: bool,
    ) -> Result<(), Error> {
        let mut backoff = Backoff::new(INITIAL_BACKOFF, MAX_BACKOFF);
        let mut jitter = Jitter::from_entropy();
        let mut ever_connected = !first_session;
        let mut since_fallback: Option<i64> = None;
        if !self.resume_id.is_empty() && args.since_ms.is_some() {
            log::warn!(
                "--since is ignored: resuming from the checkpoint in {}",
                args.output_dir.display()
            );
        }
        loop {
            if signals.shutdown.load(Ordering::Relaxed) {
                log::info!("shutting down on signal");
                return Ok(());
            }
            self.housekeeping(signals)?;
            let resume_id = (!self.resume_id.is_empty()).then(|| self.resume_id.clone());
            let resume_id = resume_id.as_deref();
            let since = if resume_id.is_none() {
                since_fallback.or(args.since_ms)
            } else {
                None
            };
            let mut retry_after = None;
            match client.open(resume_id, since) {
                Ok(stream) => {
                    ever_connected = true;
                    match resume_id {
                        Some(id) => log::info!("connected to {url}, resuming after {id}"),
                        None => log::info!("connected to {url}"),
                    }
                    self.check_gap = resume_id.is_some() || since_fallback.is_some();
                    let started = Instant::now();
                    self.stats.connected.store(true, Ordering::Relaxed);
                    let reason = self.read_stream(stream, args, signals);
                    self.stats.connected.store(false, Ordering::Relaxed);
                    log::info!(
                        "disconnected: {reason}; {} events in {:.1} s",
                        self.n_events_this_connection,
                        started.elapsed().as_secs_f64()
                    );
                    if let Some(retry) = self.server_retry {
                        backoff.set_initial(retry);
                    }
                    if self.n_events_this_connection > 0 {
                        backoff.reset();
                    }
                    let reconnect_reason = match reason {
                        Disconnect::Shutdown | Disconnect::MaxEvents | Disconnect::OutputClosed => {
                            return Ok(());
                        }
                        Disconnect::ArchiveFailed(e) => return Err(Error::Archive(e)),
                        Disconnect::ServerClosed => 0,
                        Disconnect::Stalled(_) => 1,
                        Disconnect::ReadFailed(_) => 2,
                    };
                    self.stats.reconnects.add(reconnect_reason);
                    // Make what this connection brought durable before waiting to reconnect.
                    if self.dirty {
                        self.checkpoint()?;
                    }
                }
                Err(e) => {
                    // A refused stored position is not a configuration error, even at start.
                    let refused_id =
                        matches!(e, client::Error::Status { code: 400, .. }) && resume_id.is_some();
                    if !ever_connected && !e.is_retryable() && !refused_id {
                        return Err(Error::Client(e));
                    }
                    if let (true, Some(id)) = (refused_id, resume_id) {
                        // The server no longer knows this position: continue from the last
                        // archived time instead, which may leave a gap.
                        since_fallback = event::parse_dt_ms(&self.last_dt);
                        log::warn!(
                            "the server refused Last-Event-ID {id} ({e}); resuming from meta.dt {} instead: events may be missing",
                            if self.last_dt.is_empty() {
                                "(unknown: from now)"
                            } else {
                                &self.last_dt
                            }
                        );
                        self.resume_id.clear();
                    } else {
                        log::warn!("connecting to {url} failed: {e}");
                    }
                    retry_after = e.retry_after();
                    self.stats.reconnects.add(3);
                }
            }
            let delay = backoff
                .next_delay(jitter.next_fraction())
                .max(retry_after.unwrap_or_default());
            log::info!("reconnecting in {:.3} s", delay.as_secs_f64());

            sleep_unless(&signals.shutdown, delay);
        }
    }

    fn read_stream(
        &mut self,
        mut stream: client::Stream,
        args: &RunArgs,
        signals: &Signals,
    ) -> Disconnect {
        let mut parser = sse::Parser::new(args.max_event_bytes);
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        let mut last_data_at = Instant::now();
        self.n_events_this_connection = 0;
        loop {
            if signals.shutdown.load(Ordering::Relaxed) {
                return Disconnect::Shutdown;
            }
            match stream.read(&mut buf) {
                Ok(ReadOutcome::Data(n)) => {
                    last_data_at = Instant::now();
                    Stats::add(&self.stats.bytes_received, n as u64);
                    parser.feed(&buf[..n], &mut |item| self.handle(item));
                    if let Some(reason) = self.failure.take() {
                        return reason;
                    }
                }
                Ok(ReadOutcome::Idle) => {
                    let idle = last_data_at.elapsed();
                    if idle >= args.idle_timeout {
                        return Disconnect::Stalled(idle);
                    }
                }
                Ok(ReadOutcome::End) => return Disconnect::ServerClosed,
                Err(e) => return Disconnect::ReadFailed(e),
            }
            if let Err(e) = self.housekeeping(signals) {
                return Disconnect::ArchiveFailed(e);
            }
            if let Some(reason) = self.failure.take() {
                return reason;
            }
        }
    }

    /// Sorts one parsed item into the archive, the rejects file, or a counter.
    fn handle(&mut self, item: Item<'_>) {
        let event = match item {
            Item::Retry(ms) => {
                self.server_retry = Some(Duration::from_millis(ms));
                return;
            }
            Item::Event(event) => event,
        };
        if self.failure.is_some() {
            // Archiving stopped inside this chunk: later events are fetched again on resume.
            return;
        }
        self.n_events_this_connection += 1;
        // One clock read per event serves the health gauge, rotation and the rejects line.
        let now = self.clock.now();
        self.stats
            .last_event_at_ms
            .store(unix_ms(now), Ordering::Relaxed);
        let result = if event.oversize {
            self.reject(RejectReason::Oversize, &event, now)
        } else if event.event_type != "message" {
            self.reject(RejectReason::UnexpectedType, &event, now)
        } else {
            match event::inspect(event.data) {
                Err(reason) => self.reject(reason, &event, now),
                Ok(meta) => self.archive_event(event.data, &meta, now),
            }
        };
        if let Err(e) = result {
            self.failure = Some(Disconnect::ArchiveFailed(e));
            return;
        }
        self.dirty = true;
        if !event.id.is_empty() {
            self.resume_id.clear();
            self.resume_id.push_str(event.id);
        }
        if self
            .cfg
            .max_events
            .is_some_and(|max| self.n_archived >= max)
        {
            log::info!(
                "{} {} events (--max-events); stopping",
                if self.archive.is_some() {
                    "archived"
                } else {
                    "printed"
                },
                self.n_archived
            );
            self.failure = Some(Disconnect::MaxEvents);
        }
    }

    fn archive_event(
        &mut self,
        data: &str,
        meta: &event::Meta<'_>,
        now: OffsetDateTime,
    ) -> Result<(), archive::Error> {
        if meta.is_canary() && !self.cfg.keep_canary {
            Stats::add(&self.stats.canaries, 1);
            log::trace!("dropped canary event {:?}", meta.id);
            return Ok(());
        }
        if let Err(reason) = self.filter.check(data, meta) {
            self.stats.filtered.add(reason.index());
            log::trace!("filtered out event {:?} by --{reason:?}", meta.id);
            return Ok(());
        }
        // The id is recorded only once the event is written: a checkpoint taken on the way
        // (rotation, new file) must not claim an event that is not in its bytes, or the resend
        // after a crash would be dropped as a duplicate.
        let key = meta.id.as_deref().map(event::id_key);
        if let Some(key) = key
            && self.recent_ids.contains_key(key)
        {
            Stats::add(&self.stats.duplicates, 1);
            log::debug!("dropped duplicate event {:?}", meta.id);
            return Ok(());
        }
        if let Some(reason) = self.archive.as_ref().and_then(|a| a.rotation_due(now)) {
            self.rotate(reason)?;
        }
        if let Some(dt) = &meta.dt {
            self.warn_on_gap(dt);
        }
        if let Some((archive, cursor)) = self.archive_and_cursor() {
            archive.append(data, now, cursor)?;
        }
        self.print(data);
        if let Some(key) = key {
            self.recent_ids.insert_key(key);
        }
        self.n_archived += 1;
        Stats::add(&self.stats.events_archived, 1);
        self.stats
            .archived_by_stream
            .add(meta.stream.as_deref().unwrap_or("unknown"));
        let type_idx = Stats::type_idx(meta.kind.as_deref());
        self.stats.archived_by_type.add(type_idx);
        self.stats.rates.add(unix_ms(now), type_idx);
        if let Some(wikis) = &mut self.wikis {
            let wiki = meta.wiki.as_deref().or(meta.domain.as_deref());
            wikis.add(wiki.unwrap_or("unknown"));
        }
        if let Some(dt) = &meta.dt {
            self.last_dt.clear();
            self.last_dt.push_str(dt);
            if let Some(ms) = event::parse_dt_ms(dt) {
                self.stats.last_dt_ms.store(ms, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// After a resume, says so if the first event is much later than the last one archived.
    fn warn_on_gap(&mut self, dt: &str) {
        if !std::mem::replace(&mut self.check_gap, false) || self.last_dt.is_empty() {
            return;
        }
        let (Some(before), Some(after)) =
            (event::parse_dt_ms(&self.last_dt), event::parse_dt_ms(dt))
        else {
            return;
        };
        let jump = Duration::from_millis(after.saturating_sub(before).max(0) as u64);
        if jump > self.cfg.gap_warn {
            Stats::add(&self.stats.gaps, 1);
            log::warn!(
                "gap: the last archived event is from {}, the next one from {dt} ({} s later); events in between may be missing",
                self.last_dt,
                jump.as_secs()
            );
        }
    }

    fn reject(
        &mut self,
        reason: RejectReason,
        event: &sse::Event<'_>,
        now: OffsetDateTime,
    ) -> Result<(), archive::Error> {
        let line = reject_line(now, reason, event);
        log::warn!(
            "rejected event {} ({reason}, {} bytes of data)",
            if event.id.is_empty() {
                "without id"
            } else {
                event.id
            },
            event.data.len()
        );
        self.stats.rejects.add(reason.index());
        match self.archive_and_cursor() {
            Some((archive, cursor)) => archive.reject(&line, now, cursor),
            None => Ok(()),
        }
    }

    /// Prints an archived event for `tail` and `--tee`. When stdout is gone, `tail` stops and
    /// `--tee` goes on archiving without printing.
    fn print(&mut self, data: &str) {
        let Some(printer) = &mut self.printer else {
            return;
        };
        if let Err(e) = printer.print(data) {
            self.stdout_failed(&e);
        }
    }

    fn flush_printer(&mut self) {
        if let Some(printer) = &mut self.printer
            && let Err(e) = printer.flush()
        {
            self.stdout_failed(&e);
        }
    }

    fn stdout_failed(&mut self, e: &io::Error) {
        self.printer = None;
        if self.archive.is_none() {
            if !console::is_closed_pipe(e) {
                log::error!("writing standard output: {e}");
            }
            self.failure = Some(Disconnect::OutputClosed);
        } else {
            log::warn!("writing standard output: {e}; --tee stops printing, archiving goes on");
        }
    }
}

/// One line of the rejects file: `{"received_at","reason","event","id","data"}`.
pub fn reject_line(now: OffsetDateTime, reason: RejectReason, event: &sse::Event<'_>) -> String {
    let received_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatting the current UTC time as RFC 3339 cannot fail");
    let json = |s: &str| serde_json::to_string(s).expect("serialising a string cannot fail");
    format!(
        "{{\"received_at\":{},\"reason\":{},\"event\":{},\"id\":{},\"data\":{}}}",
        json(&received_at),
        json(reason.as_str()),
        json(event.event_type),
        json(event.id),
        json(event.data)
    )
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Sleeps for `total` unless `flag` is set first.
fn sleep_unless(flag: &AtomicBool, total: Duration) {
    let until = Instant::now() + total;
    while !flag.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(SLEEP_SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_labels() {
        let streams = Source::Streams {
            names: vec!["recentchange".into(), "page-create".into()],
            base_url: "https://stream.wikimedia.org/v2/stream".into(),
        };
        assert_eq!(
            source_url(&streams),
            "https://stream.wikimedia.org/v2/stream/recentchange,page-create"
        );
        assert_eq!(source_label(&streams), "recentchange+page-create");
        let url = Source::Url("http://127.0.0.1:1/v2/stream/recentchange?x=1".into());
        assert_eq!(source_label(&url), "recentchange");
        assert_eq!(source_label(&Source::Url("http://h/".into())), "h");
    }

    #[test]
    fn reject_lines_are_json() {
        let event = sse::Event {
            event_type: "error",
            data: "bad \"x\"\n",
            id: "[1]",
            oversize: false,
        };
        let line = reject_line(
            time::macros::datetime!(2025-01-31 12:00:00 UTC),
            RejectReason::UnexpectedType,
            &event,
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["reason"], "unexpected_type");
        assert_eq!(value["data"], "bad \"x\"\n");
        assert_eq!(value["received_at"], "2025-01-31T12:00:00Z");
        assert!(!line.contains('\n'));
    }
}
